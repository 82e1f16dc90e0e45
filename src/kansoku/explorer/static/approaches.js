// The Approaches page: OpenTelemetry, AWS X-Ray and New Relic side by side — as measured
// by benchmarks/approaches.py, as they sent what this explorer holds, and one checkout
// each (docs/approaches.md).
"use strict";

// Each approach (KANSOKU_INSTRUMENTATION, and telemetry.source on its spans) for a reader.
const APPROACH_NAMES = {
  otel: "OpenTelemetry",
  xray: _("AWS X-Ray SDK + CloudWatch EMF"),
  newrelic: _("New Relic agent"),
  none: _("No instrumentation"),
};
const approachName = (approach) => APPROACH_NAMES[approach] || approach;

// What a span stands for (the API's `role`), whatever the approach called it.
const ROLES = {
  request: _("requests handled"),
  call: _("calls to other services"),
  sql: _("SQL statements"),
  cache: _("Valkey commands"),
  publish: _("events published"),
  consume: _("events handled"),
  internal: _("internal steps (functions, middleware)"),
};
const ROLE_ORDER = Object.keys(ROLES);

// The trade-offs, in plain words: what each approach costs and gives.
const TRADE_OFFS = {
  otel: _("One open standard for traces, metrics and logs, which any backend reads. kansoku wires it itself: route templates, request ids, the user carried through baggage, NATS events inside the trace. The most code to own, and it sees the most."),
  xray: _("AWS's own SDK: little code, but it sees no route template and no Valkey, NATS events only through kansoku's own event code (their consumers, not the relay's publishes), records each SQL statement twice, and sends no logs; metrics go as CloudWatch EMF. The SDK is in maintenance mode and AWS points to OpenTelemetry (ADOT)."),
  newrelic: _("An agent that hooks the libraries by itself: the least code of the three, and it sees SQL and Valkey. But it records a span for every middleware, so a checkout has several times the spans and costs more CPU; it harvests every 5 s rather than streaming, and sees NATS events only through kansoku's own event code (their consumers, not the relay's publishes)."),
  none: _("Nothing to pay and nothing to see: the baseline the others are measured against."),
};

const figure = (value, digits = 1) => value === null || value === undefined ? "–" : value.toFixed(digits);
const shareText = (share) => share === null || share === undefined ? "–" : `${Math.round(100 * share)} %`;
// "orders publish" (a `service role` pair of the benchmark) in words.
function pairText(pair) {
  const [service, role] = pair.split(" ");
  return `${service}: ${ROLES[role] || role}`;
}

// A table of spans by service and role, one column per approach; a cell an approach
// leaves empty while another has spans is marked.
function rolesTable(label, columns, rows, head = null) {
  // A row per (service, role), as JSON: a service's name may hold any character.
  const keyOf = (row) => JSON.stringify([row.service, row.role]);
  const keys = [...new Set(rows.map(keyOf))].map((key) => JSON.parse(key)).sort(([sa, ra], [sb, rb]) =>
    sa.localeCompare(sb) || ROLE_ORDER.indexOf(ra) - ROLE_ORDER.indexOf(rb));
  const count = ([service, role], column) => rows.filter((row) => row.service === service && row.role === role)
    .reduce((total, row) => total + (row.counts[column] || 0), 0);
  return dataTable("approach-roles",
    el("caption", {}, label),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, _("Service")), el("th", { scope: "col" }, _("Spans of")),
      ...columns.map((column) => el("th", { scope: "col" }, approachName(column)))),
    head),
    el("tbody", {}, keys.map(([service, role]) => {
      const counts = columns.map((column) => count([service, role], column));
      const anyone = counts.some((n) => n > 0);
      return el("tr", {}, el("th", { scope: "row" }, service), el("td", {}, ROLES[role] || role),
        ...counts.map((n) => el("td", { class: n === 0 && anyone ? "bad" : "" }, n === 0 && anyone ? _("none") : number(n))));
    })));
}

