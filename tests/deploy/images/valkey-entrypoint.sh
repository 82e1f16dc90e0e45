#!/bin/sh
# The official valkey image's start, as far as deploy/compose.yaml relies on it: a bare
# `valkey-server ARGS` accepts connections from other containers (protected mode off).
set -eu
if [ "${1:-}" = valkey-server ]; then
    set -- "$@" --protected-mode no
fi
exec "$@"
