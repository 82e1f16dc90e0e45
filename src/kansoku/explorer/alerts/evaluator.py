"""Alerting: the explorer evaluates the alert rules (`alerts/rules.py`) on what it
stores, keeps each alert's state, and tells the receivers (`alerts/notify.py`).

Every `alerts_check_seconds` (10 s by default) each rule is run over its window and gives
the label sets that breach it — a service whose error rate is over the threshold, a
consumer whose queue lag is. Each (rule, label set) is one alert, with a state:

- **pending**: the condition holds, but not yet for the rule's `for` duration;
- **firing**: it has held for `for` (at once when `for` is 0);
- **resolved**: it was firing and no longer holds (a pending alert whose condition
  stops holding just goes away, as in Prometheus). It says why: the value is back within
  the threshold, or there was too little traffic (or none) to judge — which is not a
  fix.

A resolved alert that breaches again goes pending again. Every change of state is a row
of the history (`alert_history`); the current states are kept in `alert_states`, so a
restarted explorer carries on where it was (and does not notify twice).

The burn-rate rules measure SLOs with the `BurnMeter` the app hands the evaluator
(`slos.budget.burn`): SLOs are a feature of their own, which alerting only reads.

The rules file is read again when it changes; a file with a mistake is logged (one line
naming the file, rule and field) and the rules in use stay as they were.

What an alert says to people — its summary, why it resolved, its value — is written here
with no reader, so it is kept as sentences and values (`AlertTexts`, `alerts/texts.py`)
and said in each reader's language when read: `presented` for the API and the pages,
the notifier in the explorer's language. `AlertRow.summary` and the history's `summary`
and `reason` keep the English, as they always had it.

Everything here except `AlertEvaluator.run_forever` is synchronous and runs in a worker
thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never
from urllib.parse import urlencode

from kansoku.explorer.alerts import queries
from kansoku.explorer.alerts.models import (
    STATE_ORDER,
    Alert,
    AlertChange,
    AlertingStats,
    AlertRow,
    AlertState,
    AlertTexts,
    Measure,
    Quantity,
    RuleOverview,
    RuleState,
    SaturationResource,
    Sentence,
    StateChange,
)
from kansoku.explorer.alerts.notify import Notifier
from kansoku.explorer.alerts.rules import (
    PACKAGED_DEFAULTS,
    SATURATION_RESOURCES,
    BurnRateRule,
    DeadLetterRule,
    ErrorRateRule,
    LatencyRule,
    QueueLagRule,
    Rule,
    RuleFile,
    RulesError,
    SaturationRule,
    SyntheticFailureRule,
    in_readers_language,
    load_rules,
)
from kansoku.explorer.alerts.texts import counted, say, sentence, summary, written
from kansoku.explorer.metrics.models import Temporality
from kansoku.explorer.slos.models import SLO, BurnMeter
from kansoku.explorer.store import TelemetryStore
from kansoku.kit import i18n, semconv
from kansoku.kit.durations import format_duration
from kansoku.kit.i18n import N_, Language, Nn_

logger = logging.getLogger("kansoku.explorer.alerts")

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """One label set a rule measured now, with its value and the evidence. Most breach
    it; those that do not (`breaching` False) say why in `reason`, which is what an
    alert of theirs that resolves tells."""

    labels: dict[str, str]
    value: float
    details: dict[str, Any] = field(default_factory=dict)
    breaching: bool = True
    reason: list[Sentence] | None = None


#: The rules that compare one value with a threshold over a window (all but burn rates,
#: which compare two windows with each pair's factor).
ThresholdRule = (ErrorRateRule | LatencyRule | SaturationRule | SyntheticFailureRule
                 | DeadLetterRule | QueueLagRule)


# --- values and what is said about them ------------------------------------------------


def measure_of(rule: Rule) -> Measure:
    """What a rule's value (and threshold) measures."""
    match rule:
        case ErrorRateRule():
            return Measure.SHARE
        case LatencyRule():
            return Measure.SECONDS
        case SaturationRule():
            # The Prometheus export writes SATURATION_RESOURCES' English unit instead.
            return {SaturationResource.CPU: Measure.CORES,
                    SaturationResource.MEMORY: Measure.MIB,
                    SaturationResource.DB_POOL: Measure.CONNECTIONS}[rule.resource]
        case BurnRateRule():
            return Measure.BURN_RATE
        case SyntheticFailureRule() | DeadLetterRule() | QueueLagRule():
            return Measure.COUNT
        case _:
            assert_never(rule)


def quantity(rule: Rule, value: float) -> Quantity:
    return Quantity(measure=measure_of(rule), amount=value)


def format_value(rule: Rule, value: float) -> str:
    """A rule's value (or threshold) in words, as the reader's language writes it."""
    return written(quantity(rule, value))


def _duration(seconds: float) -> Quantity:
    return Quantity(measure=Measure.DURATION, amount=seconds)


def _count(count: float) -> Quantity:
    return Quantity(measure=Measure.COUNT, amount=count)


