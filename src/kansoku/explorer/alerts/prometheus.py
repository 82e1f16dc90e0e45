"""The alert rules for distributed mode: the same rules file as Prometheus recording and
alerting rules (PromQL over what the services expose on `/metrics`), a Prometheus
configuration that scrapes the services and loads them, and an Alertmanager
configuration with the file's receivers, grouping and repeat interval.

Names are those OpenTelemetry's Prometheus exporter writes: dots become underscores, the
unit becomes a suffix, counters end in `_total` — `http.server.request.duration` (s)
is `http_server_request_duration_seconds_bucket/_count/_sum`, attributes are labels
(`http_route`, `http_response_status_code`). The services do not label their metrics
with their own name (Prometheus learns it from the target): the scrape configuration
gives each job a `service` label.

What Prometheus cannot see the same way, and how it is approximated:
- a request "failed" here when its status code is 5xx (the spans also count an error
  status without one);
- latency comes from the histogram's buckets (`source: histogram`), and a latency SLO's
  threshold must be one of the bucket bounds (the nearest bound at or above it is used);
- CPU is `rate(process_cpu_seconds_total)` (cores), memory `process_memory_usage_bytes`.
"""

from __future__ import annotations

from typing import Any, assert_never

from kansoku.explorer.alerts.models import SaturationResource
from kansoku.explorer.alerts.rules import (
    SATURATION_RESOURCES,
    BurnRateRule,
    DeadLetterRule,
    ErrorRateRule,
    LatencyRule,
    QueueLagRule,
    Rule,
    RuleFile,
    SaturationRule,
    SyntheticFailureRule,
)
from kansoku.explorer.slos.models import SLO, SloKind
from kansoku.kit.durations import format_duration

REQUESTS = "http_server_request_duration_seconds"
#: The buckets the kit's middleware gives the request-duration histogram (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                    7.5, 10.0)
RULES_FILE = "kansoku-rules.yml"


def _selector(*matchers: str, **labels: str) -> str:
    """A PromQL selector: `matchers` as written (`service!~"lab"`), then `labels`, each
    an equality or, with a leading `=~`, `!~` or `!=`, that operator. A label may be
    matched twice (`service=~"a|b", service!~"b"`): Prometheus takes every matcher."""
    parts = [*matchers, *(f'{name}{op}"{value}"' for name, (op, value) in
                          ((name, _split(value)) for name, value in labels.items()))]
    return "{" + ", ".join(parts) + "}" if parts else ""


def _split(matcher: str) -> tuple[str, str]:
    for op in ("!~", "=~", "!="):
        if matcher.startswith(op):
            return op, matcher[len(op):]
    return "=", matcher


def _regex(values: list[str]) -> str:
    return "|".join(value.replace("\\", "\\\\").replace(".", "\\\\.") for value in values)


def _glob(patterns: list[str]) -> str:
    return "|".join(pattern.replace(".", "\\\\.").replace("*", ".*") for pattern in patterns)


def _service_matchers(services: list[str], exclude_services: list[str]) -> list[str]:
    """A rule's `services` and `exclude_services` as matchers on the `service` label
    (both when it has both)."""
    matchers = []
    if services:
        matchers.append(f'service=~"{_regex(services)}"')
    if exclude_services:
        matchers.append(f'service!~"{_regex(exclude_services)}"')
    return matchers


def _request_matchers(rule: ErrorRateRule | LatencyRule) -> list[str]:
    matchers = _service_matchers(rule.services, rule.exclude_services)
    if rule.exclude_routes:
        matchers.append(f'http_route!~"{_glob(rule.exclude_routes)}"')
    return matchers


def _by(rule: ErrorRateRule | LatencyRule) -> str:
    return "service, http_route" if "route" in rule.group_by else "service"


