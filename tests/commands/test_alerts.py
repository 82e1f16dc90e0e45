"""`kansoku alerts`: init and check (one plain line for a mistake), and export, whose
files Prometheus's own tools accept — `promtool check rules` / `check config`,
`amtool check-config` — and whose PromQL fires as the explorer does (`promtool test
rules` on made-up series)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from kansoku.explorer.alerts.models import AlertRow, AlertState
from kansoku.explorer.alerts.queries import save_alerts
from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from kansoku.stack.settings import StackSettings
from kansoku.stack.state import write_state
from kansoku.topology import SERVICES
from tests.browser import in_ci
from tests.explorer.alerts.alerting import S, write_requests
from tests.support import idle_process, run_cli, serve_in_thread

TOOLS = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def tool(name: str) -> str:
    """The path of promtool or amtool; skips without it (fails under CI, where
    scripts/install-chromium installs it)."""
    found = shutil.which(name)
    if found is None:
        reason = (f"{name} is not installed: run scripts/install-chromium, or "
                  f"'sudo apt-get install -y --no-install-recommends {TOOLS[name]}'")
        if in_ci():
            pytest.fail(f"{reason} (CI is set: scripts/test must install it)", pytrace=False)
        pytest.skip(reason)
    return found


def environment(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KANSOKU_", "OTEL_"))}
    env["KANSOKU_DATA_DIR"] = str(data_dir)
    return env


RULES_WITH_RECEIVERS = """
rules:
  - name: HighErrorRate
    kind: error_rate
    window: 2m
    threshold: 0.05
    min_requests: 20
    min_errors: 5
    for: 20s
    labels: {severity: critical}
    summary: "{service} failed {value} over {window}"
  - name: SlowResponses
    kind: latency
    window: 2m
    threshold: 2s
    group_by: [service, route]
  - {name: QueueLag, kind: queue_lag, threshold: 20}
  - {name: ErrorBudgetBurn, kind: slo_burn_rate}
slos:
  - name: product-page-latency
    service: gateway
    operations: ["GET /api/v1/products/{product_id}"]
    kind: latency
    threshold: 800ms
    objective: 95
notifications:
  group_by: [service]
  repeat_interval: 4h
  receivers:
    - name: on-call
      webhook: {url: "http://127.0.0.1:9000/alerts"}
      match: {severity: critical}
    - name: ops-mail
      email: {to: [ops@kansoku.local]}
