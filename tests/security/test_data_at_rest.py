"""What a stack leaves on disk is useless to whoever copies it, and private to its user.

Before: Valkey's append-only file (0644, in a 0755 folder) held web sessions' access
and refresh tokens in plain text — a refresh token read from it minted new tokens; the
DuckDB file and the logs were 0644; identity's signing key was plain PEM in PostgreSQL.

One real `kansoku up` (marked `stack`): a customer logs in on the storefront, then the
test reads the data directory as another process of the same machine could.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from kansoku import topology
from tests.support import eventually, run_cli, stack_environment

pytestmark = pytest.mark.stack

CUSTOMER = ("alice@example.com", "alice-pass-1234")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_COOKIE = re.compile(r"kansoku_session=([A-Za-z0-9_-]{43})")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    data_dir = tmp_path_factory.mktemp("at-rest") / "data"
    env = stack_environment(data_dir)
    result = run_cli("up", "--detach", env=env)
    assert result.returncode == 0, f"kansoku up failed:\n{result.stdout}\n{result.stderr}"
    try:
        yield env, data_dir
    finally:
        run_cli("down", env=env)


def log_in_on_the_storefront(gateway: str) -> str:
    """Log in as a browser does; the session cookie's value."""
    with httpx.Client(base_url=gateway, timeout=30) as browser:
        form = browser.get("/login")
        anonymous = _COOKIE.search(form.headers["set-cookie"])
        token = _CSRF.search(form.text)
        assert anonymous and token
        answer = browser.post("/login", headers={
            "Cookie": f"kansoku_session={anonymous.group(1)}"}, data={
            "csrf_token": token.group(1), "email": CUSTOMER[0], "password": CUSTOMER[1]})
        assert answer.status_code == 303, answer.text
        cookie = _COOKIE.search(answer.headers["set-cookie"])
        assert cookie
        return cookie.group(1)


async def test_valkeys_files_hold_no_token_and_no_address(
        stack: tuple[dict[str, str], Path]) -> None:
    env, data_dir = stack
    cookie = log_in_on_the_storefront(
        f"http://127.0.0.1:{env[topology.port_variable('gateway')]}")
    folder = data_dir / "valkey"

    async def session_written() -> bool:
        return b"websession:" in b"".join(
            path.read_bytes() for path in folder.rglob("*.aof*") if path.is_file())

    await eventually(session_written, 10, "the session reaches Valkey's append-only file")
    written = b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file()
                       and path.name != "valkey.conf")
    assert b"eyJ" not in written, "no JWT (their header always starts eyJ)"
    assert b"refresh_token" not in written and b"access_token" not in written
    assert CUSTOMER[0].encode() not in written
    assert cookie.encode() not in written


async def test_identitys_signing_key_is_encrypted(stack: tuple[dict[str, str], Path]
                                                  ) -> None:
    env, data_dir = stack
    connection = await asyncpg.connect(
        host="127.0.0.1", port=int(env["KANSOKU_POSTGRES_PORT"]), user="postgres",
        password=(data_dir / "secret").read_text().strip(), database="kansoku")
    try:
        stored = await connection.fetch("SELECT private_key_pem FROM identity.signing_keys")
    finally:
        await connection.close()
    assert stored
    for row in stored:
        assert row["private_key_pem"].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_the_data_directory_is_its_users_alone(stack: tuple[dict[str, str], Path]) -> None:
    _, data_dir = stack
    me = os.geteuid()
    # As root, PostgreSQL runs as `nobody` and may only traverse (o+x) the data dir.
    assert data_dir.stat().st_mode & 0o076 == 0
    readable = [f"{path} {oct(path.stat().st_mode & 0o777)}" for path in data_dir.rglob("*")
                if path.exists() and not path.is_symlink() and path.stat().st_uid == me
                and path.stat().st_mode & 0o077]
    assert readable == []
    for expected in ("explorer/telemetry.duckdb", "logs/gateway.log", "run/state.json",
                     "valkey", "flags.json"):
        assert (data_dir / expected).exists(), expected
