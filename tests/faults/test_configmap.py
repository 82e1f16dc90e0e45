"""The fault flags in a Kubernetes cluster: a ConfigMap in flagd's format, switched
through the Kubernetes API by `kansoku flags` and the gateway, and read by every pod as
the file the kubelet projects from it.

No Kubernetes API server can run here (no registry ships kube-apiserver), so the API is
`tests.support.KubernetesApi`, which answers the two calls used as the real one does
(resourceVersion conflicts, RBAC by name); the client is the real one (lightkube, with a
kubeconfig), and the pods' side is FaultFlags reading the kubelet's projection layout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI
from lightkube import Client, KubeConfig

from kansoku.faults import catalogue, flagfile
from kansoku.faults.configmap import FLAGS_CONFIGMAP_VARIABLE, KEY, FlagConfigMap
from kansoku.faults.flagfile import FlagFileError
from kansoku.kit.flags import FaultFlags
from kansoku.kit.telemetry import Telemetry
from kansoku.services.gateway.app import create_app
from kansoku.services.gateway.settings import Settings
from tests.support import (
    KubernetesApi,
    eventually,
    project_configmap,
    run_cli,
    serve_in_thread,
)
from tests.tokens import TokenIssuer

NAMESPACE, NAME = "shop", "shop-kansoku-flags"
#: The gateway's service account, as the chart's Role grants it: get and update of the
#: flags ConfigMap only.
GATEWAY, READER = "gateway-token", "reader-token"


@pytest.fixture
def api() -> Iterator[tuple[KubernetesApi, str]]:
    server = KubernetesApi()
    # As the chart creates it: no document yet, so every flag is off.
    server.put_configmap(NAMESPACE, NAME, {})
    server.grants[GATEWAY] = {("get", "configmaps", NAMESPACE, NAME),
                              ("update", "configmaps", NAMESPACE, NAME)}
    server.grants[READER] = {("get", "configmaps", NAMESPACE, NAME)}
    with serve_in_thread(server.app()) as url:
        yield server, url
    for client in _clients:
        client.close()
    _clients.clear()


_clients: list[Client] = []


def store(api: tuple[KubernetesApi, str], token: str = GATEWAY,
          name: str = NAME) -> FlagConfigMap:
    """The ConfigMap `name`, reached as `token`'s user (the client closed after the
    test)."""
    server, url = api
    client = Client(KubeConfig.from_dict(server.kubeconfig(url, token, NAMESPACE)))
    _clients.append(client)
    return FlagConfigMap(name, client=client)


def test_flags_are_listed_set_and_reset_in_the_configmap(api: tuple[KubernetesApi, str]
                                                         ) -> None:
    server, _ = api
    flags = store(api)
    assert set(flags.read_variants().values()) == {"off"}
    assert flags.set_variant("PAYMENTFAILURE", "25%") == ("paymentFailure", "25%")
    document = json.loads(server.data(NAMESPACE, NAME)[KEY])
    assert document["flags"]["paymentFailure"]["defaultVariant"] == "25%"
    assert document["$schema"] == flagfile.FLAGD_SCHEMA  # flagd's format, as the file
    assert flags.read_variants()["paymentFailure"] == "25%"
    flags.reset()
    assert set(flags.read_variants().values()) == {"off"}
    with pytest.raises(catalogue.FlagError, match="Variants: off"):
        flags.set_variant("paymentFailure", "33%")


def test_two_writers_at_once_lose_neither_change(api: tuple[KubernetesApi, str]) -> None:
    """Another writer sets a flag between our read and our replace: the API server
    refuses ours (409), we read again and write both."""
    server, _ = api

    def meanwhile() -> None:
        server.before_replace = None
        server.put_configmap(NAMESPACE, NAME, {KEY: flagfile.document_text(
            {}, {"inventoryFailure": "10%"})})

    server.before_replace = meanwhile
    flags = store(api)
    flags.set_variant("paymentFailure", "50%")
    variants = flags.read_variants()
    assert (variants["paymentFailure"], variants["inventoryFailure"]) == ("50%", "10%")


def test_refusals_are_one_line_naming_the_configmap_and_the_fix(
    api: tuple[KubernetesApi, str],
) -> None:
    with pytest.raises(FlagFileError, match=r"Kubernetes refused to write configmap "
                                            r"shop-kansoku-flags \(403: .*service account"):
        store(api, READER).set_variant("paymentFailure", "50%")
    with pytest.raises(FlagFileError, match=r"refused to read .*\(401"):
        store(api, "nobody").read_variants()
    server, _ = api
    missing = store(api, name="elsewhere")
    server.grants[GATEWAY].add(("get", "configmaps", NAMESPACE, "elsewhere"))
    with pytest.raises(FlagFileError, match=r"there is no configmap elsewhere: install the "
                                            r"chart with flags\.enabled"):
        missing.read_variants()


def test_the_cli_switches_a_release_s_flags_with_a_kubeconfig(
    api: tuple[KubernetesApi, str], tmp_path: Path,
) -> None:
    server, url = api
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(server.kubeconfig(url, GATEWAY, "default")))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KANSOKU_")},
           "KUBECONFIG": str(kubeconfig), "KANSOKU_DATA_DIR": str(tmp_path / "unused")}
    changed = run_cli("flags", "set", "cartCacheOutage", "on", "--configmap",
                      f"{NAMESPACE}/{NAME}", env=env)
    assert changed.returncode == 0, changed.stderr
    assert f"configmap {NAMESPACE}/{NAME}" in changed.stdout
    listed = run_cli("flags", "list", "--json", env={
        **env, FLAGS_CONFIGMAP_VARIABLE: f"{NAMESPACE}/{NAME}"})
    assert listed.returncode == 0, listed.stderr
    assert {flag["name"]: flag["variant"] for flag in json.loads(listed.stdout)}[
        "cartCacheOutage"] == "on"
    refused = run_cli("flags", "reset", "--configmap", f"{NAMESPACE}/elsewhere", env=env)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "unused").exists(), "no local flags file was made"


async def test_the_gateway_s_admin_api_switches_the_configmap(
    api: tuple[KubernetesApi, str], tmp_path: Path, valkey_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in a pod: the flags mounted as a file for reading, the ConfigMap named for
    switching, the API reached with the pod's credentials (a kubeconfig here)."""
    server, url = api
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(server.kubeconfig(url, GATEWAY, NAMESPACE)))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    mounted = tmp_path / "flags"
    project_configmap(mounted, {})
    tokens = TokenIssuer()
    app: FastAPI = create_app(Settings(redis_url=valkey_url, flags_file=mounted / KEY,
                                       flags_configmap=NAME), Telemetry("gateway"))
    app.state.tokens = tokens.verifier
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://gw") as client):
        changed = await client.put("/api/v1/admin/flags/paymentLatency",
                                   headers=tokens.headers("admin"), json={"variant": "1s"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["variant"] == "1s"
        assert json.loads(server.data(NAMESPACE, NAME)[KEY])["flags"]["paymentLatency"][
            "defaultVariant"] == "1s"
        server.grants[GATEWAY].discard(("update", "configmaps", NAMESPACE, NAME))
        refused = await client.post("/api/v1/admin/flags/reset",
                                    headers=tokens.headers("admin"))
        assert refused.status_code == 503
        assert refused.json()["detail"].startswith("Kubernetes refused to write configmap")


async def test_a_pod_reads_the_flags_the_kubelet_projects_from_the_configmap(
    api: tuple[KubernetesApi, str], tmp_path: Path,
) -> None:
    """The chart creates the ConfigMap empty (no file yet: every flag off); once a flag
    is set, the kubelet swaps in a new projection, which the service's flags follow."""
    server, _ = api
    mounted = tmp_path / "flags"
    project_configmap(mounted, {})
    watcher = FaultFlags(mounted / KEY, "payments", catalogue.FLAG_KINDS)
    watcher.start()

    async def variant_is(expected: str) -> bool:
        return watcher.variant("paymentFailure") == expected

    try:
        assert watcher.active("paymentFailure") is None
        store(api).set_variant("paymentFailure", "50%")
        project_configmap(mounted, server.data(NAMESPACE, NAME))
        await eventually(lambda: variant_is("50%"), 5, "the pod seeing paymentFailure on")
        store(api).set_variant("paymentFailure", "off")
        project_configmap(mounted, server.data(NAMESPACE, NAME))
        await eventually(lambda: variant_is("off"), 5, "the pod seeing paymentFailure off")
    finally:
        watcher.close()
