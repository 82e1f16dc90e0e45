"""`kansoku health` and `python -m kansoku.commands.health` (the container image's
healthcheck), and `kansoku serve` taking its service from KANSOKU_SERVICE."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi import FastAPI, Response

from kansoku import topology
from tests.support import run_cli, serve_in_thread


def probe_target(status: int) -> FastAPI:
    """A stand-in service whose /health/ready answers `status`."""
    app = FastAPI()

    @app.get("/health/ready")
    async def ready() -> Response:
        return Response(status_code=status)

    return app


def environment(**variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KANSOKU_")}
    env.update(variables)
    return env


def healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kansoku.commands.health", *args], env=env,
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("through", ["module", "cli"])
def test_health_is_0_for_a_ready_service_and_1_with_the_reason_otherwise(through: str) -> None:
    with serve_in_thread(probe_target(200)) as ready, \
            serve_in_thread(probe_target(503)) as unready:
        for url, code in ((ready, 0), (unready, 1)):
            port = url.rsplit(":", 1)[1]
            env = environment(KANSOKU_SERVICE="catalog",
                              **{topology.port_variable("catalog"): port})
            result = healthcheck(env) if through == "module" else run_cli("health", env=env)
            assert result.returncode == code, result.stderr
            if code:
                assert result.stderr.strip() == (
                    f"error: catalog is not ready: http://127.0.0.1:{port}/health/ready "
                    "answered 503")


def test_health_names_what_does_not_answer() -> None:
    with serve_in_thread(probe_target(200)) as url:
        port = url.rsplit(":", 1)[1]
    env = environment(**{topology.port_variable("orders"): port})
    result = healthcheck(env, "orders")  # named on the command line this time
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: orders is not answering at http://127.0.0.1:{port}/health/ready (")


def test_health_reaches_a_wildcard_listener_on_loopback() -> None:
    with serve_in_thread(probe_target(200)) as url:
        env = environment(KANSOKU_HOST="0.0.0.0", KANSOKU_SERVICE="cart",
                          **{topology.port_variable("cart"): url.rsplit(":", 1)[1]})
        assert healthcheck(env).returncode == 0


@pytest.mark.parametrize("command", ["serve", "health"])
def test_a_missing_or_unknown_service_is_one_line(command: str) -> None:
    unnamed = run_cli(command, env=environment())
    assert unnamed.returncode == 2
    assert unnamed.stderr.strip().startswith(
        "error: name the service (kansoku serve catalog) or set KANSOKU_SERVICE — one of: "
        "explorer, identity")
    unknown = run_cli(command, env=environment(KANSOKU_SERVICE="shipping"))
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert "there is no component 'shipping'" in unknown.stderr
