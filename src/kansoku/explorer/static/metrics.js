// The Metrics page (/charts).
"use strict";

// Charts drawn first on the metrics page, in this order; the rest follow by name.
const FEATURED_METRICS = ["kansoku.orders", "kansoku.orders.revenue", "kansoku.orders.items_sold",
  "kansoku.payments.declined", "kansoku.cart.abandoned", "kansoku.catalog.searches",
  "kansoku.cache.requests", "kansoku.events.dead_letters", "process.cpu.utilization",
  "process.memory.usage", "http.server.duration", "http.server.request.duration"];

// What a chart says it shows, after the metric's name.
function chartTitle(metric) {
  if (["histogram", "exponential_histogram", "summary"].includes(metric.kind)) return `${metric.name} (measurements per step)`;
  return metric.kind === "sum" ? `${metric.name} (increase per step)` : `${metric.name} (average)`;
}

pages.charts = async () => {
  const [names, funnel] = await Promise.all([api("/api/metrics", { lookback }), api("/api/funnel", { lookback })]);
  if (!names.length) return show(empty("No metrics in this time range yet."));
  const top = Math.max(...funnel.map((s) => s.count), 1);
  const funnelView = el("section", { "aria-label": "Funnel" }, el("h2", {}, "Funnel"),
    el("ol", { class: "funnel" }, funnel.map((s) => el("li", {},
      el("span", { class: "label" }, s.step),
      el("span", { class: "bar", style: `width:${Math.max(1, 100 * s.count / top)}%` }),
      el("span", { class: "count" }, Math.round(s.count))))));
  const rank = (name) => { const i = FEATURED_METRICS.indexOf(name); return i < 0 ? 999 : i; };
  const ordered = [...names].sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
  const grid = el("div", { class: "charts-grid" });
  show(funnelView, el("h2", {}, "Metrics"), el("p", { class: "muted" },
    "Counters show their increase per step; gauges their average; histograms how many measurements. One line per service; times in UTC."), grid);
  for (const metric of ordered.slice(0, 40)) {
    const figure = el("div", {}, el("p", { class: "muted" }, `${metric.name}…`));
    grid.append(figure);
    // Money is charted per currency: amounts in different ones do not add up.
    const by = metric.unit === "{currency_unit}" ? "currency" : undefined;
    api("/api/metrics/series", { name: metric.name, lookback, step: stepFor(lookback), by }, { whole: true })
      .then(({ data, start_ns: start, end_ns: end, step_ns: step }) => {
        const currencies = [...new Set(data.map((p) => p.attribute).filter(Boolean))];
        figure.replaceChildren(data.length
          ? lineChart(data, chartTitle(metric), { format: formatFor(metric, currencies), range: { start, end, step } })
          : el("p", { class: "muted" }, `${metric.name}: no change`));
      })
      .catch((error) => figure.replaceChildren(el("p", { class: "error" }, `${metric.name}: ${error.message}`)));
  }
};
