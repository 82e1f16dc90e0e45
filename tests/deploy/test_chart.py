"""The Helm chart in deploy/helm/kansoku renders, with Helm's own engine (Helm 4's Go
SDK, through the helm-python-sdk wheel: no helm binary is packaged on PyPI or Debian),
into manifests that Kubernetes' published schemas accept (kubernetes-validate, offline,
strict: an unknown field is an error) and that the "restricted" Pod Security level
admits, and says what the values ask for: no service links, secrets made in the
cluster (two renders identical), a ServiceAccount per component, network policies that
allow exactly the flows the code has, telemetry that always goes somewhere, migrations
that `helm install --wait --atomic` can wait for."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from kansoku import topology
from kansoku.explorer.alerts import prometheus
from kansoku.explorer.alerts.rules import load_rules
from kansoku.kit.settings import ServiceSettings
from tests.deploy.docker import REPOSITORY

CHART = REPOSITORY / "deploy" / "helm" / "kansoku"
#: The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion is >=1.25: the
#: first with every API it uses as v1) in kubernetes-validate's schemas, and the newest.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
EXTERNAL = {
    "postgresql": {"bundled": False, "url": "postgresql://kansoku:pw@db.internal:5433/kansoku"},
    "nats": {"bundled": False, "url": "nats://nats.internal:4222"},
    "valkey": {"bundled": False, "url": "redis://:pw@cache.internal:6379/0"},
}
#: Everything optional on at once.
EVERYTHING = {
    **EXTERNAL,
    "collector": {"enabled": True},
    "telemetry": {"otlpEndpoint": "https://otlp.nr-data.net", "headers": "api-key=0123"},
    "ingress": {"enabled": True, "className": "nginx", "host": "shop.example.com",
                "explorerHost": "explorer.shop.example.com", "tls": {"secretName": "shop-tls"}},
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "services": {"orders": {"autoscaling": {"enabled": True}}},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/k"}},
}
#: A mixed shop (docs/approaches.md): New Relic everywhere but the catalog on X-Ray and
#: the cart on OpenTelemetry.
MIXED = {"telemetry": {"instrumentation": "newrelic"},
         "services": {"catalog": {"instrumentation": "xray"},
                      "cart": {"instrumentation": "otel"}}}
#: The explorer's intakes for the vendor approaches: (protocol, port).
VENDOR_INTAKES = {("UDP", 2000), ("UDP", 25888), ("TCP", 25888), ("TCP", 8443)}
#: CRDs of the Prometheus Operator: not in Kubernetes' schemas.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
#: The servers a service may use, as `kit.connections.Connections` names them.
CONNECTIONS = {"postgresql_schema": "postgresql", "valkey": "valkey", "nats_messaging": "nats"}


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently; Kubernetes' decoder does too, or refuses, depending on the version)."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key) for key, _ in node.value]
    doubled = {key for key in keys if keys.count(key) > 1}
    assert not doubled, f"keys given twice at line {node.start_mark.line + 1}: {doubled}"
    return loader.construct_mapping(node)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                _unique_mapping)


def rendered(values: dict[str, Any] | None = None, name: str = "shop", *,
             install: bool = True) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values or {}, name=name, namespace="kansoku",
                            is_install=install, is_upgrade=not install)


def render(values: dict[str, Any] | None = None, name: str = "shop", *,
           install: bool = True) -> list[dict[str, Any]]:
    """Every object the chart makes for release `name` in namespace `kansoku`."""
    files = rendered(values, name, install=install)
    return [document for path, text in sorted(files.items()) if path.endswith(".yaml")
            for document in yaml.load_all(text, UniqueKeyLoader) if document]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {variable["name"]: variable.get("value", "") for variable in container.get("env", [])}


def pods(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template: (its object's name, the pod spec)."""
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]


def containers(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for _, pod in pods(objects):
        yield from pod.get("initContainers", [])
        yield from pod["containers"]


@pytest.mark.parametrize("values", [{}, EXTERNAL, EVERYTHING, MIXED],
                         ids=["bundled", "external", "everything", "mixed"])
def test_the_chart_lints_and_its_manifests_are_valid_kubernetes(
    values: dict[str, Any],
) -> None:
    findings = helm.lint(CHART, values, strict=True)
    assert findings["errors"] == [], findings
    objects = render(values)
    assert objects
    for version in KUBERNETES_VERSIONS:
        for manifest in objects:
            if manifest["kind"] not in OPERATOR_KINDS:
                kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["bundled", "everything"])