def _annotations(rule: Rule, *, threshold: str, window: str) -> dict[str, str]:
    """The summary with Prometheus's template syntax: labels as {{ $labels.x }}."""
    text = rule.summary
    match rule:
        case ErrorRateRule():
            value = "{{ $value | humanizePercentage }}"
        case LatencyRule():
            value = "{{ $value | humanizeDuration }}"
        case SaturationRule():  # in the unit of the threshold, as the explorer says
            value = "{{ $value | printf \"%.3g\" }} " + SATURATION_RESOURCES[rule.resource][2]
        case SyntheticFailureRule() | DeadLetterRule() | QueueLagRule() | BurnRateRule():
            value = "{{ $value | printf \"%.3g\" }}"
        case _:
            assert_never(rule)
    values = {"value": value, "threshold": threshold,
              "window": window, "route": "{{ $labels.http_route }}",
              "consumer": "{{ $labels.messaging_consumer_group_name }}",
              "journey": "{{ $labels.kansoku_synthetic_journey }}"}
    for name in ("service", "slo", "severity", "pool"):
        values.setdefault(name, "{{ $labels." + name + " }}")
    for name, replacement in values.items():
        text = text.replace("{" + name + "}", replacement)
    return {"summary": " ".join(text.split())}


def _alert(rule: Rule, expr: str, *, threshold: str, window: str,
           labels: dict[str, str] | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {"alert": rule.name, "expr": expr}
    if rule.for_:
        alert["for"] = format_duration(rule.for_)
    merged = {**rule.labels, **(labels or {})}
    if merged:
        alert["labels"] = merged
    alert["annotations"] = _annotations(rule, threshold=threshold, window=window)
    return alert


def _error_rate(rule: ErrorRateRule) -> dict[str, Any]:
    window, by = format_duration(rule.window), _by(rule)
    all_ = _selector(*_request_matchers(rule))
    failed = _selector(*_request_matchers(rule), http_response_status_code="=~5..")
    count = f"{REQUESTS}_count"
    expr = (f"(sum by ({by}) (increase({count}{failed}[{window}]))"
            f" / sum by ({by}) (increase({count}{all_}[{window}]))) > {rule.threshold:g}"
            f" and sum by ({by}) (increase({count}{all_}[{window}])) >= {rule.min_requests}"
            f" and sum by ({by}) (increase({count}{failed}[{window}])) >= {rule.min_errors}")
    return _alert(rule, expr, threshold=f"{100 * rule.threshold:g} %", window=window)


def _latency(rule: LatencyRule) -> dict[str, Any]:
    window, by = format_duration(rule.window), _by(rule)
    matchers = _selector(*_request_matchers(rule))
    expr = (f"histogram_quantile({rule.percentile / 100:g}, sum by ({by}, le) "
            f"(rate({REQUESTS}_bucket{matchers}[{window}]))) > {rule.threshold:g}"
            f" and sum by ({by}) (increase({REQUESTS}_count{matchers}[{window}]))"
            f" >= {rule.min_requests}")
    return _alert(rule, expr, threshold=f"{rule.threshold:g} s", window=window)


def _saturation(rule: SaturationRule) -> dict[str, Any]:
    window = format_duration(rule.window)
    services = _service_matchers(rule.services, rule.exclude_services)
    if rule.resource == SaturationResource.CPU:
        expr = (f"sum by (service) (rate(process_cpu_seconds_total{_selector(*services)}"
                f"[{window}]))")
        threshold = f"{rule.threshold:g} cores"
    elif rule.resource == SaturationResource.MEMORY:
        expr = (f"avg by (service) (avg_over_time(process_memory_usage_bytes"
                f"{_selector(*services)}[{window}])) / 1048576")
        threshold = f"{rule.threshold:g} MiB"
    else:
        used = _selector(*services, state="used")
        expr = (f"max by (service, pool_name) (avg_over_time(db_client_connections_usage"
                f"{used}[{window}]))")
        threshold = f"{rule.threshold:g} connections"
    return _alert(rule, f"{expr} > {rule.threshold:g}", threshold=threshold, window=window)


def _counter_rule(rule: SyntheticFailureRule | DeadLetterRule) -> dict[str, Any]:
    window = format_duration(rule.window)
    match rule:
        case SyntheticFailureRule():
            expr = ("sum by (service, kansoku_synthetic_journey) (increase("
                    'kansoku_synthetics_runs_total{kansoku_synthetic_outcome="failure"}'
                    f"[{window}])) >= {rule.threshold:g}")
        case DeadLetterRule():
            expr = ("sum by (service, messaging_consumer_group_name) (increase("
                    f"kansoku_events_dead_letters_total[{window}])) > {rule.threshold:g}")
        case _:
            assert_never(rule)
    return _alert(rule, expr, threshold=f"{rule.threshold:g}", window=window)


def _queue_lag(rule: QueueLagRule) -> dict[str, Any]:
    window = format_duration(rule.window)
    expr = ("sum by (service, messaging_consumer_group_name) (max_over_time("
            f"kansoku_events_consumer_lag[{window}])) > {rule.threshold:g}")
    return _alert(rule, expr, threshold=f"{rule.threshold:g}", window=window)


def bucket_bound(seconds: float) -> float:
    """The request histogram's bound at or above `seconds` (the last bound at most)."""
    return next((bound for bound in DURATION_BUCKETS if bound >= seconds - 1e-9),
                DURATION_BUCKETS[-1])


def _le(bound: float) -> str:
    """A bound as the exporter writes it in `le` (Python's float text: 1.0, 0.25)."""
    return repr(float(bound))


#: Inside a selector's braces: the request failed (5xx).
_FAILED = ', http_response_status_code=~"5.."'


def slo_error_ratio(slo: SLO, window: str) -> str:
    """PromQL: the share of the SLO's requests that were bad over `window`."""

    def selectors(operations: list[str]) -> list[str]:
        terms = []
        for operation in operations:
            method, route = operation.split(" ", 1)
            terms.append(_selector(service=slo.service, http_request_method=method,
                                   http_route=route))
        return terms

    def rates(terms: list[str], extra: str = "", series: str = "_count") -> str:
        # `extra` goes inside the selector's braces: term[:-1] drops its closing one.
        return " or ".join(f"rate({REQUESTS}{series}{term[:-1]}{extra}}}[{window}])"
                           for term in terms)

    terms = selectors(slo.operations)
    match slo.kind:
        case SloKind.AVAILABILITY:
            return f"sum(({rates(terms, _FAILED)})) / sum(({rates(terms)}))"
        case SloKind.LATENCY:
            bound = _le(bucket_bound(slo.threshold or 0))
            good = rates(terms, f', le="{bound}"', series="_bucket")
            return f"1 - sum(({good})) / sum(({rates(terms)}))"
        case SloKind.JOURNEY:
            # The end: anything but 2xx is bad; an earlier step counts only its 5xx.
            failed_steps = rates(selectors(slo.steps), _FAILED)
            bad = rates(terms, ', http_response_status_code!~"2.."')
            total = rates(terms)
            if slo.steps:
                bad, total = f"{bad} or {failed_steps}", f"{total} or {failed_steps}"
            return f"sum(({bad})) / sum(({total}))"
        case _:
            assert_never(slo.kind)


def _record_name(window: str) -> str:
    return f"kansoku:slo_errors:ratio_rate{window}"


def _burn_rate(rule: BurnRateRule, rules: RuleFile) -> list[dict[str, Any]]:
    alerts = []
    for slo in rules.slos_of(rule):
        for pair in rule.pairs:
            long, short = format_duration(pair.long), format_duration(pair.short)
            limit = f"({pair.factor:g} * {slo.budget:.6g})"
            selector = _selector(slo=slo.name)
            expr = (f"{_record_name(long)}{selector} > {limit}"
                    f" and {_record_name(short)}{selector} > {limit}")
            alerts.append(_alert(
                rule, expr, threshold=f"{pair.factor:g}x", window=long,
                labels={"slo": slo.name, "service": slo.service,
                        "window": f"{long}/{short}", "severity": pair.severity}))
    return alerts


def recording_rules(rules: RuleFile) -> list[dict[str, Any]]:
    """Each SLO's bad share over every window its burn-rate pairs use."""
    windows: set[float] = set()
    for rule in rules.rules:
        if isinstance(rule, BurnRateRule):
            windows |= {seconds for pair in rule.pairs for seconds in (pair.long, pair.short)}
    return [{"record": _record_name(format_duration(seconds)),
             "expr": slo_error_ratio(slo, format_duration(seconds)),
             "labels": {"slo": slo.name, "service": slo.service}}
            for slo in rules.slos for seconds in sorted(windows)]


def prometheus_rules(rules: RuleFile) -> dict[str, Any]:
    """The rules file as a Prometheus rules document (`rule_files:`)."""
    alerts: list[dict[str, Any]] = []
    for rule in rules.rules:
        match rule:
            case ErrorRateRule():
                alerts.append(_error_rate(rule))
            case LatencyRule():
                alerts.append(_latency(rule))
            case SaturationRule():
                alerts.append(_saturation(rule))
            case SyntheticFailureRule() | DeadLetterRule():
                alerts.append(_counter_rule(rule))
            case QueueLagRule():
                alerts.append(_queue_lag(rule))
            case BurnRateRule():
                alerts += _burn_rate(rule, rules)
            case _:
                assert_never(rule)
    groups = []
    recorded = recording_rules(rules)
    if recorded:
        groups.append({"name": "kansoku-slos", "rules": recorded})
    groups.append({"name": "kansoku-alerts", "rules": alerts})
    return {"groups": groups}


def prometheus_config(targets: dict[str, str], *, alertmanager: str = "127.0.0.1:9093",
                      interval: str = "15s") -> dict[str, Any]:
    """A Prometheus configuration scraping each service's `/metrics` at its target
    (service name -> "host:port"; one job each, labelled `service`), evaluating the
    rules, sending alerts to Alertmanager."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [RULES_FILE],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": service, "static_configs": [{"targets": [target],
                                                      "labels": {"service": service}}]}
            for service, target in targets.items()],
    }


def alertmanager_config(rules: RuleFile, *, smtp: str) -> dict[str, Any]:
    """Alertmanager's configuration: the receivers, grouping and intervals of the
    rules file. Every receiver gets every alert it matches (`continue: true`)."""
    notifications = rules.notifications
    receivers: list[dict[str, Any]] = [{"name": "nobody"}]
    routes = []
    for receiver in notifications.receivers:
        entry: dict[str, Any] = {"name": receiver.name}
        if receiver.webhook is not None:
            entry["webhook_configs"] = [{"url": receiver.webhook.url,
                                         "send_resolved": receiver.send_resolved}]
        elif receiver.email is not None:
            host = receiver.email.host
            smarthost = f"{host}:{receiver.email.port or 25}" if host else smtp
            entry["email_configs"] = [
                {"to": ", ".join(receiver.email.to), "from": receiver.email.from_,
                 "smarthost": smarthost, "require_tls": False,
                 "send_resolved": receiver.send_resolved}]
        receivers.append(entry)
        route: dict[str, Any] = {"receiver": receiver.name, "continue": True}
        if receiver.match:
            route["matchers"] = [f'{key}="{value}"' for key, value in receiver.match.items()]
        routes.append(route)
    return {
        "route": {"receiver": "nobody", "group_by": list(notifications.group_by),
                  "group_wait": "10s",
                  "group_interval": format_duration(notifications.group_interval),
                  "repeat_interval": format_duration(notifications.repeat_interval),
                  "routes": routes},
        "receivers": receivers,
    }
