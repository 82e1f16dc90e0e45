// The SLOs page (docs/alerts.md).
"use strict";

const fixed = (value, digits = 1) => value === null || value === undefined ? "–" : value.toFixed(digits);

function sloCard(slo, range) {
  const remaining = slo.budget_remaining;
  const level = remaining === null ? "" : remaining < 0 ? "bad" : remaining < 0.25 ? "low" : "good";
  const percent = slo.objective_percent;
  const goal = slo.kind === "latency" ? _("{percent} % of requests within {threshold}", { percent, threshold: ms(slo.threshold_ms) })
    : slo.kind === "journey" ? _("{percent} % of journeys end with a 2xx at their last step", { percent })
      : _("{percent} % of requests succeed", { percent });
  // A journey's earlier steps count only when they fail.
  const steps = slo.steps && slo.steps.length
    ? _("; a failure (5xx) of {steps} counts as a bad journey", { steps: slo.steps.join(", ") }) : "";
  const counted = slo.kind === "journey" ? ngettext("{n} journey", "{n} journeys", slo.requests)
    : ngettext("{n} request", "{n} requests", slo.requests);
  const burns = dataTable("burns",
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, _("Window")), ...slo.burn_rates.map((b) => el("th", { scope: "col" }, b.window)))),
    el("tbody", {}, el("tr", {}, el("th", { scope: "row" }, _("Burn rate")),
      ...slo.burn_rates.map((b) => el("td", { class: b.burn_rate >= 1 ? "bad" : "" }, b.burn_rate === null ? "–" : `${fixed(b.burn_rate)}×`)))));
  const burnPoints = slo.series.filter((p) => p.burn_rate !== null).map((p) => ({ service: _("burn rate"), time_ns: p.time_ns, value: p.burn_rate }));
  const budgetPoints = slo.series.filter((p) => p.budget_remaining !== null)
    .map((p) => ({ service: _("budget remaining (%)"), time_ns: p.time_ns, value: Math.max(0, 100 * p.budget_remaining) }));
  return el("li", {}, el("article", { class: `slo ${level}`, "aria-label": _("SLO {name}", { name: slo.name }) },
    el("h2", {}, slo.name, " ", link(withLookback(`/services/${encodeURIComponent(slo.service)}`), slo.service)),
    el("p", {}, slo.description, " ", el("span", { class: "muted" }, _("{goal} over {window}: {operations}{steps}", {
      goal, window: slo.window, operations: slo.operations.join(", "), steps }))),
    el("p", { class: "budget" }, el("strong", {}, remaining === null ? _("No requests yet")
      : _("{percent} % of the error budget left", { percent: fixed(100 * remaining) })),
      el("span", { class: "muted" }, " · ", _("{count}, {bad} bad · SLI {sli}", {
        count: counted, bad: number(slo.bad), sli: slo.sli_percent === null ? "–" : `${fixed(slo.sli_percent, 2)} %` }))),
    el("div", { class: "meter", role: "meter", "aria-label": _("Error budget remaining"), "aria-valuemin": 0, "aria-valuemax": 100,
      "aria-valuenow": remaining === null ? 100 : Math.max(0, Math.round(100 * remaining)) },
    el("span", { style: `width:${remaining === null ? 100 : Math.max(0, Math.min(100, 100 * remaining))}%` })),
    burns,
    el("div", { class: "charts-grid" },
      burnPoints.length ? lineChart(burnPoints, _("Burn rate per step (1 = on budget)"),
        { format: (value) => `${number(value)}×`, range }) : empty(_("No requests in this time range.")),
      budgetPoints.length ? lineChart(budgetPoints, _("Error budget remaining over the SLO window"),
        { format: (value) => `${number(value)} %`, range }) : empty(""))));
}

pages.slos = async () => {
  const found = await api("/api/slos", { lookback });
  const chartRange = rangeOf(lookback);  // in the API's default step: about 60 of them
  show(el("p", { class: "muted" }, _("Each SLO's error budget is the share of requests allowed to be bad. The burn rate says how fast it goes: 1 spends it exactly over the SLO window, 14.4 spends 2 % of a 30-day budget in an hour."), " ",
    formatNodes(_("{alerts} fire when both windows of a pair burn fast (1h and 5m at 14.4×, 6h and 30m at 6×, 3d and 6h at 1×)."),
      { alerts: link("/alerts", _("Alerts")) })),
  found.length ? el("ol", { class: "slos" }, found.map((slo) => sloCard(slo, chartRange)))
    : empty(_("No SLOs are defined in the rules file.")));
};