def test_a_release_named_kansoku_gives_no_pod_service_links(values: dict[str, Any]) -> None:
    """Its Services are kansoku-catalog…: with service links every pod would get
    KANSOKU_CATALOG_PORT=tcp://… — the catalog's own port setting."""
    objects = render(values, name="kansoku")
    assert "kansoku-catalog" in by_kind(objects, "Service")
    for name, pod in pods(objects):
        assert pod.get("enableServiceLinks") is False, f"{name} gets service links"


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["bundled", "everything"])
def test_two_renders_are_identical(values: dict[str, Any]) -> None:
    """No random value and no `lookup` in a render: `helm template`, --dry-run and Argo
    CD give the same manifests every time, and nothing rolls for nothing."""
    assert rendered(values) == rendered(values)
    for text in rendered(values).values():
        assert "lookup" not in text


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What in a pod spec the "restricted" Pod Security Standard (as of Kubernetes
    1.25+) forbids — the checks of the baseline and restricted levels that a pod spec
    can break."""
    found = []
    pod_context = pod.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            found.append(f"{host} is set")
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= allowed_volumes:
            found.append(f"volume {volume['name']} is {kinds - allowed_volumes}")
    if pod_context.get("sysctls"):
        found.append("sysctls are set")
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        context = container.get("securityContext") or {}
        where = f"container {container['name']}"
        if context.get("privileged"):
            found.append(f"{where} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where} may escalate privileges")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where} does not drop ALL capabilities")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{where} adds capabilities")
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            found.append(f"{where} may run as root")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"{where} runs as uid 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile")
                   or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where} has no seccomp profile")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{where} uses a host port")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{where} unmasks /proc")
    return found


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["bundled", "everything"])
def test_every_pod_is_admitted_at_the_restricted_pod_security_level(
    values: dict[str, Any],
) -> None:
    violations = {name: found for name, pod in pods(render(values))
                  if (found := restricted_violations(pod))}
    assert violations == {}


def test_the_policy_check_finds_what_the_old_chart_had() -> None:
    """The check itself: a bare StatefulSet pod, as the chart had, fails it."""
    bare = {"containers": [{"name": "postgresql", "image": "postgres:17"}]}
    assert set(restricted_violations(bare)) == {
        "container postgresql may escalate privileges",
        "container postgresql does not drop ALL capabilities",
        "container postgresql may run as root",
        "container postgresql has no seccomp profile"}


def test_no_object_has_a_label_twice_and_every_scratch_volume_is_bounded() -> None:
    objects = render(EVERYTHING)  # UniqueKeyLoader refuses a doubled key
    for name, pod in pods([*objects, *render()]):
        for volume in pod.get("volumes", []):
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), f"{name}: {volume['name']}"


def test_every_component_has_its_own_annotated_service_account() -> None:
    objects = render(EVERYTHING)
    accounts = by_kind(objects, "ServiceAccount")
    for name, pod in pods(objects):
        account = accounts[pod["serviceAccountName"]]
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"], name
    deployments = by_kind(objects, "Deployment")
    names = {d["spec"]["template"]["spec"]["serviceAccountName"] for d in deployments.values()}
    assert len(names) == len(deployments), "one account per component"
    # Only the gateway (flags) and the Collector (k8sattributes) talk to the API.
    with_token = {name for name, d in deployments.items()
                  if d["spec"]["template"]["spec"]["automountServiceAccountToken"]}
    assert with_token == {"shop-kansoku-gateway", "shop-kansoku-collector"}


def test_secrets_are_made_once_by_a_hook_and_existing_ones_are_used_as_documented() -> None:
    objects = render()
    hook = by_kind(objects, "Job")["shop-kansoku-secrets"]
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    args = hook["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["cluster-secret", "shop-kansoku-generated"]
    assert {"KANSOKU_SERVICE_SECRET", "POSTGRES_PASSWORD", "KANSOKU_EXPLORER_PASSWORD",
            "KANSOKU_EXPLORER_TOKEN"} <= set(args)
    role = by_kind(objects, "Role")["shop-kansoku-secrets"]
    assert {"resourceNames": ["shop-kansoku-generated"], "verbs": ["get", "update"],
            "apiGroups": [""], "resources": ["secrets"]} in role["rules"]
    # The hook's RBAC is in place before it runs, and it runs before the migration.
    weight = {o["metadata"]["name"]: int(o["metadata"]["annotations"]["helm.sh/hook-weight"])
              for o in objects if "helm.sh/hook-weight" in o["metadata"].get("annotations", {})}
    assert weight["shop-kansoku-secrets"] < weight["shop-kansoku-migrate"]
    # With a Secret of your own, no hook, and every key read from it is documented.
    mine = render({"existingSecret": "mine"})
    assert "shop-kansoku-secrets" not in by_kind(mine, "Job")
    used = {ref["key"] for c in containers(mine) for e in c.get("env", [])
            if (ref := e.get("valueFrom", {}).get("secretKeyRef")) and ref["name"] == "mine"}
    mine_external = render({"existingSecret": "mine", **EXTERNAL,
                            "telemetry": {"headers": "a=b"}})
    used |= {ref["key"] for c in containers(mine_external) for e in c.get("env", [])
             if (ref := e.get("valueFrom", {}).get("secretKeyRef")) and ref["name"] == "mine"}
    documented = set(re.findall(r"^#   ([A-Z_]+) ", (CHART / "values.yaml").read_text(),
                                re.MULTILINE))
    assert used and used <= documented, used - documented


def test_a_bundled_install_migrates_beside_pods_that_wait_and_upgrades_migrate_first() -> None:
    install = by_kind(render(), "Job")
    assert "helm.sh/hook" not in install["shop-kansoku-migrate-install"]["metadata"].get(
        "annotations", {})
    assert install["shop-kansoku-migrate"]["metadata"]["annotations"]["helm.sh/hook"] == (
        "pre-upgrade")
    upgrade = by_kind(render(install=False), "Job")
    assert "shop-kansoku-migrate-install" not in upgrade
    external = by_kind(render(EXTERNAL), "Job")["shop-kansoku-migrate"]
    assert external["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    deployments = by_kind(render(), "Deployment")
    for name, flow in code_flows().items():
        if name == "explorer":
            continue
        init = deployments[f"shop-kansoku-{name}"]["spec"]["template"]["spec"].get(
            "initContainers", [])
        if "postgresql" in flow.servers:
            assert init[0]["args"] == ["migrate", "--wait", "600"], name
        else:
            assert init == [], f"{name} has no schema: it neither waits nor gets the URL"


class Flow:
    """What one component talks to, as the code says."""

    def __init__(self, calls: set[str], servers: set[str]) -> None:
        self.calls, self.servers = calls, servers

    def __repr__(self) -> str:
        return f"Flow(calls={sorted(self.calls)}, servers={sorted(self.servers)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Flow) and (self.calls, self.servers) == (
            other.calls, other.servers)


def code_flows() -> dict[str, Flow]:
    """From the code: the services each component's Settings has a URL of (every app
    verifies tokens with identity's keys: `kit.app`), and the servers its app factory
    asks `Connections` for."""
    flows = {}
    for info in topology.SERVICES:
        module = importlib.import_module(info.app_factory.split(":")[0])
        settings = next(value for value in vars(module).values() if isinstance(value, type)
                        and issubclass(value, ServiceSettings) and value is not ServiceSettings)
        calls = {field.removesuffix("_url") for field in settings.model_fields
                 if field.removesuffix("_url") in topology.SERVICES_BY_NAME
                 and field.endswith("_url")} - {info.name}
        servers = set()
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Connections":
                servers |= {CONNECTIONS[kw.arg] for kw in node.keywords if kw.arg in CONNECTIONS}
        flows[info.name] = Flow(calls, servers)
    return flows


def _selected(peer: dict[str, Any]) -> str | None:
    """The release's component a NetworkPolicy peer selects, if it selects one."""
    component: str | None = peer.get("podSelector", {}).get("matchLabels", {}).get(
        "app.kubernetes.io/component")
    return component


