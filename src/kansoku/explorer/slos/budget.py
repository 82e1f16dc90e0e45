"""Service level objectives: how much of an SLO's error budget is left, and how fast it
burns (docs/alerts.md explains both for a learner).

An SLO says which share of a journey's requests must be good, say 99 % of checkouts
succeed. The other 1 % is the **error budget**. Over the SLO's window (30 days by
default) the budget is spent by bad requests: `budget remaining` = 1 - (bad share ÷
allowed share), so 1.0 is untouched, 0 spent, below 0 overspent. The **burn rate** over
some window is the bad share in it divided by the allowed share: at 1 the budget lasts
exactly the SLO window; at 14.4 an hour spends 2 % of a 30-day budget.

The explorer keeps `retention_hours` of data (24 h by default): windows longer than what
is kept are computed over what is kept.
"""

from __future__ import annotations

from kansoku.explorer.slos import queries
from kansoku.explorer.slos.models import SLO, Burn, BurnRate, Slo, SloPoint
from kansoku.explorer.store import TelemetryStore
from kansoku.kit.durations import format_duration

#: The windows whose burn rate the SLOs page shows (the workbook's pairs use them).
SHOWN_WINDOWS = (300.0, 1800.0, 3600.0, 6 * 3600.0, 3 * 86400.0)


def burn(store: TelemetryStore, slo: SLO, seconds: float, now_ns: int) -> Burn:
    """The SLO's requests and bad requests over the last `seconds`."""
    total, bad = queries.slo_counts(store, slo, start_ns=now_ns - int(seconds * 1e9),
                                    end_ns=now_ns)
    return Burn(seconds, total, bad, slo.budget)


def budget_remaining(total: int, bad: int, budget: float) -> float | None:
    """1 - (bad share ÷ allowed share); None without requests."""
    return 1 - (bad / total) / budget if total else None


def report(store: TelemetryStore, slo: SLO, *, now_ns: int, lookback_ns: int,
           step_ns: int) -> Slo:
    """One SLO as the API answers it: its definition; over its window the requests,
    the good share (SLI) and the budget remaining; the burn rate over each of
    `SHOWN_WINDOWS`; and per step over the lookback the burn rate in that step and the
    budget remaining over the SLO window ending there (for the charts)."""
    window_ns = int(slo.window * 1e9)
    steps = queries.slo_steps(store, slo, start_ns=now_ns - lookback_ns - window_ns,
                              end_ns=now_ns, step_ns=step_ns)
    series = []
    first_shown = now_ns - lookback_ns
    window_total = window_bad = 0
    oldest = 0  # the first step still inside the window ending at the current step
    for step in steps:
        window_total += step.total
        window_bad += step.bad
        while steps[oldest].time_ns <= step.time_ns - window_ns:
            window_total -= steps[oldest].total
            window_bad -= steps[oldest].bad
            oldest += 1
        if step.time_ns + step_ns <= first_shown:
            continue
        total, bad = step.total, step.bad
        series.append(SloPoint(
            time_ns=step.time_ns, requests=total, bad=bad,
            burn_rate=(bad / total) / slo.budget if total else None,
            budget_remaining=budget_remaining(window_total, window_bad, slo.budget)))
    total, bad = queries.slo_counts(store, slo, start_ns=now_ns - window_ns, end_ns=now_ns)
    return Slo(
        name=slo.name, description=slo.description, service=slo.service,
        operations=slo.operations, steps=slo.steps, kind=slo.kind,
        threshold_ms=slo.threshold * 1000 if slo.threshold else None,
        objective_percent=slo.objective, window=format_duration(slo.window),
        requests=total, bad=bad,
        sli_percent=100 * (1 - bad / total) if total else None,
        budget_remaining=budget_remaining(total, bad, slo.budget),
        burn_rates=[BurnRate(window=format_duration(seconds),
                             burn_rate=burn(store, slo, seconds, now_ns).rate)
                    for seconds in SHOWN_WINDOWS],
        series=series,
    )
