// The Services page and a service's page: rate, errors and latency (RED) per service and route.
"use strict";

function redTable(rows, { byRoute = false } = {}) {
  const head = el("tr", {}, el("th", { scope: "col" }, byRoute ? "Route" : "Service"),
    ...["Requests/s", "Errors", "p50", "p90", "p95", "p99", byRoute ? "" : "Requests, p95 over time"]
      .map((name) => el("th", { scope: "col" }, name)));
  const body = rows.map((row) => {
    const name = byRoute ? row.route : row.service;
    const target = byRoute
      ? withLookback(`/traces?service=${encodeURIComponent(row.service)}&tag=${encodeURIComponent(`http.route=${row.route}`)}&minDuration=${Math.floor(row.p95_ms)}ms`)
      : `/services/${encodeURIComponent(row.service)}?lookback=${lookback}`;
    const charts = el("td", { class: "charts" });
    if (!byRoute) {
      api("/api/red/series", { service: row.service, lookback, step: stepFor(lookback) })
        .then((series) => charts.append(
          sparkline(series.map((p) => [p.time_ns, p.requests]), { label: "requests per step" }),
          sparkline(series.map((p) => [p.time_ns, p.p95_ms]), { label: "p95 latency" })))
        .catch(() => charts.append("–"));
    }
    return el("tr", { class: row.error_percent >= 5 ? "bad" : "" },
      el("th", { scope: "row" }, link(target, name), byRoute ? el("span", { class: "muted" }, " slowest traces") : null),
      el("td", {}, row.rate_per_second.toFixed(2)), el("td", {}, pct(row.error_percent)),
      el("td", {}, ms(row.p50_ms)), el("td", {}, ms(row.p90_ms)), el("td", {}, ms(row.p95_ms)),
      el("td", {}, ms(row.p99_ms)), byRoute ? el("td") : charts);
  });
  return dataTable("", el("thead", {}, head), el("tbody", {}, body));
}

function stepFor(range) {
  return { "15m": "30s", "1h": "1m", "6h": "5m", "24h": "20m" }[range] || "1m";
}

pages.services = async () => {
  const rows = await api("/api/red", { lookback });
  show(rows.length ? redTable(rows)
    : empty("No requests in this time range yet. Use the shop (or `kansoku load`) and come back."));
};

pages.service = async () => {
  const service = document.body.dataset.service;
  const rows = await api("/api/red", { service, by_route: true, lookback });
  show(el("p", {}, link(withLookback(`/traces?service=${encodeURIComponent(service)}`), "All traces of this service"),
    " · ", link(withLookback(`/logs?service=${encodeURIComponent(service)}`), "its logs"),
    " · ", link(withLookback(`/problems?service=${encodeURIComponent(service)}`), "its problems")),
  rows.length ? redTable(rows, { byRoute: true }) : empty("No requests in this time range."));
};