def chart_flows(objects: list[dict[str, Any]]) -> dict[str, Flow]:
    """What the NetworkPolicies let each kansoku component reach among the release's
    pods, telemetry (the explorer's OTLP port) aside."""
    policies = by_kind(objects, "NetworkPolicy")
    flows = {}
    for info in topology.SERVICES:
        flow = Flow(set(), set())
        for rule in policies[f"shop-kansoku-{info.name}"]["spec"]["egress"]:
            ports = [port["port"] for port in rule["ports"]]
            telemetry = {topology.DEFAULT_OTLP_PORT, *(port for _, port in VENDOR_INTAKES)}
            for component in filter(None, map(_selected, rule.get("to", []))):
                if component in ("postgresql", "nats", "valkey"):
                    flow.servers.add(component)
                elif not set(ports) <= telemetry:
                    flow.calls.add(component)
        flows[info.name] = flow
    return flows


def test_the_network_policies_allow_exactly_the_flows_the_code_has() -> None:
    objects = render()
    assert chart_flows(objects) == code_flows()
    policies = by_kind(objects, "NetworkPolicy")
    deny = policies["shop-kansoku-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    # Ingress mirrors egress: a service admits exactly its callers.
    for info in topology.SERVICES:
        if info.name in ("explorer", "gateway"):
            continue
        callers = {name for name, flow in code_flows().items() if info.name in flow.calls}
        ingress = policies[f"shop-kansoku-{info.name}"]["spec"].get("ingress") or []
        admitted = {_selected(peer) for rule in ingress for peer in rule["from"]}
        assert admitted == callers, info.name
    # NATS and Valkey (no password when bundled) admit only their users.
    for server in ("nats", "valkey"):
        users = {name for name, flow in code_flows().items() if server in flow.servers}
        ingress = policies[f"shop-kansoku-{server}"]["spec"]["ingress"]
        assert {_selected(peer) for rule in ingress for peer in rule["from"]} == users
    # The explorer's OTLP port takes every sender's telemetry, its UI only the public.
    explorer = policies["shop-kansoku-explorer"]["spec"]["ingress"]
    otlp = next(rule for rule in explorer if rule["ports"] == [{"protocol": "TCP",
                                                                 "port": 4318}])
    assert {_selected(peer) for peer in otlp["from"]} == set(code_flows()) - {"explorer"}


def test_external_servers_are_reached_on_the_ports_their_urls_name() -> None:
    policies = by_kind(render(EXTERNAL), "NetworkPolicy")
    orders = policies["shop-kansoku-orders"]["spec"]["egress"]
    external = [rule for rule in orders if {"ipBlock": {"cidr": "0.0.0.0/0"}} in rule["to"]]
    assert sorted(port["port"] for rule in external for port in rule["ports"]) == [4222, 5433]


def test_telemetry_goes_through_the_collector_or_the_render_fails() -> None:
    objects = render(EVERYTHING)
    for container in containers(objects):
        variables = environment(container)
        if container["name"] not in ("explorer", "collector", "migrate", "secrets",
                                     "wait-for-migrations"):
            assert variables["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
                "http://shop-kansoku-collector:4318"), container["name"]
    config = yaml.safe_load(by_kind(objects, "ConfigMap")["shop-kansoku-collector"]["data"][
        "config.yaml"])
    for pipeline in config["service"]["pipelines"].values():
        assert pipeline["processors"] == ["memory_limiter", "k8sattributes", "batch"]
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(config[kind]), kind
        assert pipeline["exporters"] == ["otlphttp/backend", "otlphttp/explorer"]
    assert config["exporters"]["otlphttp/backend"]["headers"] == {
        "api-key": "${env:OTLP_HEADER_0}"}
    assert by_kind(objects, "Secret")["shop-kansoku-env"]["stringData"]["OTLP_HEADER_0"] == (
        "0123")
    with pytest.raises(helm.HelmError, match="telemetry would go nowhere"):
        render({"explorer": {"enabled": False}})
    with pytest.raises(helm.HelmError, match="telemetry would go nowhere"):
        render({"explorer": {"enabled": False}, "collector": {"enabled": True}})


def test_the_flags_are_one_configmap_every_pod_mounts_and_only_the_gateway_switches() -> None:
    objects = render()
    assert "data" not in by_kind(objects, "ConfigMap")["shop-kansoku-flags"], (
        "the chart writes no flags: an upgrade keeps what was switched")
    for name, pod in pods(objects):
        if name.startswith("shop-kansoku-") and "flags" in {v["name"] for v in pod["volumes"]}:
            container = pod["containers"][0]
            assert environment(container)["KANSOKU_FLAGS_FILE"] == (
                "/etc/kansoku/flags/flags.json")
            mount = next(m for m in container["volumeMounts"] if m["name"] == "flags")
            assert mount == {"name": "flags", "mountPath": "/etc/kansoku/flags",
                             "readOnly": True}, "a directory mount: the kubelet updates it"
    mounted = {name for name, pod in pods(objects)
               if "flags" in {v["name"] for v in pod["volumes"]}}
    assert mounted == {f"shop-kansoku-{s.name}" for s in topology.SERVICES
                       if s.name != "explorer"}
    gateway = by_kind(objects, "Deployment")["shop-kansoku-gateway"]
    assert environment(gateway["spec"]["template"]["spec"]["containers"][0])[
        "KANSOKU_FLAGS_CONFIGMAP"] == "shop-kansoku-flags"
    role = by_kind(objects, "Role")["shop-kansoku-flags"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "resourceNames": ["shop-kansoku-flags"],
                              "verbs": ["get", "update"]}]
    binding = by_kind(objects, "RoleBinding")["shop-kansoku-flags"]
    assert binding["subjects"][0]["name"] == "shop-kansoku-gateway"


