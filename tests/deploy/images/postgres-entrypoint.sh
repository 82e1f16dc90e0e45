#!/bin/sh
# The official postgres image's start, as far as deploy/compose.yaml relies on it: on
# an empty data directory, initdb with POSTGRES_USER and POSTGRES_PASSWORD (SCRAM) and
# create POSTGRES_DB; then run PostgreSQL listening on every address.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --username="$POSTGRES_USER" --pwfile="$password_file" --auth=scram-sha-256 \
        --encoding=UTF8 --pgdata="$PGDATA" > /dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses='' -c unix_socket_directories=/tmp" \
        --wait start > /dev/null
    PGPASSWORD="$POSTGRES_PASSWORD" createdb --username="$POSTGRES_USER" "$POSTGRES_DB"
    pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop > /dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
