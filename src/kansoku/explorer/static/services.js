// The Services page and a service's page: rate, errors and latency (RED) per service and
// route — a table of the time range, and charts of it over time, as a RED board reads.
"use strict";

// Requests per second as a person reads it: below one a second, per minute (or per
// hour), so a service that had requests never reads "0.00".
function perSecond(value) {
  if (!value) return _("{n}/s", { n: 0 });
  if (value >= 1) return _("{n}/s", { n: number(value) });
  if (value * 60 >= 1) return _("{n}/min", { n: number(value * 60) });
  return _("{n}/h", { n: number(value * 3600) });
}

// A length of time in seconds, in words: "1 h", "14 min", "101 s".
function secondsInWords(seconds) {
  if (seconds >= 3600) return _("{n} h", { n: number(seconds / 3600) });
  return seconds >= 600 ? _("{n} min", { n: Math.round(seconds / 60) }) : _("{n} s", { n: Math.round(seconds) });
}

// What the rates are over: the time range, or the part of it the explorer holds spans for.
function rateNote(rows) {
  const seconds = rows.length ? rows[0].seconds : 0;
  const range = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400 }[lookback] || 3600;
  return seconds && seconds < range - 60
    ? _("Requests: how many a second over the last {time} (the explorer holds nothing older in this time range), or a minute or an hour when fewer.", { time: secondsInWords(seconds) })
    : _("Requests: how many a second over the last {time}, or a minute or an hour when fewer.", { time: secondsInWords(range) });
}

function redTable(rows, { byRoute = false } = {}) {
  const columns = [byRoute ? _("Route") : _("Service"), _("Requests"), _("Errors"), "p50", "p95", "p99"];
  const head = el("tr", {}, columns.map((name) => el("th", { scope: "col" }, name)));
  const cell = (label, text) => el("td", { class: "num", "data-label": label }, text);
  const body = rows.map((row) => {
    // A route's name opens its slowest traces, as it always has; "charts" draws its RED.
    const name = byRoute
      ? link(withLookback(`/traces?service=${encodeURIComponent(row.service)}&tag=${encodeURIComponent(`http.route=${row.route}`)}&minDuration=${Math.floor(row.p95_ms)}ms`), row.route)
      : link(`/services/${encodeURIComponent(row.service)}?lookback=${lookback}`, row.service);
    const more = byRoute ? el("span", { class: "muted" }, " ", _("slowest traces"), " · ",
      link(withLookback(`/services/${encodeURIComponent(row.service)}?route=${encodeURIComponent(row.route)}`), _("charts"))) : null;
    return el("tr", { class: row.error_percent >= 5 ? "bad" : "" },
      el("th", { scope: "row" }, byRoute ? null : el("span", { class: "swatch", style: `background:${serviceColor(row.service)}` }), name, more),
      cell(_("Requests"), perSecond(row.rate_per_second)), cell(_("Errors"), pct(row.error_percent)),
      cell("p50", ms(row.p50_ms)), cell("p95", ms(row.p95_ms)), cell("p99", ms(row.p99_ms)));
  });
  return dataTable("red", el("thead", {}, head), el("tbody", {}, body));
}

// The RED board's charts of `series` (the API's points per step): requests per second,
// errors as a % of requests, and latency — p95 of each service when `services` (the
// Services page), else p50, p95 and p99 of the one service or route; `what` titles the
// three charts.
function redCharts(series, { services, what }) {
  const range = stepRange(lookback);
  const of = (field) => series.map((p) => ({ service: p.service, time_ns: p.time_ns, value: p[field] }));
  // A step without requests is a rate of 0, not a gap in the line: between a service's
  // first step and its last, the API's missing steps are filled in as 0.
  const rates = of("rate_per_second");
  const seen = new Set(rates.map((p) => `${p.service} ${p.time_ns}`));
  for (const service of new Set(rates.map((p) => p.service))) {
    const times = rates.filter((p) => p.service === service).map((p) => p.time_ns);
    for (let t = Math.min(...times); t < Math.max(...times); t += range.step) {
      if (!seen.has(`${service} ${t}`)) rates.push({ service, time_ns: t, value: 0 });
    }
  }
  const latency = services ? of("p95_ms")
    : series.flatMap((p) => ["p50", "p95", "p99"].map((statistic) =>
      ({ service: p.service, statistic, time_ns: p.time_ns, value: p[`${statistic}_ms`] })));
  return el("div", { class: "charts-grid red-board" },
    lineChart(rates, what.rates, { format: number, range, axis: _("requests/s") }),
    lineChart(of("error_percent"), what.errors, { format: (value) => `${number(value)} %`, range, axis: _("% failed") }),
    lineChart(latency, what.latency, { format: ms, range, axis: "ms" }));
}

pages.services = async () => {
  const [rows, series] = await Promise.all([api("/api/red", { lookback }),
    api("/api/red/series", { lookback, step: stepFor(lookback) })]);
  if (!rows.length) {
    return show(empty(_("No requests in this time range yet. Use the shop (or `kansoku load`) and come back.")));
  }
  show(el("p", { class: "muted" }, rateNote(rows), " ", _("Errors: requests that failed (an error status, or HTTP 500 and above). Latency: p50, p95 and p99 of the requests' durations.")),
    redTable(rows), el("h2", {}, _("Over time")), redCharts(series, { services: true, what: {
      rates: _("Requests per second, by service"), errors: _("Errors, % of requests, by service"),
      latency: _("Latency p95 by service, ms") } }));
};

pages.service = async () => {
  const service = document.body.dataset.service;
  const route = params.get("route") || undefined;
  const [rows, series] = await Promise.all([api("/api/red", { service, by_route: true, lookback }),
    api("/api/red/series", { service, route, lookback, step: stepFor(lookback) })]);
  const links = el("p", {}, link(withLookback(`/traces?service=${encodeURIComponent(service)}`), _("All traces of this service")),
    " · ", link(withLookback(`/logs?service=${encodeURIComponent(service)}`), _("its logs")),
    " · ", link(withLookback(`/problems?service=${encodeURIComponent(service)}`), _("its problems")));
  if (!rows.length) return show(links, empty(_("No requests in this time range.")));
  const showing = route
    ? el("p", {}, _("Charts of the route"), " ", el("strong", {}, route), " · ",
      link(`/services/${encodeURIComponent(service)}?lookback=${lookback}`, _("the whole service")))
    : el("p", { class: "muted" }, _("Charts of the whole service; a route's \u201ccharts\u201d draws that route's."));
  const what = route
    ? { rates: _("Requests per second of {route}", { route }), errors: _("Errors, % of requests of {route}", { route }),
      latency: _("Latency p50/p95/p99 of {route}, ms", { route }) }
    : { rates: _("Requests per second"), errors: _("Errors, % of requests"), latency: _("Latency p50/p95/p99, ms") };
  show(links, el("p", { class: "muted" }, rateNote(rows)), redTable(rows, { byRoute: true }),
    el("h2", {}, _("Over time")), showing,
    series.length ? redCharts(series, { services: false, what })
      : empty(_("No requests of this route in this time range.")));
};