def test_bundled_servers_are_hardened_probed_budgeted_and_headless() -> None:
    objects = render()
    services = by_kind(objects, "Service")
    budgets = by_kind(objects, "PodDisruptionBudget")
    for name, server in by_kind(objects, "StatefulSet").items():
        governing = services[server["spec"]["serviceName"]]
        assert governing["spec"]["clusterIP"] == "None", name
        (container,) = server["spec"]["template"]["spec"]["containers"]
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container), name
        assert name in budgets and name in services


def test_replicas_spread_and_scale_and_one_ingress_carries_both_hosts() -> None:
    objects = render(EVERYTHING)
    deployments = by_kind(objects, "Deployment")
    orders = deployments["shop-kansoku-orders"]
    assert "replicas" not in orders["spec"], "the autoscaler owns the count"
    assert by_kind(objects, "HorizontalPodAutoscaler")["shop-kansoku-orders"]["spec"][
        "scaleTargetRef"]["name"] == "shop-kansoku-orders"
    spread = deployments["shop-kansoku-catalog"]["spec"]["template"]["spec"][
        "topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
    assert spread[0]["whenUnsatisfiable"] == "DoNotSchedule"
    ingress = by_kind(objects, "Ingress")["shop-kansoku"]["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"secretName": "shop-tls", "hosts": [
        "shop.example.com", "explorer.shop.example.com"]}]
    assert [rule["http"]["paths"][0]["backend"]["service"]["name"]
            for rule in ingress["rules"]] == ["shop-kansoku-gateway", "shop-kansoku-explorer"]
    gateway = environment(deployments["shop-kansoku-gateway"]["spec"]["template"]["spec"][
        "containers"][0])
    assert gateway["KANSOKU_GATEWAY_EXPLORER_PUBLIC_URL"] == "https://explorer.shop.example.com"


