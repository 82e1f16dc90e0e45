"""`kansoku health` and `python -m kansoku.commands.health` (the container image's
healthcheck), and `kansoku serve` taking its service from KANSOKU_SERVICE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI, Response

from kansoku import topology
from kansoku.faults import flagfile
from kansoku.kit.flagkinds import OFF
from tests.support import KubernetesApi, database_of_its_own, run_cli, serve_in_thread


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


#: What the image's healthcheck runs, then the heavy modules it loaded (there should be
#: none: a check runs every few seconds in every container).
HEALTHCHECK_AND_ITS_MODULES = (
    "import sys\n"
    "from kansoku.commands import health\n"
    "code = health.main(sys.argv[1:])\n"
    "print(sorted(name for name in sys.modules\n"
    "             if name.split('.')[0] in ('babel', 'pydantic', 'httpx', 'typer')))\n"
    "sys.exit(code)")


def test_the_healthcheck_speaks_kansoku_lang_without_babel() -> None:
    """KANSOKU_LANG=ja: the reason is Japanese, looked up in the catalog without Babel."""
    with serve_in_thread(probe_target(503)) as url:
        port = url.rsplit(":", 1)[1]
        env = environment(KANSOKU_LANG="ja", KANSOKU_SERVICE="catalog",
                          **{topology.port_variable("catalog"): port})
        unready = subprocess.run([sys.executable, "-c", HEALTHCHECK_AND_ITS_MODULES],
                                 env=env, capture_output=True, text=True, timeout=30)
    assert unready.returncode == 1
    assert unready.stderr.strip() == (f"エラー: catalog は準備ができていません: "
                                      f"http://127.0.0.1:{port}/health/ready が 503 を返しました")
    assert unready.stdout.strip() == "[]"
    unknown = subprocess.run([sys.executable, "-c", HEALTHCHECK_AND_ITS_MODULES, "shipping"],
                             env=environment(KANSOKU_LANG="ja"), capture_output=True,
                             text=True, timeout=30)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("エラー: コンポーネント 'shipping' はありません。")


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


#: What Kubernetes' service links put in the catalog's port setting when the release is
#: named `kansoku` and the pod keeps its service links.
SERVICE_LINK = "tcp://10.0.0.1:8002"


@pytest.mark.parametrize("command", ["serve", "health"])
def test_a_service_link_in_the_port_is_one_line_naming_the_variable_and_the_fix(
    command: str,
) -> None:
    env = environment(KANSOKU_SERVICE="catalog", KANSOKU_CATALOG_PORT=SERVICE_LINK,
                      KANSOKU_DATABASE_URL="postgresql://kansoku:pw@127.0.0.1:1/kansoku")
    result = run_cli(command, env=env)
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: KANSOKU_CATALOG_PORT={SERVICE_LINK} is a Kubernetes "
                           "service link"), line
    assert "enableServiceLinks: false" in line
    # The image's healthcheck (the module, not the CLI) says the same.
    check = healthcheck(env)
    assert check.returncode == 1 and check.stderr.strip() == line


async def test_migrate_waits_for_and_then_leaves_the_fault_flags_an_operator_set(
    postgres_url: str, tmp_path: Path,
) -> None:
    """Compose runs `kansoku migrate` on every `up` (to scale a service, say): a flag
    switched on stays on unless --reset-flags asks; a missing file is made all off."""
    database = await database_of_its_own(postgres_url, "migrate_flags")
    flags = tmp_path / "flags.json"
    env = environment(KANSOKU_DATABASE_URL=database, KANSOKU_FLAGS_FILE=str(flags))

    def migrate(*args: str) -> str:
        result = run_cli("migrate", *args, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout

    # A pod's init container waits for the migration; before it, it gives up naming
    # the schemas behind.
    early = run_cli("migrate", "--wait", "1", env=env)
    assert early.returncode == 1
    assert "the schemas of identity, catalog" in early.stderr
    assert "is the migration job running?" in early.stderr
    first = migrate()
    assert f"fault flags: every flag off ({flags})" in first
    assert "drills: schema up to date" in first
    assert "every schema is migrated" in migrate("--wait", "10")
    assert set(flagfile.read_variants(flags).values()) == {OFF}
    flagfile.set_variant(flags, "paymentFailure", "25%")
    out = migrate()
    assert "left as they are, paymentFailure on" in out
    assert flagfile.read_variants(flags)["paymentFailure"] == "25%"
    assert "every flag off" in migrate("--reset-flags")
    assert flagfile.read_variants(flags)["paymentFailure"] == OFF


def test_cluster_secret_makes_each_secret_once_and_keeps_it(tmp_path: Path) -> None:
    """The chart's secrets hook: the first install makes random values, a later upgrade
    (which may need a new key) adds only what is missing and changes nothing else."""
    server = KubernetesApi()
    server.grants["hook"] = {("create", "secrets", "shop", ""),
                             ("get", "secrets", "shop", "shop-kansoku-generated"),
                             ("update", "secrets", "shop", "shop-kansoku-generated")}
    with serve_in_thread(server.app()) as url:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(server.kubeconfig(url, "hook", "shop")))
        env = environment(KUBECONFIG=str(kubeconfig))
        made = run_cli("cluster-secret", "shop-kansoku-generated", "POSTGRES_PASSWORD",
                       "KANSOKU_SERVICE_SECRET", "--label", "app.kubernetes.io/instance=shop",
                       env=env)
        assert made.returncode == 0, made.stderr
        first = server.data("shop", "shop-kansoku-generated", "secrets")
        assert set(first) == {"POSTGRES_PASSWORD", "KANSOKU_SERVICE_SECRET"}
        assert all(len(value) == 48 and int(value, 16) >= 0 for value in first.values())
        assert not any(value in made.stdout + made.stderr for value in first.values())
        again = run_cli("cluster-secret", "shop-kansoku-generated", "POSTGRES_PASSWORD",
                        "KANSOKU_SERVICE_SECRET", "KANSOKU_EXPLORER_PASSWORD", env=env)
        assert again.returncode == 0, again.stderr
        second = server.data("shop", "shop-kansoku-generated", "secrets")
        assert {key: second[key] for key in first} == first
        assert len(second["KANSOKU_EXPLORER_PASSWORD"]) == 48
        server.grants["hook"].clear()
        refused = run_cli("cluster-secret", "shop-kansoku-generated", "X", env=env)
        assert refused.returncode == 1
        (line,) = refused.stderr.strip().splitlines()
        assert "answered 403 for secret shop-kansoku-generated" in line
