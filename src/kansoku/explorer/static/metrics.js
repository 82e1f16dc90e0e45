// The Metrics page (/charts): the metrics that arrived, grouped into what they tell —
// the business, requests and latency, the processes' runtime, real users' browsers —
// each drawn as its instrument is read: a counter as its rate per second, a gauge or
// up-down counter as its value, a histogram as p50/p95/p99 in its unit.
"use strict";

// The page's sections, in order; a metric goes in the first whose `match` takes its name.
const METRIC_GROUPS = [
  { name: _("Business"), match: (name) => /^kansoku\.(orders|payments|cart|catalog|identity|inventory)\./.test(`${name}.`),
    about: _("What the shop sells and how people shop: orders, revenue, payments, carts and the catalog, each per second.") },
  { name: _("Requests and latency"), match: (name) => /^(http|rpc)\./.test(name),
    about: _("Requests as the services measured them: how long they took, as p50, p95 and p99 in ms. Rate and errors per service and route are on the Services page.") },
  { name: _("Runtime"), match: (name) => /^(process|cpython|system|runtime|db\.client)\./.test(name) || name === "kansoku.circuit_breaker.state",
    about: _("The processes behind the services: CPU, memory, threads, garbage collection and database connections.") },
  { name: _("Browser (real users)"), match: (name) => name.startsWith("kansoku.browser."),
    about: _("Real users' browsers: Web Vitals (p50/p95/p99 in ms, CLS unitless), page views, errors and key actions.") },
  { name: _("Everything else"), match: () => true,
    about: _("The other metrics that arrived: the worker, the event bus, caches, synthetic checks and the lab.") },
];

// Plain titles for the metrics a reader looks for first (their order within a section),
// and the attribute their lines are split by. Others get a title from their instrument.
const KNOWN_METRICS = {
  "kansoku.orders": { title: _("Orders per second, by status"), by: "status" },
  "kansoku.orders.revenue": { title: _("Revenue per second"), by: "currency" },
  "kansoku.orders.items_sold": { title: _("Items sold per second") },
  "kansoku.payments.succeeded": { title: _("Payments per second") },
  "kansoku.payments.declined": { title: _("Declined payments per second") },
  "kansoku.payments.refunded": { title: _("Refunds per second") },
  "kansoku.cart.units.added": { title: _("Units added to carts per second") },
  "kansoku.cart.abandoned": { title: _("Abandoned carts per second") },
  "kansoku.catalog.product.views": { title: _("Product views per second") },
  "kansoku.catalog.searches": { title: _("Searches per second") },
  "http.server.request.duration": {},
  "http.client.request.duration": {},
  "process.cpu.utilization": { title: _("CPU utilization, %") },
  "process.memory.usage": { title: _("Memory in use, bytes") },
  "process.thread.count": { title: _("Threads") },
  "cpython.gc.collections": { title: _("Garbage collections per second") },
  "db.client.connections.usage": { title: _("Database connections, by state"), by: "state" },
  "kansoku.browser.lcp": { note: _("Largest Contentful Paint") },
  "kansoku.browser.inp": { note: _("Interaction to Next Paint") },
  "kansoku.browser.fcp": { note: _("First Contentful Paint") },
  "kansoku.browser.ttfb": { note: _("Time to First Byte") },
  "kansoku.browser.cls": { note: _("Cumulative Layout Shift") },
};
const KNOWN_ORDER = Object.keys(KNOWN_METRICS);