def test_the_prometheus_rule_is_what_kansoku_alerts_export_writes() -> None:
    objects = render(EVERYTHING)
    rule = by_kind(objects, "PrometheusRule")["shop-kansoku"]
    exported = prometheus.prometheus_rules(load_rules(Path("/nonexistent/alerts.yaml")))
    assert rule["spec"] == json.loads(json.dumps(exported)), (
        "regenerate deploy/helm/kansoku/files/kansoku-rules.yml with kansoku alerts export")
    monitor = by_kind(objects, "ServiceMonitor")["shop-kansoku"]["spec"]
    (endpoint,) = monitor["endpoints"]
    assert endpoint["relabelings"] == [{
        "sourceLabels": ["__meta_kubernetes_service_label_app_kubernetes_io_component"],
        "targetLabel": "service"}], "series labelled as the exported rules expect"


@pytest.mark.parametrize("typo", [{"servces": {}}, {"services": {"orders": {"replica": 3}}},
                                  {"postgresql": {"bundeld": False}}])
def test_a_misspelt_value_fails_the_render(typo: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError, match="additional properties"):
        render(typo)


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


def test_each_pod_gets_the_addresses_it_uses_and_no_others() -> None:
    objects = render()
    deployments = by_kind(objects, "Deployment")
    gateway = environment(deployments["shop-kansoku-gateway"]["spec"]["template"]["spec"][
        "containers"][0])
    assert gateway["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://shop-kansoku-explorer:4318"
    assert gateway["KANSOKU_CATALOG_URL"] == "http://shop-kansoku-catalog:8002"
    assert gateway["KANSOKU_REDIS_URL"] == "redis://shop-kansoku-valkey:6379/0"
    assert "KANSOKU_DATABASE_URL" not in gateway and "KANSOKU_PAYMENTS_URL" not in gateway
    orders = environment(deployments["shop-kansoku-orders"]["spec"]["template"]["spec"][
        "containers"][0])
    assert orders["KANSOKU_DATABASE_URL"] == (
        "postgresql://kansoku:$(POSTGRES_PASSWORD)@shop-kansoku-postgresql:5432/kansoku")
    assert orders["KANSOKU_NATS_URL"] == "nats://shop-kansoku-nats:4222"
    assert "KANSOKU_REDIS_URL" not in orders


def test_an_external_server_without_its_url_is_one_clear_error() -> None:
    with pytest.raises(helm.HelmError, match=r"postgresql\.url is required"):
        render({"postgresql": {"bundled": False}})


def test_every_service_is_told_every_approach_and_vendors_report_to_the_explorer() -> None:
    plain = render()
    for container in containers(plain):
        if container["name"] not in ("explorer", "migrate", "wait-for-migrations"):
            env = environment(container)
            if "OTEL_EXPORTER_OTLP_ENDPOINT" in env:
                assert env["KANSOKU_INSTRUMENTATION"] == "otel", container["name"]
                assert "NEW_RELIC_HOST" not in env and "AWS_XRAY_DAEMON_ADDRESS" not in env
    explorer = by_kind(plain, "Service")["shop-kansoku-explorer"]["spec"]["ports"]
    assert {port["port"] for port in explorer} == {8800, 4318}

    mixed = render(MIXED)
    services = [container for container in containers(mixed)
                if "OTEL_EXPORTER_OTLP_ENDPOINT" in environment(container)]
    assert {container["name"] for container in services} >= \
        {info.name for info in topology.SERVICES} - {"explorer"}
    for container in services:
        env = environment(container)
        # Every service knows every approach: the OpenTelemetry cart learns that the
        # catalog runs X-Ray, and so speaks X-Amzn-Trace-Id.
        assert (env["KANSOKU_INSTRUMENTATION"], env["KANSOKU_CATALOG_INSTRUMENTATION"],
                env["KANSOKU_CART_INSTRUMENTATION"]) == ("newrelic", "xray", "otel")
        assert env["AWS_XRAY_DAEMON_ADDRESS"] == "shop-kansoku-explorer:2000"
        assert env["AWS_EMF_AGENT_ENDPOINT"] == "udp://shop-kansoku-explorer:25888"
        assert (env["NEW_RELIC_HOST"], env["NEW_RELIC_PORT"]) == ("shop-kansoku-explorer",
                                                                  "8443")
    explorer = by_kind(mixed, "Service")["shop-kansoku-explorer"]["spec"]["ports"]
    assert {(port.get("protocol", "TCP"), port["port"]) for port in explorer} >= VENDOR_INTAKES
    # The network policies let every service reach those intakes, and nothing else new.
    policies = by_kind(mixed, "NetworkPolicy")
    ingress = policies["shop-kansoku-explorer"]["spec"]["ingress"]
    vendor = next(rule for rule in ingress if {(port["protocol"], port["port"])
                                               for port in rule["ports"]} == VENDOR_INTAKES)
    assert {_selected(peer) for peer in vendor["from"]} == set(code_flows()) - {"explorer"}
    assert chart_flows(mixed) == code_flows()


def test_a_vendor_approach_without_the_explorer_is_one_clear_error() -> None:
    with pytest.raises(helm.HelmError, match=re.escape(
            "instrumentation xray reports to the explorer's intakes: keep explorer.enabled")):
        render({"explorer": {"enabled": False},
                "telemetry": {"otlpEndpoint": "https://otlp.example.com"},
                "services": {"catalog": {"instrumentation": "xray"}}})
