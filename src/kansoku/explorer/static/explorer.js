// The explorer's pages: each fetches the JSON API and draws tables and SVG charts.
// Data is always inserted as text (never as HTML): span names and attributes come from
// whoever sent them.
"use strict";

const params = new URLSearchParams(location.search);
const lookback = params.get("lookback") || "1h";
const content = document.getElementById("content");
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attributes = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The JSON API's answer (its `data`, or with `whole` all of it); an array value is sent
// as the parameter repeated.
async function api(path, query = {}, { whole = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(key, item);
    }
  }
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || `${response.status} from ${path}`);
  return whole ? body : body.data;
}

const ms = (value) => value === null || value === undefined ? "–"
  : value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(value < 10 ? 2 : 0)} ms`;
const pct = (value) => `${value.toFixed(value && value < 1 ? 2 : 1)} %`;

// Every time shown is UTC on a 24-hour clock, as the shop's own pages show theirs: one
// zone whatever the browser's, so a time here and one in the shop can be compared.
const two = (n) => String(n).padStart(2, "0");
const clock = (date, seconds = true) =>
  `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}${seconds ? `:${two(date.getUTCSeconds())}` : ""}`;
// A moment (ns since the epoch): its time, and its date too when that is not today.
function when(ns) {
  const date = new Date(ns / 1e6);
  const day = date.toISOString().slice(0, 10);
  return day === new Date().toISOString().slice(0, 10) ? clock(date) : `${day} ${clock(date)}`;
}
const link = (href, text) => el("a", { href }, text);
const withLookback = (path) => `${path}${path.includes("?") ? "&" : "?"}lookback=${lookback}`;

function show(...nodes) {
  content.replaceChildren(...nodes);
}

// A data table, in a box that scrolls sideways when the table is wider than the screen
// (a phone), so the page itself never is.
function dataTable(className, ...children) {
  return el("div", { class: "table-box" }, el("table", { class: `data ${className}`.trim() }, ...children));
}

function empty(text) {
  return el("p", { class: "muted" }, text);
}

// A small line chart: points [[x, y], ...] over the chart's width.
function sparkline(points, { width = 160, height = 36, label = "" } = {}) {
  const svg = el("svg:svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": label, class: "spark" });
  if (points.length < 2) return svg;
  const xs = points.map((p) => p[0]); const ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const top = Math.max(...ys) || 1;
  const path = points.map(([x, y], i) => `${i ? "L" : "M"}${((x - x0) / (x1 - x0 || 1) * (width - 2) + 1).toFixed(1)},${(height - 2 - y / top * (height - 4)).toFixed(1)}`).join(" ");
  svg.append(el("svg:path", { d: path, fill: "none", stroke: "currentColor", "stroke-width": 1.5 }));
  svg.append(el("svg:title", {}, `${label}: max ${top.toFixed(1)}`));
  return svg;
}

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

const pages = {
  async services() {
    const rows = await api("/api/red", { lookback });
    show(rows.length ? redTable(rows)
      : empty("No requests in this time range yet. Use the shop (or `kansoku load`) and come back."));
  },

  async service() {
    const service = document.body.dataset.service;
    const rows = await api("/api/red", { service, by_route: true, lookback });
    show(el("p", {}, link(withLookback(`/traces?service=${encodeURIComponent(service)}`), "All traces of this service"),
      " · ", link(withLookback(`/logs?service=${encodeURIComponent(service)}`), "its logs"),
      " · ", link(withLookback(`/problems?service=${encodeURIComponent(service)}`), "its problems")),
    rows.length ? redTable(rows, { byRoute: true }) : empty("No requests in this time range."));
  },

  async map() {
    const { nodes, edges } = await api("/api/map", { lookback });
    if (!nodes.length) return show(empty("No calls between services in this time range yet."));
    // Layers: a node sits one column right of the deepest node calling it.
    const depth = Object.fromEntries(nodes.map((n) => [n.id, 0]));
    for (let round = 0; round < nodes.length; round += 1) {
      for (const e of edges) if (e.parent !== e.child) depth[e.child] = Math.max(depth[e.child], Math.min(depth[e.parent] + 1, 8));
    }
    const columns = {};
    for (const n of nodes) (columns[depth[n.id]] ||= []).push(n);
    const [boxWidth, columnGap, rowGap] = [150, 270, 80];
    const width = columnGap * Math.max(...Object.values(depth)) + boxWidth + 60;
    const height = rowGap * Math.max(...Object.values(columns).map((c) => c.length)) + 40;
    const at = {};
    for (const [column, members] of Object.entries(columns)) {
      members.forEach((n, i) => { at[n.id] = [30 + column * columnGap, 30 + i * rowGap]; });
    }
    const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": "Service map", class: "map" },
    el("svg:defs", {}, el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#98a2b3" }))));
    for (const e of edges) {
      const [x1, y1] = at[e.parent]; const [x2, y2] = at[e.child];
      const bad = e.errors / e.calls >= 0.05;
      svg.append(el("svg:line", { x1: x1 + boxWidth, y1: y1 + 18, x2, y2: y2 + 18,
        class: `edge ${e.kind} ${bad ? "bad" : ""}`, "marker-end": "url(#arrow)" },
      el("svg:title", {}, `${e.parent} → ${e.child}: ${e.calls} calls, ${pct(100 * e.errors / e.calls)} errors, mean ${ms(e.mean_ms)}`)));
      // Calls into databases crowd the right-hand column: those tell their numbers on
      // hover only; calls between services are labelled.
      if (e.kind !== "database") {
        svg.append(el("svg:text", { x: (x1 + boxWidth + x2) / 2, y: (y1 + y2) / 2 + 12,
          "text-anchor": "middle", class: "edge-label" },
        `${e.calls} calls · ${ms(e.mean_ms)}${e.errors ? ` · ${e.errors} errors` : ""}`));
      }
    }
    for (const n of nodes) {
      const [x, y] = at[n.id];
      const label = n.id.length > 22 ? `${n.id.slice(0, 21)}…` : n.id;
      const box = el("svg:a", { href: n.kind === "service" ? withLookback(`/services/${encodeURIComponent(n.id)}`) : null },
        el("svg:title", {}, n.id),
        el("svg:rect", { x, y, width: boxWidth, height: 36, rx: n.kind === "database" ? 18 : 6, class: `node ${n.kind}` }),
        el("svg:text", { x: x + boxWidth / 2, y: y + 23, "text-anchor": "middle" }, label));
      svg.append(box);
    }
    show(el("p", { class: "muted" }, "Each arrow is calls from one component to another in this time range: count · mean latency · errors (dashed: through NATS). Hover an arrow for details; click a service for its routes."), svg);
  },

  async traces() {
    const form = document.getElementById("trace-search");
    const choice = document.getElementById("service-choice");
    for (const name of await api("/api/services")) choice.append(el("option", { value: name }, name));
    for (const [key, value] of params) if (form.elements[key]) {
      if (form.elements[key].type === "checkbox") form.elements[key].checked = value === "true";
      else form.elements[key].value = value;
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams(new FormData(form));
      for (const [key, value] of [...query]) if (!value) query.delete(key);
      query.set("lookback", lookback);
      history.replaceState(null, "", `?${query}`);
      searchTraces(form);
    });
    await searchTraces(form);
  },

  async trace() {
    const traceId = document.body.dataset.traceId;
    // The trace's problems are extra: the waterfall shows without them if they fail.
    const [{ spans, logs, warnings }, found] = await Promise.all([api(`/api/spans/${traceId}`),
      api("/api/problems", { trace_id: traceId }).catch(() => [])]);
    show(...(warnings || []).map((warning) => el("p", { class: "warning", role: "note" }, warning)),
      ...(found.length ? [traceProblems(found)] : []), waterfall(spans, logs, found),
      logTable(logs, "Logs of this trace"));
  },

  async problems() {
    const form = document.getElementById("problem-search");
    const choice = document.getElementById("service-choice");
    for (const name of await api("/api/services")) choice.append(el("option", { value: name }, name));
    for (const [key, value] of params) if (form.elements[key]) form.elements[key].value = value;
    const search = async () => {
      const query = Object.fromEntries(new FormData(form));
      const found = await api("/api/problems", { ...query, lookback });
      show(found.length ? el("ol", { class: "problems" }, found.map(problemCard))
        : empty("No problems detected in this time range. Good news — or try the lab's scenarios."));
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams(new FormData(form));
      for (const [key, value] of [...query]) if (!value) query.delete(key);
      query.set("lookback", lookback);
      history.replaceState(null, "", `?${query}`);
      search().catch(fail);
    });
    await search();
  },

  async logs() {
    const form = document.getElementById("log-search");
    const choice = document.getElementById("service-choice");
    for (const name of await api("/api/services")) choice.append(el("option", { value: name }, name));
    for (const [key, value] of params) if (form.elements[key]) form.elements[key].value = value;
    const search = async () => {
      const query = Object.fromEntries(new FormData(form));
      show(logTable(await api("/api/logs", { ...query, lookback, limit: 200 }), null));
    };
    form.addEventListener("submit", (event) => { event.preventDefault(); search().catch(fail); });
    await search();
  },
};

// --- Units: how a metric's values read ------------------------------------------------

const number = (value) => new Intl.NumberFormat("en", { maximumSignificantDigits: 3 }).format(value);

function bytes(value) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let index = 0;
  while (Math.abs(value) >= 1024 && index < units.length - 1) { value /= 1024; index += 1; }
  return `${number(value)} ${units[index]}`;
}
// Bytes' axis rounds in their own unit (512 MiB, not 477).
bytes.unit = (peak) => 1024 ** Math.max(0, Math.floor(Math.log(peak || 1) / Math.log(1024)));

function money(currency) {
  try {
    const format = new Intl.NumberFormat("en", { style: "currency", currency, maximumSignificantDigits: 4 });
    return (value) => format.format(value);
  } catch {  // not an ISO 4217 code: the number and whatever the code is
    return (value) => `${number(value)} ${currency}`;
  }
}

// A metric's unit (UCUM, as OpenTelemetry writes it) and kind as a formatter of its
// chart's values: bytes in KiB/MiB/GiB, a utilization as a percentage, money in its
// currency (`currencies`: those its series are in), durations in ms or s, and counts as
// numbers. A histogram's chart counts its observations, whatever their unit.
function formatFor(metric, currencies = []) {
  const { unit = "", kind = "", name = "" } = metric;
  if (["histogram", "exponential_histogram", "summary"].includes(kind)) return number;
  if (unit === "By") return bytes;
  if (unit === "1" && name.endsWith(".utilization")) return (value) => `${number(100 * value)} %`;
  if (unit === "s") return (value) => ms(1000 * value);
  if (unit === "ms") return ms;
  if (unit === "us") return (value) => ms(value / 1000);
  if (unit === "{currency_unit}" && currencies.length === 1) return money(currencies[0]);
  return number;
}

// The time range a chart spans: { start, end, step } in ns.
function rangeOf(lookbackText, steps = 60) {
  const minutes = { "15m": 15, "1h": 60, "6h": 360, "24h": 1440 }[lookbackText] || 60;
  const end = Date.now() * 1e6;
  return { start: end - minutes * 60e9, end, step: minutes * 60e9 / steps };
}

// Ticks on the time axis: the shortest of these intervals that gives at most six.
const TICK_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720];

// A line chart of one line per series, over a chart's time range: points are
// [{service, attribute?, time_ns, value}, ...], each the value of the step that starts at
// `time_ns`, drawn at the step's end (so the latest step meets the right edge, "now");
// a line breaks where steps are missing. A time axis in UTC, a value axis in `format`.
function lineChart(points, title, { format = number, range }) {
  const [width, height, left, right, top, bottom] = [420, 160, 56, 10, 10, 24];
  const plotWidth = width - left - right; const plotHeight = height - top - bottom;
  const x = (ns) => left + (Math.min(Math.max(ns, range.start), range.end) - range.start)
    / (range.end - range.start) * plotWidth;
  const peak = Math.max(...points.map((p) => p.value), 0);
  // The value axis' top: a round number (1, 2 or 5 times a power of ten, in the unit the
  // values are written in) at or above the peak.
  const unit = format.unit ? format.unit(peak) : 1;
  const magnitude = 10 ** Math.floor(Math.log10(peak / unit || 1));
  const topValue = unit * ([1, 2, 5, 10].map((m) => m * magnitude).find((v) => v >= peak / unit) || 1);
  const y = (value) => top + (1 - value / topValue) * plotHeight;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart" });
  for (const fraction of [0, 0.5, 1]) {
    const value = topValue * fraction;
    svg.append(el("svg:line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: fraction ? "grid" : "axis-line" }),
      el("svg:text", { x: left - 4, y: y(value) + 3, "text-anchor": "end", class: "axis" }, format(value)));
  }
  const minutes = (range.end - range.start) / 60e9;
  const every = (TICK_MINUTES.find((m) => minutes / m <= 6) || 1440) * 60e9;
  for (let tick = Math.ceil(range.start / every) * every; tick <= range.end; tick += every) {
    svg.append(el("svg:line", { x1: x(tick), x2: x(tick), y1: top + plotHeight, y2: top + plotHeight + 3, class: "axis-line" }),
      el("svg:text", { x: x(tick), y: height - 8, "text-anchor": "middle", class: "axis" }, clock(new Date(tick / 1e6), false)));
  }
  svg.append(el("svg:text", { x: left - 4, y: height - 8, "text-anchor": "end", class: "axis zone" }, "UTC"));
  const bySeries = {};
  for (const p of points) (bySeries[p.attribute ? `${p.service} · ${p.attribute}` : p.service] ||= []).push(p);
  Object.entries(bySeries).forEach(([name, series], index) => {
    series.sort((a, b) => a.time_ns - b.time_ns);
    const path = series.map((p, i) => {
      const gap = i && p.time_ns - series[i - 1].time_ns > 1.5 * range.step;
      return `${!i || gap ? "M" : "L"}${x(p.time_ns + range.step).toFixed(1)},${y(p.value).toFixed(1)}`;
    }).join(" ");
    svg.append(el("svg:path", { d: path, class: `series s${index % 8}` },
      el("svg:title", {}, `${name}: latest ${format(series[series.length - 1].value)}`)));
    if (series.length < 4) {  // too few points for a line to show: mark each one
      for (const p of series) {
        svg.append(el("svg:circle", { r: 3, class: `dot s${index % 8}`,
          cx: x(p.time_ns + range.step).toFixed(1), cy: y(p.value).toFixed(1) }));
      }
    }
  });
  const legend = el("p", { class: "legend" }, Object.keys(bySeries).map((name, index) =>
    el("span", { class: `key s${index % 8}` }, name)));
  return el("figure", { class: "metric" }, el("figcaption", {}, title), svg, legend);
}

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

pages.browser = async () => {
  const { vitals, errors, thresholds } = await api("/api/vitals", { lookback });
  const format = (name, value) => name === "CLS" ? value.toFixed(3) : ms(value);
  // Slowest pages first: by their LCP at p75.
  const lcp = (pagePath) => (vitals.find((v) => v.page === pagePath && v.name === "LCP") || { p75: -1 }).p75;
  const pagesSeen = [...new Set(vitals.map((v) => v.page))].sort((a, b) => lcp(b) - lcp(a));
  const names = Object.keys(thresholds);
  const table = vitals.length ? dataTable("vitals",
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Page"),
      ...names.map((n) => el("th", { scope: "col" }, `${n} p75`)))),
    el("tbody", {}, pagesSeen.map((pagePath) => el("tr", {}, el("th", { scope: "row" }, pagePath || "(unknown)"),
      ...names.map((n) => {
        const v = vitals.find((x) => x.page === pagePath && x.name === n);
        return v ? el("td", { class: `rating ${v.rating}`, title: `${v.samples} measurements` },
          format(n, v.p75), el("span", { class: "muted" }, ` ${v.rating.replace("-", " ")}`)) : el("td", {}, "–");
      })))))
    : empty("No Web Vitals from real browsers in this time range. Browse the storefront and come back.");
  const legend = el("p", { class: "muted" }, "Good / poor thresholds (web-vitals): ",
    names.map((n) => `${n} ≤ ${format(n, thresholds[n].good)} / > ${format(n, thresholds[n].poor)}`).join(" · "));
  const errorList = errors.length ? dataTable("",
    el("thead", {}, el("tr", {}, ...["Error", "Page", "Count", "Last seen (UTC)"].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, errors.map((e) => el("tr", { class: "bad" }, el("td", {}, e.message || "(no message)"),
      el("td", {}, e.page || ""), el("td", {}, e.count),
      el("td", {}, e.trace_id ? link(`/traces/${e.trace_id}`, when(e.last_seen_ns)) : when(e.last_seen_ns))))))
    : empty("No JavaScript errors reported.");
  show(el("h2", {}, "Web Vitals per page (p75), slowest first"), legend, table, el("h2", {}, "JavaScript errors"), errorList);
};

async function searchTraces(form) {
  const data = Object.fromEntries(new FormData(form));
  const tags = {};
  if (data.error) tags.error = "true";
  if (data.user) tags["enduser.id"] = data.user;
  if (data.tag && data.tag.includes("=")) {
    const [key, ...rest] = data.tag.split("=");
    tags[key.trim()] = rest.join("=").trim();
  }
  const traces = await api("/api/traces", {
    service: data.service, operation: data.operation, minDuration: data.minDuration,
    maxDuration: data.maxDuration, lookback, limit: 50,
    tags: Object.keys(tags).length ? JSON.stringify(tags) : "",
    // The storefront's pictures: a trace each, twenty to a product list.
    exclude: data.hideImages ? IMAGE_OPERATIONS : [] });
  if (!traces.length) return show(empty("No trace matches. Widen the time range or the search."));
  const summaries = traces.map((trace) => {
    const start = Math.min(...trace.spans.map((s) => s.startTime));
    const end = Math.max(...trace.spans.map((s) => s.startTime + s.duration));
    const root = trace.spans.find((s) => !s.references.length) || trace.spans[0];
    const errors = trace.spans.filter((s) => s.tags.some((t) => t.key === "error")).length;
    const services = new Set(trace.spans.map((s) => trace.processes[s.processID].serviceName));
    return { id: trace.traceID, root, duration: (end - start) / 1000, start, errors, services,
      count: trace.spans.length, service: trace.processes[root.processID].serviceName,
      warnings: trace.warnings || [] };
  });
  const longest = Math.max(...summaries.map((t) => t.duration)) || 1;
  show(el("ol", { class: "traces" }, summaries.map((t) => el("li", { class: t.errors ? "bad" : "" },
    link(`/traces/${t.id}`, `${t.service}: ${t.root.operationName}`),
    el("span", { class: "bar", style: `width:${Math.max(2, 60 * t.duration / longest)}%` }),
    el("span", { class: "muted" }, ` ${ms(t.duration)} · ${t.count} spans · ${t.services.size} services${t.errors ? ` · ${t.errors} errors` : ""} · ${when(t.start * 1000)}`),
    // A trace too big for the list's answer came cut short: it says how much.
    t.warnings.map((warning) => el("span", { class: "warning" }, warning))))));
}

// The operations of the storefront's pictures (see `exclude` in GET /api/traces).
const IMAGE_OPERATIONS = ["GET */image", "GET */thumbnail"];

// What a problem is about: its statement (SQL) or its route.
function problemTarget(problem) {
  return problem.statement ? el("pre", { class: "sql" }, problem.statement)
    : el("p", {}, el("span", { class: "muted" }, "Route "), el("code", {}, problem.route || ""));
}

function problemCard(problem) {
  const times = problem.occurrences === 1 ? "once" : `${problem.occurrences} times`;
  return el("li", {}, el("article", { class: `problem ${problem.kind}`, "aria-label": `${problem.title}: ${problem.service} ${problem.operation}` },
    el("h2", {}, el("span", { class: "kind" }, problem.title), " ",
      link(withLookback(`/services/${encodeURIComponent(problem.service)}`), problem.service), " · ",
      el("span", { class: "operation" }, problem.operation)),
    problemTarget(problem),
    el("p", { class: "explanation" }, problem.explanation),
    el("p", { class: "fix" }, el("strong", {}, "Fix: "), problem.fix),
    el("p", { class: "muted" }, `Seen ${times} · ${problem.impact_text} · first ${when(problem.first_seen_ns)} · last ${when(problem.last_seen_ns)}`),
    el("p", {}, link(`/traces/${problem.example_trace_id}`, "Example trace"), " · ",
      link(withLookback(`/problems?service=${encodeURIComponent(problem.service)}`), `all problems of ${problem.service}`))));
}

function traceProblems(found) {
  return el("section", { class: "trace-problems", "aria-label": "Problems in this trace" },
    el("h2", {}, found.length === 1 ? "A problem in this trace" : `${found.length} problems in this trace`),
    el("ul", {}, found.map((problem) => el("li", { class: "problem" },
      el("strong", {}, `${problem.title}: `), problem.explanation, " ",
      el("span", { class: "fix" }, el("strong", {}, "Fix: "), problem.fix), " ",
      el("span", { class: "muted" }, `(${problem.span_ids.length} span${problem.span_ids.length === 1 ? "" : "s"} marked ⚠ below · `),
      link(withLookback(`/problems?kind=${problem.kind}&service=${encodeURIComponent(problem.service)}`), "every occurrence"),
      el("span", { class: "muted" }, ")")))));
}

function waterfall(spans, logs, found = []) {
  const problemsOf = {};
  for (const problem of found) for (const id of problem.span_ids || []) (problemsOf[id] ||= []).push(problem);
  const byId = Object.fromEntries(spans.map((s) => [s.span_id, s]));
  const children = {};
  const roots = [];
  for (const s of spans) {
    if (s.parent_span_id && byId[s.parent_span_id]) (children[s.parent_span_id] ||= []).push(s);
    else roots.push(s);
  }
  const start = Math.min(...spans.map((s) => s.start_ns));
  const total = Math.max(...spans.map((s) => s.start_ns + s.duration_ns)) - start || 1;
  const services = [...new Set(spans.map((s) => s.service))];
  const list = el("ol", { class: "waterfall", "aria-label": "Spans, as a tree" });
  const logsBySpan = {};
  for (const log of logs) (logsBySpan[log.span_id] ||= []).push(log);
  const add = (span, depth) => {
    const marked = problemsOf[span.span_id] || [];
    const details = el("div", { class: "details", hidden: true },
      marked.map((problem) => el("p", { class: "problem-note" }, el("strong", {}, `⚠ ${problem.title}: `),
        problem.explanation, " ", el("strong", {}, "Fix: "), problem.fix)),
      spanDetails(span, logsBySpan[span.span_id] || []));
    const row = el("li", { class: `span ${span.status === "error" ? "bad" : ""} ${marked.length ? "problem" : ""}` },
      el("button", { type: "button", class: "span-row", "aria-expanded": "false",
        onclick: (event) => {
          details.hidden = !details.hidden;
          event.currentTarget.setAttribute("aria-expanded", String(!details.hidden));
        } },
      el("span", { class: "name", style: `padding-left:${depth * 14}px` },
        el("span", { class: `svc c${services.indexOf(span.service) % 8}` }, span.service), ` ${span.name}`,
        marked.length ? el("span", { class: "flag", title: marked.map((p) => p.title).join(", ") },
          ` ⚠ ${marked.map((p) => p.title).join(", ")}`) : null),
      el("span", { class: "lane" }, el("span", { class: `bar c${services.indexOf(span.service) % 8}`,
        style: `left:${100 * (span.start_ns - start) / total}%;width:${Math.max(0.3, 100 * span.duration_ns / total)}%` })),
      el("span", { class: "dur" }, ms(span.duration_ns / 1e6))), details);
    list.append(row);
    for (const child of (children[span.span_id] || []).sort((a, b) => a.start_ns - b.start_ns)) add(child, depth + 1);
  };
  roots.sort((a, b) => a.start_ns - b.start_ns).forEach((root) => add(root, 0));
  return el("section", { "aria-label": "Waterfall" },
    el("p", { class: "muted" }, `${spans.length} spans in ${services.length} services, ${ms(total / 1e6)}. Click a span for its attributes, events and logs.`),
    list);
}

function spanDetails(span, logs) {
  const rows = Object.entries(span.attributes).map(([key, value]) => el("tr", {},
    el("th", { scope: "row" }, key), el("td", {}, typeof value === "string" ? value : JSON.stringify(value))));
  const parts = [el("p", {}, `${span.kind} span · status ${span.status}${span.status_message ? `: ${span.status_message}` : ""} · started ${when(span.start_ns)} UTC`),
    ...(span.warnings || []).map((warning) => el("p", { class: "warning" }, warning))];
  if (span.db_statement) parts.push(el("pre", { class: "sql" }, span.db_statement));
  parts.push(el("table", { class: "attributes" }, el("tbody", {}, rows)));
  for (const event of span.events) {
    const attrs = event.attributes;
    parts.push(el("div", { class: event.name === "exception" ? "event bad" : "event" },
      el("strong", {}, event.name), " ", attrs["exception.type"] || "", " ", attrs["exception.message"] || "",
      attrs["exception.stacktrace"] ? el("pre", {}, attrs["exception.stacktrace"]) : null));
  }
  if (logs.length) parts.push(logTable(logs, "Logs of this span"));
  return parts;
}

function logTable(logs, title) {
  if (!logs.length) return title ? el("section", {}, el("h2", {}, title), empty("None.")) : empty("No log records match.");
  const table = dataTable("logs",
    el("thead", {}, el("tr", {}, ...["Time (UTC)", "Service", "Level", "Message", "Trace"].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, logs.map((log) => el("tr", { class: /ERROR|CRITICAL/.test(log.severity || "") ? "bad" : "" },
      el("td", {}, when(log.time_ns)), el("td", {}, log.service), el("td", {}, log.severity || ""),
      el("td", {}, log.body), el("td", {}, log.trace_id ? link(`/traces/${log.trace_id}`, log.trace_id.slice(0, 8)) : "")))));
  return title ? el("section", {}, el("h2", {}, title), table) : table;
}

function fail(error) {
  show(el("p", { class: "error", role: "alert" }, `Could not load this page: ${error.message}`));
}


// --- Alerts and SLOs (docs/alerts.md) -------------------------------------------------

const stateLabel = { firing: "Firing", pending: "Pending", resolved: "Resolved", inactive: "Cleared" };

function alertLinks(alert) {
  const names = { service: alert.service, traces: "traces", example_trace: "example trace", logs: "error logs", slos: "SLOs" };
  return Object.entries(alert.links || {}).flatMap(([name, path], index) =>
    [index ? " · " : "", link(path, names[name] || name)]);
}

function alertCard(alert) {
  const extra = Object.entries(alert.labels).filter(([key]) => !["service", "severity"].includes(key))
    .map(([key, value]) => `${key}=${value}`).join(" · ");
  return el("li", {}, el("article", { class: `alert ${alert.state} ${alert.severity}`, "aria-label": `${alert.name} ${alert.state}` },
    el("h2", {}, el("span", { class: "state" }, stateLabel[alert.state] || alert.state), " ",
      el("span", { class: "name" }, alert.name), " ",
      alert.service ? link(withLookback(`/services/${encodeURIComponent(alert.service)}`), alert.service) : null,
      extra ? el("span", { class: "muted" }, ` · ${extra}`) : null),
    el("p", { class: "summary" }, alert.summary),
    // Why it resolved: a value back within its threshold is a fix; no traffic is not.
    alert.resolution ? el("p", { class: "resolution" }, el("strong", {}, "Resolved: "), alert.resolution) : null,
    el("p", { class: "muted" }, `${alert.severity} · value ${alert.value_text ?? alert.value ?? "–"}`,
      alert.threshold_text ? ` (threshold ${alert.threshold_text})` : "",
      ` · ${alert.state} since ${when(alert.since_ns)} UTC`),
    el("p", {}, alertLinks(alert))));
}

pages.alerts = async () => {
  const [alerts, history, rules] = await Promise.all([api("/api/alerts"),
    api("/api/alerts/history", { lookback, limit: 200 }), api("/api/alerts/rules")]);
  const active = alerts.filter((a) => a.state !== "resolved");
  const resolved = alerts.filter((a) => a.state === "resolved");
  const problems = rules.load_error ? [el("p", { class: "error", role: "alert" },
    `The rules file has a mistake, so the rules before it stay in use: ${rules.load_error}`)] : [];
  const historyTable = history.length ? dataTable("history",
    el("thead", {}, el("tr", {}, ...["Time (UTC)", "Alert", "Labels", "Change", "Value", "Why"].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, history.map((h) => el("tr", { class: h.to_state === "firing" ? "bad" : "" },
      el("td", {}, when(h.time_ns)), el("td", {}, h.rule),
      el("td", {}, Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(" ")),
      el("td", {}, `${stateLabel[h.from_state] || h.from_state} → ${stateLabel[h.to_state] || h.to_state}`),
      el("td", {}, h.value === null ? "–" : +h.value.toPrecision(3)),
      el("td", { class: "why" }, h.reason || "")))))
    : empty("No alert changed state in this time range.");
  show(...problems,
    el("p", { class: "muted" }, `${rules.rules.length} rules from ${rules.source}, evaluated every few seconds. The same list is `,
      el("code", {}, "GET /api/alerts"), "."),
    el("h2", {}, "Firing and pending"),
    active.length ? el("ol", { class: "alerts" }, active.map(alertCard)) : empty("Nothing is firing. All quiet."),
    ...(resolved.length ? [el("h2", {}, "Resolved lately"), el("ol", { class: "alerts" }, resolved.map(alertCard))] : []),
    el("h2", {}, "History"), historyTable);
};

const fixed = (value, digits = 1) => value === null || value === undefined ? "–" : value.toFixed(digits);

function sloCard(slo, range) {
  const remaining = slo.budget_remaining;
  const level = remaining === null ? "" : remaining < 0 ? "bad" : remaining < 0.25 ? "low" : "good";
  const goal = slo.kind === "latency" ? `${slo.objective_percent} % of requests within ${ms(slo.threshold_ms)}`
    : `${slo.objective_percent} % of requests succeed`;
  const burns = dataTable("burns",
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Window"), ...slo.burn_rates.map((b) => el("th", { scope: "col" }, b.window)))),
    el("tbody", {}, el("tr", {}, el("th", { scope: "row" }, "Burn rate"),
      ...slo.burn_rates.map((b) => el("td", { class: b.burn_rate >= 1 ? "bad" : "" }, b.burn_rate === null ? "–" : `${fixed(b.burn_rate)}×`)))));
  const burnPoints = slo.series.filter((p) => p.burn_rate !== null).map((p) => ({ service: "burn rate", time_ns: p.time_ns, value: p.burn_rate }));
  const budgetPoints = slo.series.filter((p) => p.budget_remaining !== null)
    .map((p) => ({ service: "budget remaining (%)", time_ns: p.time_ns, value: Math.max(0, 100 * p.budget_remaining) }));
  return el("li", {}, el("article", { class: `slo ${level}`, "aria-label": `SLO ${slo.name}` },
    el("h2", {}, slo.name, " ", link(withLookback(`/services/${encodeURIComponent(slo.service)}`), slo.service)),
    el("p", {}, slo.description, " ", el("span", { class: "muted" }, `${goal} over ${slo.window}: ${slo.operations.join(", ")}`)),
    el("p", { class: "budget" }, el("strong", {}, remaining === null ? "No requests yet" : `${fixed(100 * remaining)} % of the error budget left`),
      el("span", { class: "muted" }, ` · ${slo.requests} requests, ${slo.bad} bad · SLI ${slo.sli_percent === null ? "–" : `${fixed(slo.sli_percent, 2)} %`}`)),
    el("div", { class: "meter", role: "meter", "aria-label": "Error budget remaining", "aria-valuemin": 0, "aria-valuemax": 100,
      "aria-valuenow": remaining === null ? 100 : Math.max(0, Math.round(100 * remaining)) },
    el("span", { style: `width:${remaining === null ? 100 : Math.max(0, Math.min(100, 100 * remaining))}%` })),
    burns,
    el("div", { class: "charts-grid" },
      burnPoints.length ? lineChart(burnPoints, "Burn rate per step (1 = on budget)",
        { format: (value) => `${number(value)}×`, range }) : empty("No requests in this time range."),
      budgetPoints.length ? lineChart(budgetPoints, "Error budget remaining over the SLO window",
        { format: (value) => `${number(value)} %`, range }) : empty(""))));
}

pages.slos = async () => {
  const found = await api("/api/slos", { lookback });
  const chartRange = rangeOf(lookback);  // in the API's default step: about 60 of them
  show(el("p", { class: "muted" }, "Each SLO's error budget is the share of requests allowed to be bad. The burn rate says how fast it goes: 1 spends it exactly over the SLO window, 14.4 spends 2 % of a 30-day budget in an hour. ",
    link("/alerts", "Alerts"), " fire when both windows of a pair burn fast (1h and 5m at 14.4×, 6h and 30m at 6×, 3d and 6h at 1×)."),
  found.length ? el("ol", { class: "slos" }, found.map((slo) => sloCard(slo, chartRange)))
    : empty("No SLOs are defined in the rules file."));
};

// Start: the page's filler, once every page above is defined.
const range = document.getElementById("lookback");
range.value = lookback;
range.addEventListener("change", () => {
  params.set("lookback", range.value);
  location.search = params.toString();
});
for (const a of document.querySelectorAll("nav a")) a.href = withLookback(a.getAttribute("href"));
(pages[document.body.dataset.page] || (async () => {}))().catch(fail);