"""

_SERIES = ('http_server_request_duration_seconds_count{{service="{service}",http_route="{route}",'
           'http_request_method="{method}",http_response_status_code="{status}"}}')
#: promtool's unit test: payments fails half its requests from the third minute on.
UNIT_TEST = """
rule_files: [kansoku-rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: '{failed}'
        values: '0x12 0+10x20'
      - series: '{created}'
        values: '0+10x32'
      - series: '{listed}'
        values: '0+10x32'
    alert_rule_test:
      - eval_time: 2m
        alertname: HighErrorRate
        exp_alerts: []
      - eval_time: 7m
        alertname: HighErrorRate
        exp_alerts:
          - exp_labels: {service: payments, severity: critical}
            exp_annotations:
              summary: "payments failed 50% over 2m"
""".replace("{failed}", _SERIES.format(service="payments", route="/payments", method="POST",
                                       status="500")
          ).replace("{created}", _SERIES.format(service="payments", route="/payments",
                                                method="POST", status="201")
          ).replace("{listed}", _SERIES.format(service="catalog", route="/products",
                                               method="GET", status="200"))


def test_export_passes_promtool_and_amtool(tmp_path: Path) -> None:
    promtool, amtool = tool("promtool"), tool("amtool")
    data = tmp_path / "data"
    data.mkdir()
    (data / "alerts.yaml").write_text(RULES_WITH_RECEIVERS)
    out = tmp_path / "out"
    result = run_cli("alerts", "export", str(out), env=environment(data))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"kansoku-rules.yml", "prometheus.yml",
                                               "alertmanager.yml"}
    for command in ([promtool, "check", "rules", "kansoku-rules.yml"],
                    [promtool, "check", "config", "prometheus.yml"],
                    [amtool, "check-config", "alertmanager.yml"]):
        checked = subprocess.run(command, cwd=out, capture_output=True, text=True,
                                 timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = (out / "kansoku-rules.yml").read_text()
    assert "http_server_request_duration_seconds_bucket" in rules
    # 800 ms is not a bucket bound: the SLO counts requests within 1 s.
    assert 'le="1.0"' in rules
    assert "kansoku:slo_errors:ratio_rate3d" in rules
    manager = (out / "alertmanager.yml").read_text()
    assert "http://127.0.0.1:9000/alerts" in manager and "127.0.0.1:8025" in manager
    assert "repeat_interval: 4h" in manager

    (out / "test.yml").write_text(UNIT_TEST)
    tested = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=out,
                            capture_output=True, text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


#: promtool's unit test of the defaults: the explorer and the worker both hold 700 MiB; the
#: HighMemory rule excludes the explorer (its DuckDB may use 512 MB by itself).
MEMORY_TEST = """
rule_files: [kansoku-rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'process_memory_usage_bytes{service="explorer"}'
        values: '734003200x12'
      - series: 'process_memory_usage_bytes{service="worker"}'
        values: '734003200x12'
    alert_rule_test:
      - eval_time: 2m
        alertname: HighMemory
        exp_alerts:
          - exp_labels: {service: worker, severity: warning}
            exp_annotations:
              summary: "worker holds 700 MiB of memory (alert above 512 MiB). Memory that only
                grows is a leak: compare the Metrics page's process.memory.usage over time."
"""


def test_export_of_the_defaults_passes_promtool(tmp_path: Path) -> None:
    promtool = tool("promtool")
    result = run_cli("alerts", "export", str(tmp_path), env=environment(tmp_path / "none"))
    assert result.returncode == 0, result.stderr
    checked = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout

    (tmp_path / "test.yml").write_text(MEMORY_TEST)
    tested = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_init_then_check_and_a_mistake_in_one_line(tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert run_cli("alerts", "init", env=env).returncode == 0
    again = run_cli("alerts", "init", env=env)
    assert again.returncode == 1 and "exists already" in again.stderr
    checked = run_cli("alerts", "check", env=env)
    assert checked.returncode == 0
    assert "alerts.yaml: 9 rules, 4 SLOs, 1 receivers — OK" in " ".join(
        checked.stdout.split())

    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - {name: Slow, kind: latency, threshold: fast}\n")
    result = run_cli("alerts", "check", str(broken), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert f"error: {broken}: rule 'Slow' (rules[0]), field 'threshold': 'fast' is not a " \
        "duration" in message
    assert "kansoku alerts check" in message
    missing = run_cli("alerts", "export", str(tmp_path / "out"), "--rules",
                      str(tmp_path / "nope.yaml"), env=env)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def _targets(prometheus_yml: Path) -> dict[str, str]:
    config = yaml.safe_load(prometheus_yml.read_text())
    return {job["job_name"]: job["static_configs"][0]["targets"][0]
            for job in config["scrape_configs"]}


def test_export_without_a_stack_takes_the_ports_the_settings_give(tmp_path: Path) -> None:
    env = {**environment(tmp_path), "KANSOKU_CATALOG_PORT": "9102",
           "KANSOKU_WORKER_SMTP_PORT": "2525"}
    result = run_cli("alerts", "export", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    targets = _targets(tmp_path / "out" / "prometheus.yml")
    assert targets["catalog"] == "127.0.0.1:9102"
    assert targets["gateway"] == "127.0.0.1:8000" and targets["explorer"] == "127.0.0.1:8800"
    assert set(targets) == {service.name for service in SERVICES}
    assert "127.0.0.1:2525" in (tmp_path / "out" / "alertmanager.yml").read_text()
    said = " ".join(result.stdout.split())
    assert f"from the settings, as no stack runs from {tmp_path}" in said
    assert "catalog 127.0.0.1:9102" in said


@pytest.fixture
def supervisor() -> Iterator[subprocess.Popen[bytes]]:
    """A process that stands in for a running stack's supervisor."""
    with idle_process() as process:
        yield process


def test_export_takes_the_running_stacks_ports(tmp_path: Path,
                                                supervisor: subprocess.Popen[bytes]) -> None:
    """The stack was started with other ports than the shell now says: the state file
    is what runs."""
    ports = {service.name: 9100 + index for index, service in enumerate(SERVICES)}
    write_state(StackSettings(data_dir=tmp_path).state_file, {
        "supervisor": {"pid": supervisor.pid,
                       "process_started": psutil.Process(supervisor.pid).create_time(),
                       "state": "running", "data_dir": str(tmp_path), "updated_at": 1.0},
        "components": [
            {"name": name, "kind": "service", "url": f"http://127.0.0.1:{port}", "pid": None,
             "process_started": None, "state": "running", "health": "healthy",
             "restarts": 0, "held": False, "last_exit": None, "log": f"{name}.log"}
            for name, port in ports.items()]})
    result = run_cli("alerts", "export", str(tmp_path / "out"), "--host", "shop.internal",
                     env=environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert _targets(tmp_path / "out" / "prometheus.yml") == {
        name: f"shop.internal:{port}" for name, port in ports.items()}
    said = " ".join(result.stdout.split())
    assert f"Scrape targets, from the stack running from {tmp_path}:" in said
    assert "# Services' addresses from the stack running from" in (
        tmp_path / "out" / "prometheus.yml").read_text()


def test_list_says_why_an_alert_resolved(tmp_path: Path) -> None:
    app = create_app(Settings(db_path=":memory:", alerts_check_seconds=3600))
    labels = {"service": "payments", "severity": "critical"}
    reason = "Only 3 requests in the last 1m, fewer than the 20 the rule needs."
    save_alerts(app.state.store, [AlertRow(
        "f1", "HighErrorRate", labels, AlertState.RESOLVED, time.time_ns(), time.time_ns(), 0.5,
        "payments failed 50.0 %", {"resolution": reason, "value_text": "50.0 %"}, None,
        None)], [])
    try:
        with serve_in_thread(app) as url:
            env = {**environment(tmp_path),
                   "KANSOKU_EXPLORER_PORT": url.rsplit(":", 1)[1], "COLUMNS": "200"}
            listed = run_cli("alerts", "list", env=env)
    finally:
        app.state.store.close()
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "HighErrorRate" in line)
    assert [cell.strip() for cell in row.split("│")[1:5]] == [
        "resolved", "HighErrorRate", "payments", "50.0 %"]
    assert f"Resolved: {reason}" in listed.stdout


def test_list_asks_in_the_command_lines_language(tmp_path: Path) -> None:
    """`kansoku --lang ja alerts list` gets the summaries in Japanese (it sends its
    language as Accept-Language), the states and names as the API keeps them."""
    app = create_app(Settings(db_path=":memory:", alerts_check_seconds=3600,
                              problems_enabled=False))
    now = time.time_ns()
    write_requests(app.state.store, service="payments", route="/payments",
                   start_ns=now - 30 * S, count=40, every_ns=S // 2, failed=20)
    evaluator = app.state.alerts  # the packaged default rules
    evaluator.save(evaluator.evaluate(now))
    evaluator.save(evaluator.evaluate(now + 10 * S))
    try:
        with serve_in_thread(app) as url:
            env = {**environment(tmp_path),
                   "KANSOKU_EXPLORER_PORT": url.rsplit(":", 1)[1], "COLUMNS": "400"}
            listed = run_cli("--lang", "ja", "alerts", "list", env=env)
    finally:
        app.state.store.close()
    assert listed.returncode == 0, listed.stderr
    said = "".join(listed.stdout.split())
    assert "paymentsは直近1mにリクエストの50.0%が失敗しました" in said
    assert "HighErrorRate" in said