def _measured(rule: ThresholdRule, labels: dict[str, str], value: float, breaching: bool,
              details: dict[str, Any]) -> Sample:
    """A sample that breaches, or says its value is within the threshold."""
    if breaching:
        return Sample(labels, value, details)
    return Sample(labels, value, details, breaching=False, reason=[sentence(
        N_("{value} over the last {window}, within the threshold of {threshold}."),
        value=quantity(rule, value), window=_duration(rule.window),
        threshold=quantity(rule, rule.threshold))])


def _too_few(labels: dict[str, str], value: float, count: int, needed: int, window: float,
             details: dict[str, Any]) -> Sample:
    """A sample with too few requests for the rule to judge."""
    return Sample(labels, value, details, breaching=False, reason=[counted(
        Nn_("Only {count} request in the last {window}, fewer than the {needed} the rule "
            "needs: too little traffic to judge, which is not a fix.",
            "Only {count} requests in the last {window}, fewer than the {needed} the rule "
            "needs: too little traffic to judge, which is not a fix."),
        "count", count=_count(count), window=_duration(window), needed=_count(needed))])


def no_data_reason(rule: Rule) -> list[Sentence]:
    """Why an alert resolved when its rule measured nothing for its labels at all."""
    match rule:
        case ErrorRateRule() | LatencyRule():
            return [sentence(N_("No requests in the last {window}: no traffic, so nothing "
                                "to judge — which is not a fix."),
                             window=_duration(rule.window))]
        case BurnRateRule():
            return [sentence(N_("No requests to the SLO's operations: nothing to judge, "
                                "which is not a fix."))]
        case SaturationRule() | SyntheticFailureRule() | DeadLetterRule() | QueueLagRule():
            return [sentence(N_("Nothing reported in the last {window}: no data, so nothing "
                                "to judge (is the service running?)."),
                             window=_duration(rule.window))]
        case _:
            assert_never(rule)


#: Why an alert resolved whose rule left the rules file.
RULE_GONE = N_("Its rule is no longer in the rules file.")