// What a chart shows, in words with its unit: its title and its value axis' label.
function chartWords(metric, currencies) {
  const words = unitWords(metric, currencies);
  const known = KNOWN_METRICS[metric.name] || {};
  const name = known.note ? `${metric.name} (${known.note})` : metric.name;
  switch (metric.instrument) {
    case "counter": {
      const counted = words || _("count");
      return { title: known.title || _("{name} per second", { name: metric.name }), axis: _("{unit}/s", { unit: counted }) };
    }
    case "gauge":
    case "up_down_counter":
      return { title: known.title || (words ? `${metric.name}, ${words}` : metric.name), axis: words || _("value") };
    case "histogram":
      return { title: words ? _("p50/p95/p99 of {name}, {unit}", { name, unit: words }) : _("p50/p95/p99 of {name}", { name }),
        axis: words || _("value") };
    default:  // exponential histograms and summaries: their measurements' rate
      return { title: _("{name}: measurements per second", { name: metric.name }), axis: _("measurements/s") };
  }
}

// The instruments (the API's `instrument`), in words.
const INSTRUMENTS = { counter: _("counter"), up_down_counter: _("up-down counter"), gauge: _("gauge"),
  histogram: _("histogram"), exponential_histogram: _("exponential histogram"), summary: _("summary") };

// How each instrument reads, said under the section headings once.
const INSTRUMENT_NOTE = _("Counters show their rate per second, gauges and up-down counters their value (averaged over each step), histograms their p50, p95 and p99. One colour per service; times in UTC.");

function metricFigure(metric) {
  const figure = el("div", {}, el("p", { class: "muted" }, `${metric.name}…`));
  const known = KNOWN_METRICS[metric.name] || {};
  // Money is charted per currency: amounts in different ones do not add up.
  const by = known.by || (metric.unit === "{currency_unit}" ? "currency" : undefined);
  api("/api/metrics/series", { name: metric.name, lookback, step: stepFor(lookback), by }, { whole: true })
    .then(({ data, start_ns: start, end_ns: end, step_ns: step }) => {
      const currencies = metric.unit === "{currency_unit}" ? [...new Set(data.map((p) => p.attribute).filter(Boolean))] : [];
      const { title, axis } = chartWords(metric, currencies);
      if (!data.length) {
        figure.replaceChildren(el("p", { class: "muted" }, _("{title}: nothing in this time range", { title })));
        return;
      }
      const chart = lineChart(data, title, { format: formatFor(metric, currencies), range: { start, end, step }, axis });
      chart.append(el("p", { class: "metric-name" }, metric.name, ` · ${INSTRUMENTS[metric.instrument] || metric.instrument}`));
      figure.replaceChildren(chart);
    })
    .catch((error) => figure.replaceChildren(el("p", { class: "error" }, `${metric.name}: ${error.message}`)));
  return figure;
}

pages.charts = async () => {
  const [names, funnel] = await Promise.all([api("/api/metrics", { lookback }), api("/api/funnel", { lookback })]);
  if (!names.length) return show(empty(_("No metrics in this time range yet.")));
  const top = Math.max(...funnel.map((s) => s.count), 1);
  const funnelView = el("section", { "aria-label": _("Funnel") }, el("h2", {}, _("Funnel")),
    el("ol", { class: "funnel" }, funnel.map((s) => el("li", {},
      el("span", { class: "label" }, s.step),
      el("span", { class: "bar", style: `width:${Math.max(1, 100 * s.count / top)}%` }),
      el("span", { class: "count" }, Math.round(s.count))))));
  const rank = (name) => { const i = KNOWN_ORDER.indexOf(name); return i < 0 ? KNOWN_ORDER.length : i; };
  const ordered = [...names].sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
  const grouped = METRIC_GROUPS.map((group) => ({ ...group, metrics: [] }));
  for (const metric of ordered) grouped.find((group) => group.match(metric.name)).metrics.push(metric);
  show(funnelView, el("p", { class: "muted" }, INSTRUMENT_NOTE),
    ...grouped.filter((group) => group.metrics.length).map((group) =>
      el("section", { "aria-label": group.name, class: "metric-group" }, el("h2", {}, group.name),
        el("p", { class: "muted" }, group.about),
        el("div", { class: "charts-grid" }, group.metrics.map(metricFigure)))));
};