function measuredSection(measured) {
  if (!measured) {
    return [el("h2", {}, _("Measured side by side")),
      empty(_("Not measured on this installation yet: run python benchmarks/approaches.py --write, then reload."))];
  }
  // The day too, always: figures from another day are not today's.
  const at = new Date(Date.parse(measured.measured_at)).toISOString();
  const machine = measured.machine;
  const about = _("Measured {date} (UTC) on {cpu}, {cores} cores, {memory} GiB, {system}; load average before {before}, after {after}. {rounds} rounds of {seconds} s per approach, {customers} customers each, alternating.", {
    date: `${at.slice(0, 10)} ${at.slice(11, 16)}`, cpu: machine.cpu, cores: machine.cores, memory: number(machine.memory_gib), system: machine.system,
    before: measured.load_average_before.map((x) => x.toFixed(2)).join(", "),
    after: measured.load_average_after.map((x) => x.toFixed(2)).join(", "),
    rounds: measured.rounds, seconds: measured.seconds_per_round, customers: measured.concurrency });
  const headings = [_("Approach"), _("Paid checkouts/s"), _("Of none"), _("CPU per checkout"), _("Memory per service (PSS)"),
    _("Added latency p50 / p99"), _("Spans per checkout"), _("Signal matrix filled"), _("Early requests untraced"), _("Lines of wiring code")];
  const table = dataTable("approaches",
    el("thead", {}, el("tr", {}, headings.map((heading) => el("th", { scope: "col" }, heading)))),
    el("tbody", {}, measured.approaches.map((a) => el("tr", {},
      el("th", { scope: "row" }, approachName(a.approach)),
      el("td", { title: a.rounds.map((r) => r.toFixed(1)).join(", ") }, figure(a.checkouts_per_second)),
      el("td", {}, figure(a.of_none, 2)),
      el("td", {}, ms(a.cpu_ms_per_checkout)),
      el("td", {}, `${figure(a.memory_mib_per_service, 0)} MiB`),
      el("td", {}, a.approach === "none" ? "–" : `+${ms(a.added_p50_ms)} / +${ms(a.added_p99_ms)}`),
      el("td", {}, a.spans_per_checkout === null ? "–" : number(a.spans_per_checkout)),
      el("td", { title: a.matrix_share ? _("traces {traces}, metrics {metrics}, logs {logs}", {
        traces: shareText(a.matrix_share.traces), metrics: shareText(a.matrix_share.metrics), logs: shareText(a.matrix_share.logs) }) : null },
      a.matrix_share ? shareText(a.matrix_share.all) : "–"),
      el("td", {}, a.early_untraced === null ? "–" : _("{n} of {count}", { n: a.early_untraced, count: a.early_requests })),
      el("td", { title: Object.entries(a.wiring_modules).map(([path, lines]) => `${path} ${lines}`).join("\n") }, number(a.wiring_lines))))));
  const instrumented = measured.approaches.filter((a) => a.approach !== "none");
  const differences = el("ul", { class: "approach-differences" }, instrumented.map((a) => el("li", {},
    el("strong", {}, approachName(a.approach)), " ",
    a.sees_alone.length ? _("sees what no other does: {pairs}.", { pairs: a.sees_alone.map(pairText).join(", ") }) : _("sees nothing the others do not."),
    " ", a.misses.length ? _("Misses: {pairs}.", { pairs: a.misses.map(pairText).join(", ") }) : "")));
  return [el("h2", {}, _("Measured side by side")), el("p", { class: "muted" }, about), table,
    el("p", { class: "muted" }, _("A checkout is one customer logging in, adding a product to the cart, placing the order and paying it. CPU and memory are the eight services' a checkout passes through; the signal matrix is tests/stack/signal_matrix.py, each approach's names mapped to its attributes.")),
    el("h3", {}, _("What each sees that the others miss, in one checkout")), differences,
    rolesTable(_("One checkout's spans by service"), instrumented.map((a) => a.approach), measured.checkout)];
}

function sourcesSection(sources) {
  const table = sources.length ? dataTable("approach-sources",
    el("thead", {}, el("tr", {}, [_("Made by"), _("Spans"), _("Traces"), _("Services")].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, sources.map((s) => el("tr", {}, el("th", { scope: "row" }, approachName(s.source)),
      el("td", {}, number(s.spans)), el("td", {}, number(s.traces)),
      el("td", {}, s.services.flatMap((service, index) => [index ? ", " : "", link(withLookback(`/services/${encodeURIComponent(service)}`), service)]))))))
    : empty(_("No spans in this time range."));
  return [el("h2", {}, _("The spans here, by the approach that made them")), table];
}

function checkoutsSection(checkouts) {
  if (!checkouts.length) {
    return [el("h2", {}, _("The latest checkout of each approach")),
      empty(_("No checkout in this time range. Place an order in the shop (or run kansoku load) with services on the approaches to compare, then come back."))];
  }
  const columns = checkouts.map((c) => c.source);
  const head = el("tr", {}, el("th", { scope: "row" }, _("Trace")), el("td", {}),
    checkouts.map((c) => el("td", {}, link(`/traces/${c.trace_id}`, c.operation), el("br"),
      el("span", { class: "muted" }, [ngettext("{n} span", "{n} spans", c.spans), ms(c.duration_ns / 1e6), when(c.start_ns)].join(" · ")))));
  return [el("h2", {}, _("The latest checkout of each approach")),
    el("p", { class: "muted" }, _("The newest trace of each approach in which the gateway took an order. Through the API, paying it is a trace of its own; the storefront's checkout form does both in one.")),
    rolesTable(_("The latest checkouts' spans by service"), columns, checkouts.flatMap((c) => c.roles), head)];
}

pages.approaches = async () => {
  const { measured, sources, checkouts } = await api("/api/approaches", { lookback });
  const tradeOffs = el("dl", { class: "trade-offs" }, Object.entries(TRADE_OFFS).flatMap(([approach, text]) =>
    [el("dt", {}, approachName(approach)), el("dd", {}, text)]));
  show(el("p", { class: "muted" }, _("Each service can run under OpenTelemetry, the AWS X-Ray SDK, the New Relic agent or nothing (KANSOKU_INSTRUMENTATION, or KANSOKU_<SERVICE>_INSTRUMENTATION for one). This page puts them side by side.")),
    ...measuredSection(measured), ...checkoutsSection(checkouts), ...sourcesSection(sources),
    el("h2", {}, _("Trade-offs in plain words")), tradeOffs);
};
