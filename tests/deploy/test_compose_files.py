"""deploy/compose.yaml and its override files, read as files: every service of the
topology is there as `kansoku serve NAME`, only the gateway and the explorer are
published (on loopback), every override redirects every service that sends telemetry,
and the collectors' configurations wire only what they define. Compose itself checks
the files too, when it is installed. (tests/deploy/test_compose.py runs them.)"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kansoku import topology
from tests.deploy.docker import REPOSITORY, compose_command

DEPLOY = REPOSITORY / "deploy"
OVERRIDES = [DEPLOY / "otlp-endpoint.yaml", *sorted((DEPLOY / "recipes").glob("*.yaml"))]
OVERRIDES = [path for path in OVERRIDES if not path.name.endswith("-config.yaml")]
COLLECTOR_CONFIGS = sorted((DEPLOY / "recipes").glob("*-config.yaml"))
#: What the overrides' mandatory variables are set to when compose checks them.
OVERRIDE_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com",
                      "NEW_RELIC_LICENSE_KEY": "not-a-key", "AWS_REGION": "eu-west-1"}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def kansoku_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services that run `kansoku serve`, by the service they serve."""
    return {entry["environment"]["KANSOKU_SERVICE"]: entry
            for entry in compose["services"].values()
            if "KANSOKU_SERVICE" in (entry.get("environment") or {})}


def test_every_service_is_served_from_the_one_image_and_only_two_are_published() -> None:
    compose = load(DEPLOY / "compose.yaml")
    served = kansoku_services(compose)
    assert set(served) == set(topology.SERVICES_BY_NAME)
    for name, entry in served.items():
        assert entry["image"] == "${KANSOKU_IMAGE:-kansoku:latest}"
        assert entry["read_only"] is True and entry["cap_drop"] == ["ALL"]
        environment = entry["environment"]
        for other in topology.SERVICES:
            assert environment[topology.url_variable(other.name)] == (
                f"http://{other.name}:{other.default_port}")
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://explorer:4318"
        for port in entry.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} is published beyond loopback"
    published = {name for name, entry in served.items() if entry.get("ports")}
    assert published == {"gateway", "explorer"}
    migrate = compose["services"]["migrate"]
    # Migrations only: a second `up` must not turn off the flags an operator set.
    assert migrate["restart"] == "no" and migrate["command"] == ["migrate"]
    assert "entrypoint" not in migrate
    for name in ("identity", "gateway"):
        assert served[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")
    for server, variable in (("postgres", "KANSOKU_POSTGRES_IMAGE"),
                             ("nats", "KANSOKU_NATS_IMAGE"),
                             ("valkey", "KANSOKU_VALKEY_IMAGE")):
        assert compose["services"][server]["image"].startswith(f"${{{variable}:-")


@pytest.mark.parametrize("override", OVERRIDES, ids=lambda path: path.stem)
def test_an_override_redirects_every_service_that_sends_telemetry(override: Path) -> None:
    senders = set(kansoku_services(load(DEPLOY / "compose.yaml"))) - {"explorer"}
    services = load(override)["services"]
    redirected = {name for name, entry in services.items()
                  if "OTEL_EXPORTER_OTLP_ENDPOINT" in (entry.get("environment") or {})}
    assert redirected == senders
    for name, entry in services.items():
        for volume in entry.get("volumes", []):
            source = DEPLOY / volume.split(":")[0]
            assert source.is_file(), f"{name} mounts {source}, which is not there"


def test_new_relic_gets_protobuf_with_the_license_key_and_delta_temporality() -> None:
    environment = load(DEPLOY / "recipes" / "new-relic.yaml")["services"]["orders"]["environment"]
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":-https://otlp.nr-data.net}")
    assert environment["OTEL_EXPORTER_OTLP_HEADERS"].startswith(
        "api-key=${NEW_RELIC_LICENSE_KEY:?")
    assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert environment["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] == "delta"


def test_x_ray_ids_and_propagation_only_when_asked() -> None:
    environment = load(DEPLOY / "recipes" / "aws-xray.yaml")["services"]["gateway"][
        "environment"]
    assert environment["OTEL_PYTHON_ID_GENERATOR"] == "${OTEL_PYTHON_ID_GENERATOR:-random}"
    assert environment["OTEL_PROPAGATORS"] == "${OTEL_PROPAGATORS:-tracecontext,baggage}"


@pytest.mark.parametrize("path", COLLECTOR_CONFIGS, ids=lambda path: path.stem)
def test_a_collector_pipeline_uses_only_components_it_defines(path: Path) -> None:
    config = load(path)
    service = config["service"]
    assert set(service["pipelines"]) == {"traces", "metrics", "logs"}
    for pipeline in service["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(section, [])) <= set(config.get(section) or {}), \
                f"{path.name}: a pipeline names a {section[:-1]} that is not defined"
    assert set(service.get("extensions", [])) <= set(config.get("extensions") or {})


def test_the_collector_keeps_every_trace_with_an_error() -> None:
    config = load(DEPLOY / "recipes" / "otel-collector-config.yaml")
    policies = config["processors"]["tail_sampling"]["policies"]
    assert {"type": "status_code", "name": "errors",
            "status_code": {"status_codes": ["ERROR"]}} in policies
    traces = config["service"]["pipelines"]["traces"]["processors"]
    # Batching after the decision: a batch holds sampled traces only.
    assert traces.index("tail_sampling") < traces.index("batch")
    assert config["exporters"]["otlphttp/explorer"]["endpoint"] == "http://explorer:4318"


@pytest.mark.parametrize("override", [None, *OVERRIDES],
                         ids=lambda path: path.stem if path else "compose")
def test_compose_accepts_the_files(override: Path | None) -> None:
    compose = compose_command()
    if compose is None:
        pytest.skip("neither docker compose nor docker-compose is installed")
    files = ["--file", str(DEPLOY / "compose.yaml")]
    if override is not None:
        files += ["--file", str(override)]
    result = subprocess.run([*compose, *files, "config", "--quiet"], capture_output=True,
                            text=True, env={**os.environ, **OVERRIDE_VARIABLES}, check=False)
    assert result.returncode == 0, result.stderr
    # Without its mandatory variable, an override stops with the variable's name.
    if override is not None and override.stem != "otel-collector":
        missing = subprocess.run([*compose, *files, "config", "--quiet"],
                                 capture_output=True, text=True, check=False,
                                 env={key: value for key, value in os.environ.items()
                                      if key not in OVERRIDE_VARIABLES})
        assert missing.returncode != 0
        assert re.search(r"set [A-Z_]+ to", missing.stderr), missing.stderr


def test_every_long_running_container_restarts_and_has_a_memory_limit() -> None:
    compose = load(DEPLOY / "compose.yaml")
    for name, entry in compose["services"].items():
        assert entry.get("mem_limit"), f"{name} has no memory limit"
        if name != "migrate":
            assert entry["restart"] == "unless-stopped", name


def test_a_traces_only_backend_can_keep_metrics_and_logs_local() -> None:
    """A backend that takes only traces (Arize Phoenix) answers 405 to the others:
    the override lets OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER=none through and says
    so."""
    override = DEPLOY / "otlp-endpoint.yaml"
    assert "OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none" in override.read_text()
    for entry in load(override)["services"].values():
        assert entry["environment"]["OTEL_METRICS_EXPORTER"] == "${OTEL_METRICS_EXPORTER:-otlp}"
        assert entry["environment"]["OTEL_LOGS_EXPORTER"] == "${OTEL_LOGS_EXPORTER:-otlp}"
