"""The explorer's settings (environment prefix KANSOKU_EXPLORER_)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kansoku.kit.i18n import DEFAULT_LANGUAGE, Language, parse_language
from kansoku.kit.settings import OptionalPort, ServiceSettings
from kansoku.topology import (
    DEFAULT_EMF_PORT,
    DEFAULT_NEWRELIC_PORT,
    DEFAULT_OTLP_PORT,
    DEFAULT_SMTP_PORT,
    DEFAULT_XRAY_PORT,
    SERVICES_BY_NAME,
)


def _language(value: object) -> Language:
    language = parse_language(str(value)) if value is not None else None
    if language is None:
        raise ValueError(f"'{value}' is not a language the explorer speaks: "
                         f"{' or '.join(Language)}")
    return language


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KANSOKU_EXPLORER_", extra="ignore")

    port: int = SERVICES_BY_NAME["explorer"].default_port
    #: OTLP/HTTP receiver (the standard port). Both ports serve the same routes.
    otlp_port: int = DEFAULT_OTLP_PORT
    #: The X-Ray daemon's UDP port, where services on the X-Ray SDK send segments, and
    #: the CloudWatch agent's EMF port (TCP and UDP) for embedded-metric-format lines
    #: (explorer/ingest/xray.py, emf.py; docs/approaches.md). Unset (empty): that intake
    #: is off. A port that cannot be bound is logged and the explorer runs without it.
    xray_port: OptionalPort = DEFAULT_XRAY_PORT
    emf_port: OptionalPort = DEFAULT_EMF_PORT
    #: The New Relic collector's HTTPS port, where services on the New Relic agent
    #: report (explorer/ingest/newrelic.py). Unset (empty): off.
    newrelic_port: OptionalPort = DEFAULT_NEWRELIC_PORT
    #: The DuckDB file everything is kept in (`kansoku up` puts it in the data
    #: directory); ":memory:" keeps nothing across restarts.
    db_path: str = ".kansoku/explorer/telemetry.duckdb"
    #: The drill in progress, as `kansoku drill start` writes it (the Drills page reads
    #: and answers it). Unset: `drill.json` beside the flags file, in the stack's data
    #: directory, where `kansoku up` keeps both.
    drill_file: Path | None = None
    #: Retention: data older than this is deleted, and the oldest goes first while the
    #: file is larger than `retention_bytes`.
    retention_hours: float = Field(24.0, gt=0)
    retention_bytes: int = Field(1024**3, gt=0)
    #: How often retention is enforced.
    retention_check_seconds: float = Field(60.0, gt=0)
    #: The store's share of the machine: DuckDB's memory limit and worker threads.
    memory_limit: str = "512MB"
    threads: int = Field(2, ge=1)
    #: Rows that may wait to be written before receivers answer 503 (back-pressure).
    max_pending_rows: int = Field(500_000, gt=0)
    #: Largest OTLP request body accepted, in bytes (after decompression).
    max_body_bytes: int = 16 * 1024 * 1024
    #: The span data one answer of the trace API holds at most, in bytes as stored
    #: (names, attributes, resources, events, links, and a fixed amount a span): a
    #: trace gets it all, a search's traces share it. The spans past it are left out,
    #: oldest kept, and the trace's `warnings` say so (docs/architecture.md).
    max_answer_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)

    # --- problem detection (explorer/problems/; docs/problems.md) --------------------
    #: Run the detection rules at all.
    problems_enabled: bool = True
    #: How often complete traces are checked, and how long after a trace's root span
    #: arrived (with no more of its spans) it counts as complete; a trace whose root
    #: never arrives is checked this long after its last span.
    problems_check_seconds: float = Field(5.0, gt=0)
    problems_grace_seconds: float = Field(5.0, ge=0)
    problems_orphan_seconds: float = Field(30.0, ge=0)
    #: How often the window rules run: the baseline rules (error hotspot, slow
    #: endpoint) and the live ones (fault flag, memory growth, CPU saturation). A
    #: problem they found stays ongoing for two of these after they last found it.
    problems_baseline_check_seconds: float = Field(15.0, gt=0)
    #: N+1 queries: this many sequential identical statements under one parent, taking
    #: this long together.
    n_plus_one_db_min_spans: int = Field(5, ge=2)
    n_plus_one_db_min_total_ms: float = Field(50.0, ge=0)
    #: ...or this many, however quick they were (0: only the rule above).
    n_plus_one_db_many_spans: int = Field(10, ge=0)
    #: A read this slow is a slow query.
    slow_db_query_ms: float = Field(500.0, gt=0)
    #: Consecutive independent queries: the least time saved by running them at once,
    #: as milliseconds and as a share of the sequence, and the least each must take.
    consecutive_db_min_saved_ms: float = Field(100.0, ge=0)
    consecutive_db_min_ratio: float = Field(0.1, ge=0, le=1)
    consecutive_db_min_span_ms: float = Field(30.0, ge=0)
    #: N+1 calls: this many calls to one route of another service under one parent.
    n_plus_one_http_min_calls: int = Field(5, ge=2)
    #: The baseline rules compare the last `problems_recent_seconds` with the
    #: `problems_baseline_seconds` before.
    problems_recent_seconds: float = Field(300.0, gt=0)
    problems_baseline_seconds: float = Field(3600.0, gt=0)
    #: Error hotspot: least recent requests and errors, least error rate, and how many
    #: times the baseline's rate.
    error_hotspot_min_requests: int = Field(20, ge=1)
    error_hotspot_min_errors: int = Field(5, ge=1)
    error_hotspot_min_rate: float = Field(0.1, gt=0, le=1)
    error_hotspot_factor: float = Field(3.0, ge=1)
    #: Slow endpoint: least requests recently and in the baseline, how many times the
    #: baseline's p95, and how many milliseconds more at least.
    slow_endpoint_min_requests: int = Field(20, ge=1)
    slow_endpoint_baseline_min_requests: int = Field(50, ge=1)
    slow_endpoint_factor: float = Field(2.0, ge=1)
    slow_endpoint_min_extra_ms: float = Field(250.0, ge=0)
    #: The baseline rules also need their condition in the latest this many seconds,
    #: so their problems clear soon after the cause goes away.
    problems_latest_seconds: float = Field(30.0, gt=0)
    #: Fault flag: this many spans marked by one flag in one service within the window.
    fault_flag_min_spans: int = Field(2, ge=1)
    fault_flag_window_seconds: float = Field(30.0, gt=0)
    #: Memory growth: the least climb (MiB a minute, and MiB in all) over the window.
    memory_growth_min_mib_per_minute: float = Field(4.0, gt=0)
    memory_growth_min_mib: float = Field(8.0, ge=0)
    memory_growth_window_seconds: float = Field(120.0, gt=0)
    #: CPU saturation: the least cores a process keeps busy over the window, and how
    #: many times its usual.
    cpu_saturation_min_cores: float = Field(0.4, gt=0)
    cpu_saturation_factor: float = Field(2.0, ge=1)
    cpu_saturation_window_seconds: float = Field(60.0, gt=0)

    # --- alerts and SLOs (explorer/alerts/; docs/alerts.md) --------------------------
    #: Evaluate the alert rules at all.
    alerts_enabled: bool = True
    #: The user's rules file (YAML); absent or unset: the packaged defaults.
    alerts_file: str | None = None
    #: How often the rules are evaluated (and the file checked for changes).
    alerts_check_seconds: float = Field(10.0, gt=0)
    #: How long a resolved alert stays listed in /api/alerts (its history stays).
    alerts_resolved_keep_seconds: float = Field(3600.0, ge=0)
    #: Where e-mail receivers send, unless they name a server: the stack's mailbox.
    alerts_smtp_host: str = Field("127.0.0.1", validation_alias=AliasChoices(
        "KANSOKU_EXPLORER_ALERTS_SMTP_HOST", "KANSOKU_HOST"))
    alerts_smtp_port: int = Field(DEFAULT_SMTP_PORT, validation_alias=AliasChoices(
        "KANSOKU_EXPLORER_ALERTS_SMTP_PORT", "KANSOKU_WORKER_SMTP_PORT"))
    #: The explorer's address in notifications' links (default: http://host:port).
    public_url: str | None = None
    #: The language of what the explorer says with no reader to ask it: alert
    #: notifications (an e-mail is written in it; a webhook adds it beside its English).
    #: `ja` or `en`; unset, KANSOKU_LANG's. Pages and the API speak each reader's own.
    language: Annotated[Language, BeforeValidator(_language)] = Field(
        DEFAULT_LANGUAGE, validation_alias=AliasChoices("KANSOKU_EXPLORER_LANGUAGE",
                                                        "KANSOKU_LANG"))

    # --- who may read it (explorer/auth.py; docs/security.md) -------------------------
    #: Require a login: people with `password` (a cookie session), programs with
    #: `Authorization: Bearer <token>`. Off on a laptop; compose and the chart turn it
    #: on. OTLP ingest and /health stay open.
    auth: bool = False
    password: SecretStr | None = None
    token: SecretStr | None = None

    def listen_ports(self) -> list[int]:
        return [self.port, self.otlp_port]
