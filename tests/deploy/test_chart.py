"""The Helm chart in deploy/helm/kansoku renders, with Helm's own engine (Helm 4's Go
SDK, through the helm-python-sdk wheel: no helm binary is packaged on PyPI or Debian),
into manifests that Kubernetes' published schemas accept (kubernetes-validate, offline,
strict: an unknown field is an error), and says what the values ask for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from kansoku import topology
from tests.deploy.docker import REPOSITORY

CHART = REPOSITORY / "deploy" / "helm" / "kansoku"
#: The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion is >=1.25: the
#: first with every API it uses as v1) in kubernetes-validate's schemas, and the newest.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
EXTERNAL = {
    "postgresql": {"bundled": False, "url": "postgresql://kansoku:pw@db.internal:5432/kansoku"},
    "nats": {"bundled": False, "url": "nats://nats.internal:4222"},
    "valkey": {"bundled": False, "url": "redis://:pw@cache.internal:6379/0"},
}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart makes for a release `shop` in namespace `kansoku`."""
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values or {}, name="shop", namespace="kansoku",
                             is_install=True)
    return [document for name, text in sorted(files.items()) if name.endswith(".yaml")
            for document in yaml.safe_load_all(text) if document]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {variable["name"]: variable.get("value", "") for variable in container["env"]}


def containers(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield from o["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("values", [{}, EXTERNAL], ids=["bundled", "external"])
def test_the_chart_lints_and_its_manifests_are_valid_kubernetes(
    values: dict[str, Any],
) -> None:
    findings = helm.lint(CHART, values, strict=True)
    assert findings["errors"] == [], findings
    objects = render(values)
    assert objects
    for version in KUBERNETES_VERSIONS:
        for manifest in objects:
            kubernetes_validate.validate(manifest, version, strict=True)


def test_every_service_runs_as_a_probed_nonroot_deployment_with_a_service_and_budget(
) -> None:
    objects = render()
    deployments, services = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    budgets = by_kind(objects, "PodDisruptionBudget")
    for info in topology.SERVICES:
        name = f"shop-kansoku-{info.name}"
        deployment = deployments[name]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["serve", info.name]
        assert environment(container)["KANSOKU_SERVICE"] == info.name
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["envFrom"] == [{"secretRef": {"name": "shop-kansoku-env"}}]
        ports = {port["port"] for port in services[name]["spec"]["ports"]}
        assert info.default_port in ports
        if info.name == "explorer":
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"]["type"] == "Recreate"
            assert ports == {info.default_port, topology.DEFAULT_OTLP_PORT}
        else:
            assert budgets[name]["spec"]["maxUnavailable"] == 1
    assert deployments["shop-kansoku-catalog"]["spec"]["replicas"] == 2


def test_the_values_name_every_service_at_its_port() -> None:
    with helm.Chart.load(CHART) as chart:
        services = chart.values["services"]
    assert {name: entry["port"] for name, entry in services.items()} == {
        info.name: info.default_port for info in topology.SERVICES if info.name != "explorer"}


def test_bundled_infrastructure_and_a_migration_after_it_is_created() -> None:
    objects = render()
    assert set(by_kind(objects, "StatefulSet")) == {
        "shop-kansoku-postgresql", "shop-kansoku-nats", "shop-kansoku-valkey"}
    secrets = by_kind(objects, "Secret")
    urls = secrets["shop-kansoku-env"]["stringData"]
    password = secrets["shop-kansoku-postgresql"]["stringData"]["POSTGRES_PASSWORD"]
    assert len(password) >= 32
    assert urls["KANSOKU_DATABASE_URL"] == (
        f"postgresql://kansoku:{password}@shop-kansoku-postgresql:5432/kansoku")
    assert urls["KANSOKU_NATS_URL"] == "nats://shop-kansoku-nats:4222"
    assert urls["KANSOKU_REDIS_URL"] == "redis://shop-kansoku-valkey:6379/0"
    migrate = by_kind(objects, "Job")["shop-kansoku-migrate"]
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    (container,) = migrate["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    gateway = next(c for c in containers(objects) if c["name"] == "gateway")
    assert environment(gateway)["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        "http://shop-kansoku-explorer:4318")
    assert environment(gateway)["KANSOKU_CATALOG_URL"] == "http://shop-kansoku-catalog:8002"


def test_external_infrastructure_another_otlp_backend_and_replicas() -> None:
    objects = render({**EXTERNAL, "explorer": {"enabled": False},
                      "telemetry": {"otlpEndpoint": "https://otlp.nr-data.net",
                                    "headers": "api-key=0123", "protocol": "http/protobuf"},
                      "services": {"orders": {"replicas": 4}},
                      "serviceSecret": "the-same-everywhere"})
    assert by_kind(objects, "StatefulSet") == {}
    assert "shop-kansoku-explorer" not in by_kind(objects, "Deployment")
    secrets = by_kind(objects, "Secret")
    env = secrets["shop-kansoku-env"]["stringData"]
    assert env["KANSOKU_DATABASE_URL"] == EXTERNAL["postgresql"]["url"]
    assert env["KANSOKU_NATS_URL"] == EXTERNAL["nats"]["url"]
    assert env["KANSOKU_REDIS_URL"] == EXTERNAL["valkey"]["url"]
    assert env["KANSOKU_SERVICE_SECRET"] == "the-same-everywhere"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == "api-key=0123"
    # The migration runs before anything else is installed, with a Secret of its own.
    migrate = by_kind(objects, "Job")["shop-kansoku-migrate"]
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert secrets["shop-kansoku-migrate"]["metadata"]["annotations"]["helm.sh/hook"] == (
        "pre-install,pre-upgrade")
    deployments = by_kind(objects, "Deployment")
    assert deployments["shop-kansoku-orders"]["spec"]["replicas"] == 4
    orders = deployments["shop-kansoku-orders"]["spec"]["template"]["spec"]["containers"][0]
    assert environment(orders)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://otlp.nr-data.net"
    assert environment(orders)["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert orders["resources"]["requests"]["cpu"] == "100m", "defaults kept beside replicas"


def test_an_external_server_without_its_url_is_one_clear_error() -> None:
    with pytest.raises(helm.HelmError, match=r"postgresql\.url is required"):
        render({"postgresql": {"bundled": False}})