def summary_of(rule: Rule, labels: Mapping[str, str], value: float,
               threshold: float | None, window: float | None) -> Sentence:
    """The rule's summary and the values of its placeholders: the labels, `{value}`,
    and the `{threshold}` and `{window}` an alert of the rule is judged by
    (`_threshold_and_window`)."""
    fields: dict[str, str | Quantity] = dict(labels)
    fields["value"] = quantity(rule, value)
    if threshold is not None:
        fields["threshold"] = quantity(rule, float(threshold))
    if window is not None:
        fields["window"] = _duration(float(window))
    return summary(rule.summary, fields)


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    text = json.dumps([rule, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _query(path: str, **values: Any) -> str:
    kept = {key: value for key, value in values.items() if value not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def links(rule: Rule, labels: Mapping[str, str], details: Mapping[str, Any]
          ) -> dict[str, str]:
    """Where to look, as explorer paths: the service, its failed or slowest traces, the
    example trace, its error logs (and the SLOs page for an SLO)."""
    service = labels.get("service")
    found: dict[str, str] = {}
    if service:
        found["service"] = f"/services/{service}"
        found["logs"] = _query("/logs", service=service, min_severity=17, lookback="1h")
    route = labels.get("route")
    tag = f"http.route={route}" if route else None
    match rule:
        case BurnRateRule():
            found["slos"] = "/slos"
            if service:
                found["traces"] = _query("/traces", service=service, error="true",
                                         lookback="1h")
        case _ if not service:
            pass
        case ErrorRateRule():
            found["traces"] = _query("/traces", service=service, error="true", tag=tag,
                                     lookback="15m")
        case LatencyRule():
            found["traces"] = _query("/traces", service=service, tag=tag, lookback="15m",
                                     minDuration=f"{int(rule.threshold * 1000)}ms")
        case SaturationRule() | SyntheticFailureRule() | DeadLetterRule() | QueueLagRule():
            found["traces"] = _query("/traces", service=service, lookback="15m")
        case _:
            assert_never(rule)
    example = details.get("example_trace_id")
    if example:
        found["example_trace"] = f"/traces/{example}"
    return found


def _scope(services: list[str], exclude_services: list[str],
           exclude_routes: list[str] | None = None) -> str:
    parts = []
    if services:
        parts.append(i18n.gettext("only {services}").format(services=", ".join(services)))
    if exclude_services:
        parts.append(i18n.gettext("{services} left out").format(
            services=", ".join(exclude_services)))
    if exclude_routes:
        parts.append(i18n.gettext("routes {routes} left out").format(
            routes=", ".join(exclude_routes)))
    return f" ({'; '.join(parts)})" if parts else ""


def describe_rule(rule: Rule, rules: RuleFile) -> str:
    """What `rule` measures and when it fires, in words (the Alerts page's list), in
    the reader's language."""
    gettext = i18n.gettext
    match rule:
        case ErrorRateRule():
            text = (gettext("More than {threshold} of a service and route's requests failed "
                            "(error status or HTTP 5xx) over {window}, with at least "
                            "{requests} requests and {errors} failures{scope}.")
                    if "route" in rule.group_by else
                    gettext("More than {threshold} of a service's requests failed (error "
                            "status or HTTP 5xx) over {window}, with at least {requests} "
                            "requests and {errors} failures{scope}."))
            return text.format(
                threshold=format_value(rule, rule.threshold),
                window=format_duration(rule.window), requests=rule.min_requests,
                errors=rule.min_errors,
                scope=_scope(rule.services, rule.exclude_services, rule.exclude_routes))
        case LatencyRule():
            text = (gettext("p{percentile} of a service and route's request duration above "
                            "{threshold} over {window}, with at least {requests} requests "
                            "(from {source}){scope}.")
                    if "route" in rule.group_by else
                    gettext("p{percentile} of a service's request duration above {threshold} "
                            "over {window}, with at least {requests} requests (from "
                            "{source}){scope}."))
            return text.format(
                percentile=f"{rule.percentile:g}", threshold=format_value(rule, rule.threshold),
                window=format_duration(rule.window), requests=rule.min_requests,
                source=(gettext("server spans") if rule.source == "spans"
                        else gettext("the duration histogram")),
                scope=_scope(rule.services, rule.exclude_services, rule.exclude_routes))
        case SaturationRule():
            return gettext("{metric} of a service averaged over {window} above "
                           "{threshold}{scope}.").format(
                metric=SATURATION_RESOURCES[rule.resource][0],
                window=format_duration(rule.window),
                threshold=format_value(rule, rule.threshold),
                scope=_scope(rule.services, rule.exclude_services))
        case SyntheticFailureRule():
            return gettext("At least {threshold} failed runs of a synthetic journey within "
                           "{window}.").format(threshold=format_value(rule, rule.threshold),
                                               window=format_duration(rule.window))
        case DeadLetterRule():
            return gettext("More than {threshold} messages of a consumer moved to the "
                           "dead-letter stream within {window}.").format(
                threshold=format_value(rule, rule.threshold),
                window=format_duration(rule.window))
        case QueueLagRule():
            return gettext("More than {threshold} messages waiting for a consumer (its "
                           "latest reading within {window}).").format(
                threshold=format_value(rule, rule.threshold),
                window=format_duration(rule.window))
        case BurnRateRule():
            slos = ", ".join(slo.name for slo in rules.slos_of(rule)) or gettext("no SLO")
            pairs = "; ".join(
                gettext("{factor}x over {long} and {short} ({severity})").format(
                    factor=f"{pair.factor:g}", long=format_duration(pair.long),
                    short=format_duration(pair.short), severity=pair.severity)
                for pair in rule.pairs)
            return gettext("The error budget of {slos} burning at least {pairs}, with at "
                           "least {requests} requests in the short window.").format(
                slos=slos, pairs=pairs, requests=rule.min_requests)
        case _:
            assert_never(rule)


# --- the rules --------------------------------------------------------------------------


def _window(now_ns: int, seconds: float) -> tuple[int, int]:
    return now_ns - int(seconds * 1e9), now_ns


def _error_rate(store: TelemetryStore, rule: ErrorRateRule, now_ns: int) -> list[Sample]:
    start, end = _window(now_ns, rule.window)
    rows = queries.request_windows(
        store, start_ns=start, end_ns=end, by_route="route" in rule.group_by, quantile=0.5,
        services=rule.services, exclude_services=rule.exclude_services,
        exclude_routes=rule.exclude_routes, min_requests=1)
    found = []
    for row in rows:
        share = row.errors / row.requests
        labels = {"service": row.service}
        if row.route is not None:
            labels["route"] = row.route
        details: dict[str, Any] = {"requests": row.requests, "errors": row.errors,
                                   "example_trace_id": row.failed_trace_id}
        if row.failed_flag:
            flag, _, variant = row.failed_flag.partition("=")
            details |= {"flag": flag, "flag_variant": variant}
        if row.requests < rule.min_requests:
            found.append(_too_few(labels, share, row.requests, rule.min_requests,
                                  rule.window, details))
        elif share > rule.threshold and row.errors >= rule.min_errors:
            found.append(Sample(labels, share, details))
        else:
            forms = (Nn_("{share} of {requests} request failed over the last {window} "
                         "({errors}): within the threshold of {threshold}.",
                         "{share} of {requests} requests failed over the last {window} "
                         "({errors}): within the threshold of {threshold}.")
                     if share <= rule.threshold else
                     Nn_("{share} of {requests} request failed over the last {window} "
                         "({errors}): fewer failures than the {min_errors} the rule fires at.",
                         "{share} of {requests} requests failed over the last {window} "
                         "({errors}): fewer failures than the {min_errors} the rule fires "
                         "at."))
            found.append(Sample(labels, share, details, breaching=False, reason=[counted(
                forms, "requests", share=quantity(rule, share), requests=_count(row.requests),
                window=_duration(rule.window), errors=_count(row.errors),
                threshold=quantity(rule, rule.threshold), min_errors=_count(rule.min_errors))]))
    return found


def histogram_quantile(quantile: float, bounds: list[float], counts: list[float]) -> float:
    """The value below which `quantile` of the observations fall, interpolated inside
    its bucket as Prometheus's histogram_quantile does (the +Inf bucket answers its
    lower bound)."""
    total = sum(counts)
    rank = quantile * total
    seen = 0.0
    for index, count in enumerate(counts):
        if seen + count >= rank and count > 0:
            lower = bounds[index - 1] if index > 0 else 0.0
            if index >= len(bounds):
                return bounds[-1] if bounds else 0.0
            upper = bounds[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return bounds[-1] if bounds else 0.0


def _latency_from_histogram(store: TelemetryStore, rule: LatencyRule, now_ns: int
                            ) -> list[Sample]:
    start, end = _window(now_ns, rule.window)
    rows = queries.histogram_by_series(store, semconv.METRIC_HTTP_SERVER_DURATION, start, end)
    by_series: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        series = (row.service, json.dumps(row.attributes, sort_keys=True))
        entry = by_series.setdefault(series, {"attributes": row.attributes, "inside": [],
                                           "before": None, "bounds": row.bounds})
        if row.temporality == Temporality.DELTA or row.inside:
            entry["inside"].append(row.bucket_counts)
            entry["bounds"] = row.bounds
        else:
            entry["before"] = row.bucket_counts
    grouped: dict[tuple[str, ...], list[float]] = {}
    bounds_of: dict[tuple[str, ...], list[float]] = {}
    for (service, _series), entry in by_series.items():
        route = entry["attributes"].get(semconv.HTTP_ROUTE, "")
        if (rule.services and service not in rule.services) or \
                service in rule.exclude_services or \
                any(_matches(route, pattern) for pattern in rule.exclude_routes):
            continue
        inside = entry["inside"]
        if not inside:
            continue
        if len(inside) == 1 and entry["before"] is not None:  # cumulative: the growth
            counts = [max(a - b, 0) for a, b in zip(inside[0], entry["before"], strict=False)]
        elif len(inside) == 1:  # a series that began inside the window
            counts = list(inside[0])
        else:  # delta points: their sum
            counts = [sum(column) for column in zip(*inside, strict=False)]
        key = (service, route) if "route" in rule.group_by else (service,)
        if key in grouped and len(grouped[key]) == len(counts):
            grouped[key] = [a + b for a, b in zip(grouped[key], counts, strict=True)]
        elif key not in grouped:
            grouped[key] = [float(c) for c in counts]
            bounds_of[key] = list(entry["bounds"])
    found = []
    for group, counts in grouped.items():
        total = sum(counts)
        value = histogram_quantile(rule.percentile / 100, bounds_of[group], counts)
        labels = {"service": group[0]}
        if len(group) > 1:
            labels["route"] = group[1]
        if total < rule.min_requests:
            found.append(_too_few(labels, value, int(total), rule.min_requests, rule.window,
                                  {"requests": int(total)}))
        else:
            found.append(_measured(rule, labels, value, value > rule.threshold,
                                   {"requests": int(total)}))
    return found


def _matches(route: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(route, pattern)


def _latency(store: TelemetryStore, rule: LatencyRule, now_ns: int) -> list[Sample]:
    if rule.source == "histogram":
        return _latency_from_histogram(store, rule, now_ns)
    start, end = _window(now_ns, rule.window)
    rows = queries.request_windows(
        store, start_ns=start, end_ns=end, by_route="route" in rule.group_by,
        quantile=rule.percentile / 100, services=rule.services,
        exclude_services=rule.exclude_services, exclude_routes=rule.exclude_routes,
        min_requests=1)
    found = []
    for row in rows:
        seconds = float(row.quantile_ns) / 1e9
        labels = {"service": row.service}
        if row.route is not None:
            labels["route"] = row.route
        details = {"requests": row.requests, "example_trace_id": row.slowest_trace_id}
        if row.requests < rule.min_requests:
            found.append(_too_few(labels, seconds, row.requests, rule.min_requests,
                                  rule.window, details))
        else:
            found.append(_measured(rule, labels, seconds, seconds > rule.threshold, details))
    return found


def _saturation(store: TelemetryStore, rule: SaturationRule, now_ns: int, cpu_count: int
                ) -> list[Sample]:
    metric, attributes, _ = SATURATION_RESOURCES[rule.resource]
    start, end = _window(now_ns, rule.window)
    rows = queries.gauge_by_series(store, metric, start, end, attributes or None)
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if (rule.services and row.service not in rule.services) or \
                row.service in rule.exclude_services:
            continue
        pool = str(row.attributes.get("pool.name", "")) \
            if rule.resource == SaturationResource.DB_POOL else ""
        values[(row.service, pool)].append(row.mean)
    found = []
    for (service, pool), means in values.items():
        mean = sum(means) / len(means)
        # process.cpu.utilization is a share of all the machine's cores; the rule
        # counts cores, since a Python process keeps one busy at most. Under
        # `kansoku up` the services run on the explorer's machine.
        value = {SaturationResource.CPU: mean * cpu_count,
                 SaturationResource.MEMORY: mean / _MIB}.get(rule.resource, mean)
        labels = {"service": service, **({"pool": pool} if pool else {})}
        found.append(_measured(rule, labels, value, value > rule.threshold,
                               {"metric": metric}))
    return found


def _by_attribute(values: list[tuple[str, dict[str, Any], float]], attribute: str
                  ) -> dict[tuple[str, str], float]:
    """(service, attributes, value) summed per service and value of `attribute`."""
    summed: dict[tuple[str, str], float] = defaultdict(float)
    for service, attributes, value in values:
        summed[(service, str(attributes.get(attribute, "")))] += value
    return summed


def _synthetic_failure(store: TelemetryStore, rule: SyntheticFailureRule, now_ns: int
                       ) -> list[Sample]:
    start, end = _window(now_ns, rule.window)
    rows = queries.increase_by_series(store, semconv.METRIC_SYNTHETIC_RUNS, start, end,
                                      {semconv.SYNTHETIC_OUTCOME: "failure"})
    failures = _by_attribute([(row.service, row.attributes, row.increase) for row in rows],
                             semconv.SYNTHETIC_JOURNEY)
    return [_measured(rule, {"service": service, "journey": journey}, value,
                      value >= rule.threshold, {"metric": semconv.METRIC_SYNTHETIC_RUNS})
            for (service, journey), value in failures.items()]


def _per_consumer(rule: DeadLetterRule | QueueLagRule, metric: str,
                  series: list[tuple[str, dict[str, Any], float]]) -> list[Sample]:
    """One sample per service and consumer group, of `series` summed."""
    summed = _by_attribute(series, semconv.MESSAGING_CONSUMER)
    return [_measured(rule, {"service": service, "consumer": consumer}, value,
                      value > rule.threshold, {"metric": metric})
            for (service, consumer), value in summed.items()]


def _dead_letters(store: TelemetryStore, rule: DeadLetterRule, now_ns: int) -> list[Sample]:
    start, end = _window(now_ns, rule.window)
    rows = queries.increase_by_series(store, semconv.METRIC_DEAD_LETTERS, start, end)
    return _per_consumer(rule, semconv.METRIC_DEAD_LETTERS,
                         [(row.service, row.attributes, row.increase) for row in rows])


def _queue_lag(store: TelemetryStore, rule: QueueLagRule, now_ns: int) -> list[Sample]:
    start, end = _window(now_ns, rule.window)
    rows = queries.gauge_by_series(store, semconv.METRIC_QUEUE_LAG, start, end)
    return _per_consumer(rule, semconv.METRIC_QUEUE_LAG,
                         [(row.service, row.attributes, row.latest) for row in rows])


def _burn_rate(store: TelemetryStore, rules: RuleFile, rule: BurnRateRule, now_ns: int,
               burn: BurnMeter) -> list[Sample]:
    found = []
    for slo in rules.slos_of(rule):
        for pair in rule.pairs:
            window = f"{format_duration(pair.long)}/{format_duration(pair.short)}"
            labels = {"slo": slo.name, "service": slo.service, "window": window,
                      "severity": pair.severity}
            short = burn(store, slo, pair.short, now_ns)
            if short.total < rule.min_requests:
                found.append(_too_few(labels, float(short.rate or 0), short.total,
                                      rule.min_requests, pair.short, {}))
                continue
            # The long window only when the short one burns fast: it is the costly one.
            long = burn(store, slo, pair.long, now_ns) \
                if (short.rate or 0) >= pair.factor else None
            if long is None or (long.rate or 0) < pair.factor:
                slow, seconds = (short, pair.short) if long is None else (long, pair.long)
                rate = float(slow.rate or 0)
                found.append(Sample(labels, rate, {}, breaching=False, reason=[sentence(
                    N_("The budget burns {rate} over the last {window}, under {factor}."),
                    rate=Quantity(measure=Measure.BURN_RATE, amount=rate),
                    window=_duration(seconds),
                    factor=Quantity(measure=Measure.FACTOR, amount=pair.factor))]))
                continue
            found.append(Sample(labels, float(long.rate or 0), {
                "factor": pair.factor, "long_burn_rate": long.rate,
                "short_burn_rate": short.rate, "long_requests": long.total,
                "short_requests": short.total, "long_seconds": pair.long,
                "short_seconds": pair.short}))
    return found


def evaluate_rule(store: TelemetryStore, rules: RuleFile, rule: Rule, now_ns: int, *,
                  burn: BurnMeter, cpu_count: int = 1) -> list[Sample]:
    """The label sets `rule` measures at `now_ns`: those that breach it, and those that
    do not, with the reason. `burn` measures an SLO (for the burn-rate rules)."""
    match rule:
        case ErrorRateRule():
            return _error_rate(store, rule, now_ns)
        case LatencyRule():
            return _latency(store, rule, now_ns)
        case SaturationRule():
            return _saturation(store, rule, now_ns, cpu_count)
        case SyntheticFailureRule():
            return _synthetic_failure(store, rule, now_ns)
        case DeadLetterRule():
            return _dead_letters(store, rule, now_ns)
        case QueueLagRule():
            return _queue_lag(store, rule, now_ns)
        case BurnRateRule():
            return _burn_rate(store, rules, rule, now_ns, burn)
        case _:
            assert_never(rule)


def _threshold_and_window(rule: Rule, sample: Sample) -> tuple[float | None, float | None]:
    match rule:
        case BurnRateRule():
            return sample.details.get("factor"), sample.details.get("long_seconds")
        case (ErrorRateRule() | LatencyRule() | SaturationRule() | SyntheticFailureRule()
              | DeadLetterRule() | QueueLagRule()):  # ThresholdRule
            return rule.threshold, rule.window
        case _:
            assert_never(rule)


# --- the evaluator ----------------------------------------------------------------------


class AlertEvaluator:
    """Runs the rules, moves each alert through its states, keeps the history, and
    hands what changed to the notifier."""

    def __init__(self, store: TelemetryStore, rules_path: str | None, *, burn: BurnMeter,
                 check_seconds: float = 10.0, resolved_keep_seconds: float = 3600.0,
                 notifier: Notifier | None = None,
                 clock: Callable[[], int] = time.time_ns,
                 cpu_count: int | None = None) -> None:
        self.store = store
        self.burn = burn
        self.rules_path = rules_path
        self.check_seconds = check_seconds
        self.resolved_keep_ns = int(resolved_keep_seconds * 1e9)
        self.notifier = notifier
        self.clock = clock
        self.cpu_count = cpu_count or os.cpu_count() or 1
        self.rules = RuleFile()
        self.rules_source = ""
        self.load_error: str | None = None
        self._loaded_stamp: tuple[float, int] | None = None
        self.reload(force=True)
        self.alerts: dict[str, AlertRow] = {
            alert.fingerprint: alert for alert in queries.alert_states(store)}
        self.evaluations = 0
        self.last_evaluation_ns = 0
        self.rule_errors: dict[str, str] = {}

    # --- the rules file ---

    def _stamp(self) -> tuple[float, int] | None:
        if not self.rules_path:
            return None
        try:
            stat = Path(self.rules_path).stat()
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size)

    def reload(self, *, force: bool = False) -> bool:
        """Read the rules file again if it changed (or appeared, or went away). A file
        with a mistake keeps the rules in use (the packaged defaults at start) and is
        logged once. Returns whether the rules changed."""
        stamp = self._stamp()
        if not force and stamp == self._loaded_stamp:
            return False
        self._loaded_stamp = stamp
        source = self.rules_path if stamp is not None else None
        try:
            rules = load_rules(source)
        except RulesError as exc:
            self.load_error = str(exc)
            logger.error("alert rules not loaded, keeping the %s in use: %s",
                         "defaults" if not self.rules_source else "rules", exc)
            if not self.rules_source:
                self.rules, self.rules_source = load_rules(None), PACKAGED_DEFAULTS
            return False
        self.rules = rules
        self.rules_source = str(source) if source else PACKAGED_DEFAULTS
        self.load_error = None
        logger.info("alert rules loaded from %s: %d rules, %d SLOs, %d receivers",
                    self.rules_source, len(rules.rules), len(rules.slos),
                    len(rules.notifications.receivers))
        return True

    # --- one evaluation ---

    def evaluate(self, now_ns: int | None = None) -> list[StateChange]:
        """Run every rule at `now_ns` (now) and move the alerts; returns the changes
        (also kept in `self.alerts`, saved by `save`)."""
        now = now_ns if now_ns is not None else self.clock()
        self.reload()
        transitions: list[StateChange] = []
        rules = {rule.name: rule for rule in self.rules.rules}
        breaching: dict[str, tuple[Rule, Sample]] = {}
        #: Why each measured label set that does not breach does not (for the alerts
        #: that resolve now).
        quiet: dict[str, list[Sentence]] = {}
        failed_rules: set[str] = set()
        for rule in self.rules.rules:
            try:
                samples = evaluate_rule(self.store, self.rules, rule, now, burn=self.burn,
                                        cpu_count=self.cpu_count)
            except Exception as exc:
                # One broken rule (or query) leaves its alerts as they are; the rest go on.
                logger.exception("alert rule %s could not be evaluated", rule.name)
                self.rule_errors[rule.name] = f"{type(exc).__name__}: {exc}"
                failed_rules.add(rule.name)
                continue
            self.rule_errors.pop(rule.name, None)
            for sample in samples:
                labels = {**rule.labels, **sample.labels}
                key = fingerprint(rule.name, labels)
                if sample.breaching:
                    breaching[key] = (rule, dataclasses.replace(sample, labels=labels))
                else:
                    quiet[key] = sample.reason or []
        for key, (rule, sample) in breaching.items():
            transitions += self._breach(key, rule, sample, now)
        for key, alert in list(self.alerts.items()):
            if key in breaching or alert.rule in failed_rules:
                continue
            rule_of = rules.get(alert.rule)
            reason = ([sentence(RULE_GONE)] if rule_of is None
                      else quiet.get(key) or no_data_reason(rule_of))
            transitions += self._clear(key, alert, now, rule_known=rule_of is not None,
                                       reason=reason)
        self.evaluations += 1
        self.last_evaluation_ns = now
        return transitions

    def _breach(self, key: str, rule: Rule, sample: Sample, now: int
                ) -> list[StateChange]:
        threshold, window = _threshold_and_window(rule, sample)
        said = [summary_of(rule, sample.labels, sample.value, threshold, window)]
        if sample.details.get("flag"):
            # The spans say why: a fault flag marked the requests that failed.
            said.append(sentence(
                N_("Its failed requests carry the fault flag {flag} = {variant} "
                   "({attribute})."), flag=str(sample.details["flag"]),
                variant=str(sample.details.get("flag_variant") or "on"),
                attribute=semconv.FEATURE_FLAG_KEY))
        texts = AlertTexts(summary=said, measure=measure_of(rule),
                           threshold=float(threshold) if threshold is not None else None)
        # The English, as programs reading the store and the API have always had it.
        details = {**sample.details, "links": links(rule, sample.labels, sample.details),
                   "kind": rule.kind,
                   "value_text": written(quantity(rule, sample.value), Language.ENGLISH),
                   "threshold_text": written(quantity(rule, threshold), Language.ENGLISH)
                   if threshold is not None else None}
        summary_english = say(said, Language.ENGLISH)
        alert = self.alerts.get(key)
        if alert is None or alert.state in (AlertState.RESOLVED, AlertState.INACTIVE):
            state = AlertState.FIRING if rule.for_ <= 0 else AlertState.PENDING
            new = AlertRow(key, rule.name, sample.labels, state, now, now, sample.value,
                           summary_english, details,
                           alert.notified_state if alert else None,
                           alert.notified_ns if alert else None, texts)
            self.alerts[key] = new
            return [self._transition(new, alert.state if alert else AlertState.INACTIVE, now)]
        state = alert.state
        if state == AlertState.PENDING and now - alert.active_since_ns >= int(rule.for_ * 1e9):
            state = AlertState.FIRING
        updated = dataclasses.replace(alert, state=state, value=sample.value,
                                      summary=summary_english, details=details, texts=texts,
                                      since_ns=now if state != alert.state else alert.since_ns)
        self.alerts[key] = updated
        return [self._transition(updated, alert.state, now)] if state != alert.state else []

    def _clear(self, key: str, alert: AlertRow, now: int, *, rule_known: bool,
               reason: list[Sentence]) -> list[StateChange]:
        """The alert's condition no longer holds, for `reason` (said in the history,
        and by a resolved alert)."""
        if alert.state == AlertState.PENDING:
            del self.alerts[key]
            gone = dataclasses.replace(alert, state=AlertState.INACTIVE)
            return [self._transition(gone, AlertState.PENDING, now, reason)]
        if alert.state == AlertState.FIRING:
            english = say(reason, Language.ENGLISH)
            # An alert kept before its texts were (an explorer updated while it fired)
            # resolves with its English summary and a reason in every language.
            texts = (alert.texts or AlertTexts(summary=[])).model_copy(
                update={"reason": reason})
            resolved = dataclasses.replace(alert, state=AlertState.RESOLVED, since_ns=now,
                                           details={**alert.details, "resolution": english},
                                           texts=texts)
            self.alerts[key] = resolved
            return [self._transition(resolved, AlertState.FIRING, now, reason)]
        # Resolved: listed for a while (the history keeps it for good), then forgotten.
        if now - alert.since_ns >= self.resolved_keep_ns or not rule_known:
            del self.alerts[key]
        return []

    @staticmethod
    def _transition(alert: AlertRow, from_state: AlertState, now: int,
                    reason: list[Sentence] | None = None) -> StateChange:
        texts = alert.texts.model_copy(update={"reason": reason}) if alert.texts else (
            AlertTexts(summary=[], reason=reason) if reason else None)
        return StateChange(time_ns=now, fingerprint=alert.fingerprint, rule=alert.rule,
                           labels=alert.labels, from_state=from_state, to_state=alert.state,
                           value=alert.value, summary=alert.summary,
                           reason=say(reason, Language.ENGLISH) if reason else None,
                           texts=texts)

    def overview(self) -> list[RuleOverview]:
        """Every rule in use, in file order, with its state now (from its alerts) and its
        condition in words."""
        counts: dict[str, dict[AlertState, int]] = defaultdict(lambda: defaultdict(int))
        for alert in list(self.alerts.values()):  # a copy: the evaluation thread changes it
            counts[alert.rule][alert.state] += 1
        listed = []
        for rule in self.rules.rules:
            mine = counts[rule.name]
            firing, pending = mine[AlertState.FIRING], mine[AlertState.PENDING]
            state: RuleState = (AlertState.FIRING if firing else AlertState.PENDING if pending
                                else AlertState.INACTIVE)
            # A burn-rate rule's alerts take each pair's severity, unless its labels say.
            severity = (", ".join(dict.fromkeys(pair.severity for pair in rule.pairs))
                        if isinstance(rule, BurnRateRule) and "severity" not in rule.labels
                        else rule.severity)
            listed.append(RuleOverview(
                name=rule.name, kind=rule.kind, state=state, firing=firing, pending=pending,
                severity=severity, condition=describe_rule(rule, self.rules),
                for_seconds=rule.for_, source=self.rules_source,
                error=self.rule_errors.get(rule.name)))
        return listed

    @property
    def slos(self) -> list[SLO]:
        """The SLOs of the rules in use (what the SLOs page shows)."""
        return self.rules.slos

    def describe(self, slo: SLO) -> str:
        """`slo`'s description in the reader's language when it is the packaged
        defaults' own, else as its rules file has it."""
        return in_readers_language(slo.description)

    def save(self, transitions: list[StateChange]) -> None:
        queries.save_alerts(self.store, list(self.alerts.values()), transitions)

    def mark_notified(self, keys: list[str], now: int) -> None:
        """The notifier told the receivers about these alerts in their current state."""
        for key in keys:
            alert = self.alerts.get(key)
            if alert is not None:
                self.alerts[key] = dataclasses.replace(alert, notified_state=alert.state,
                                                       notified_ns=now)

    def stats(self) -> AlertingStats:
        counts: dict[AlertState, int] = defaultdict(int)
        for alert in self.alerts.values():
            counts[alert.state] += 1
        return AlertingStats(
            evaluations=self.evaluations, last_evaluation_ns=self.last_evaluation_ns,
            rules_source=self.rules_source, load_error=self.load_error,
            rule_errors=dict(self.rule_errors), alerts=dict(counts))

    async def run_forever(self) -> None:
        """The explorer's background task: evaluate, notify, save, every
        `check_seconds`. A failed pass is logged and the next one goes on."""
        while True:
            await asyncio.sleep(self.check_seconds)
            await self.run_once()

    async def run_once(self) -> None:
        transitions: list[StateChange] = []
        try:
            transitions = await asyncio.to_thread(self.evaluate)
        except Exception:
            logger.exception("alert evaluation failed; trying again later")
        for change in transitions:
            if change.to_state in (AlertState.FIRING, AlertState.RESOLVED):
                logger.warning("alert %s %s: %s", change.rule, change.to_state.upper(),
                               change.summary)
        if self.notifier is not None:
            try:
                await self.notifier.notify(self, self.rules.notifications)
            except Exception:
                logger.exception("alert notifications failed; trying again later")
        try:
            await asyncio.to_thread(self.save, transitions)
        except Exception:
            logger.exception("alert states could not be saved; trying again later")


def presented(alert: AlertRow) -> Alert:
    """A stored alert as `GET /api/alerts` answers it, its texts in the reader's
    language (an alert kept before its texts were: in the English it was kept in)."""
    labels, details, texts = alert.labels, alert.details, alert.texts
    resolution: str | None = None
    if alert.state == AlertState.RESOLVED:
        resolution = say(texts.reason) if texts and texts.reason else details.get("resolution")
    value_text, threshold_text = details.get("value_text"), details.get("threshold_text")
    if texts and texts.measure is not None:
        if alert.value is not None:
            value_text = written(Quantity(measure=texts.measure, amount=alert.value))
        if texts.threshold is not None:
            threshold_text = written(Quantity(measure=texts.measure, amount=texts.threshold))
    return Alert(
        name=alert.rule, rule=alert.rule, state=alert.state,
        service=labels.get("service"), severity=labels.get("severity", "warning"),
        value=alert.value, value_text=value_text, threshold_text=threshold_text,
        since_ns=alert.since_ns, active_since_ns=alert.active_since_ns, labels=labels,
        summary=say(texts.summary) if texts and texts.summary else alert.summary,
        kind=details.get("kind"), links=details.get("links", {}),
        fingerprint=alert.fingerprint, resolution=resolution,
        details={key: value for key, value in details.items()
                 if key not in ("links", "value_text", "threshold_text", "kind",
                                "resolution")},
    )


def presented_change(change: StateChange) -> AlertChange:
    """A change of an alert's state as `GET /api/alerts/history` answers it, its summary
    and reason in the reader's language (a change kept before its texts were: in
    English)."""
    texts = change.texts
    return AlertChange(
        time_ns=change.time_ns, fingerprint=change.fingerprint, rule=change.rule,
        labels=change.labels, from_state=change.from_state, to_state=change.to_state,
        value=change.value,
        summary=say(texts.summary) if texts and texts.summary else change.summary,
        reason=say(texts.reason) if texts and texts.reason else change.reason)


def listed(alerts: list[Alert]) -> list[Alert]:
    """`alerts` in the order the API lists them: firing, pending, resolved; the newest
    first within each."""
    return sorted(alerts, key=lambda alert: (STATE_ORDER.get(alert.state, 9),
                                             -alert.since_ns))
