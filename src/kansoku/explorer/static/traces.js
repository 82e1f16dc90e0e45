// The traces list and one trace's waterfall.
"use strict";

pages.traces = () => searchForm("trace-search", searchTraces);

pages.trace = async () => {
  const traceId = document.body.dataset.traceId;
  // The trace's problems are extra: the waterfall shows without them if they fail.
  const [{ spans, logs, warnings }, found] = await Promise.all([api(`/api/spans/${traceId}`),
    api("/api/problems", { trace_id: traceId }).catch(() => [])]);
  show(...(warnings || []).map((warning) => el("p", { class: "warning", role: "note" }, warning)),
    ...(found.length ? [traceProblems(found)] : []), waterfall(spans, logs, found),
    logTable(logs, _("Logs of this trace")));
};

async function searchTraces(data) {
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
    // Unless all are asked for: not the storefront's pictures (a trace each, twenty to a
    // product list), nor one-span traces (a service fetching identity's signing keys).
    exclude: data.all ? [] : IMAGE_OPERATIONS, minSpans: data.all ? 1 : 2 });
  if (!traces.length) return show(empty(_("No trace matches. Widen the time range or the search.")));
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
    el("span", { class: "muted" }, " ", [ms(t.duration), ngettext("{n} span", "{n} spans", t.count),
      ngettext("{n} service", "{n} services", t.services.size),
      ...(t.errors ? [ngettext("{n} error", "{n} errors", t.errors)] : []), when(t.start * 1000)].join(" · ")),
    // A trace too big for the list's answer came cut short: it says how much.
    t.warnings.map((warning) => el("span", { class: "warning" }, warning))))));
}

// The operations of the storefront's pictures (see `exclude` in GET /api/traces).
const IMAGE_OPERATIONS = ["GET */image", "GET */thumbnail"];

// Which instrumentation made a span (attribute telemetry.source, set by the explorer's
// intakes): its name for a reader, and what to know about what it records.
const SOURCES = {
  otel: { name: "OpenTelemetry" },
  xray: { name: "AWS X-Ray SDK", note: _("The X-Ray SDK names a request after its URL path, not its route template: /products/7 and /products/8 are two names.") },
  newrelic: { name: _("New Relic agent") },
};
const sourceOf = (span) => (span.attributes || {})["telemetry.source"] || "otel";

// A span's kind and status (OpenTelemetry's, as the API gives them), in words.
const SPAN_KINDS = { server: _("server"), client: _("client"), internal: _("internal"),
  producer: _("producer"), consumer: _("consumer"), unspecified: _("unspecified") };
const SPAN_STATUSES = { ok: _("ok"), error: _("error"), unset: _("unset") };

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
  // Spans made by different instrumentations: each span says which (one alone: said once).
  const sources = {};
  for (const s of spans) sources[sourceOf(s)] = (sources[sourceOf(s)] || 0) + 1;
  const mixed = Object.keys(sources).length > 1;
  const list = el("ol", { class: "waterfall", "aria-label": _("Spans, as a tree") });
  const logsBySpan = {};
  for (const log of logs) (logsBySpan[log.span_id] ||= []).push(log);
  const add = (span, depth) => {
    const marked = problemsOf[span.span_id] || [];
    const details = el("div", { class: "details", hidden: true },
      marked.map((problem) => el("p", { class: "problem-note" }, el("strong", {}, `⚠ ${problem.title}: `),
        problem.explanation, " ", el("strong", {}, _("Fix:")), " ", problem.fix)),
      spanDetails(span, logsBySpan[span.span_id] || []));
    const row = el("li", { class: `span ${span.status === "error" ? "bad" : ""} ${marked.length ? "problem" : ""}` },
      el("button", { type: "button", class: "span-row", "aria-expanded": "false",
        onclick: (event) => {
          details.hidden = !details.hidden;
          event.currentTarget.setAttribute("aria-expanded", String(!details.hidden));
        } },
      el("span", { class: "name", style: `padding-left:${depth * 14}px` },
        el("span", { class: "svc", style: `background:${serviceColor(span.service)}` }, span.service),
        mixed ? el("span", { class: `source ${sourceOf(span)}` }, (SOURCES[sourceOf(span)] || { name: sourceOf(span) }).name) : null,
        ` ${span.name}`,
        marked.length ? el("span", { class: "flag", title: marked.map((p) => p.title).join(", ") },
          ` ⚠ ${marked.map((p) => p.title).join(", ")}`) : null),
      el("span", { class: "lane" }, el("span", { class: "bar",
        style: `background:${serviceColor(span.service)};left:${100 * (span.start_ns - start) / total}%;width:${Math.max(0.3, 100 * span.duration_ns / total)}%` })),
      el("span", { class: "dur" }, ms(span.duration_ns / 1e6))), details);
    list.append(row);
    for (const child of (children[span.span_id] || []).sort((a, b) => a.start_ns - b.start_ns)) add(child, depth + 1);
  };
  roots.sort((a, b) => a.start_ns - b.start_ns).forEach((root) => add(root, 0));
  // Texts are filled with texts translated beforehand: Babel does not look for a text
  // inside another's call.
  const counted = { spans: ngettext("{n} span", "{n} spans", spans.length),
    services: ngettext("{n} service", "{n} services", services.length), duration: ms(total / 1e6) };
  const made = Object.entries(sources).map(([source, count]) => {
    const spanCount = ngettext("{n} span", "{n} spans", count);
    return _("{source} ({spans})", { source: (SOURCES[source] || { name: source }).name, spans: spanCount });
  });
  return el("section", { "aria-label": _("Waterfall") },
    el("p", { class: "muted" }, _("{spans} in {services}, {duration}. Click a span for its attributes, events and logs.", counted)),
    el("p", { class: "muted sources" }, _("Made by {sources}", { sources: made.join(", ") })),
    list);
}

function spanDetails(span, logs) {
  const rows = Object.entries(span.attributes).map(([key, value]) => el("tr", {},
    el("th", { scope: "row" }, key), el("td", {}, typeof value === "string" ? value : JSON.stringify(value))));
  const statusWord = SPAN_STATUSES[span.status] || span.status;
  const status = span.status_message ? `${statusWord}: ${span.status_message}` : statusWord;
  const parts = [el("p", {}, _("{kind} span · status {status} · started {time} UTC", {
    kind: SPAN_KINDS[span.kind] || span.kind, status, time: when(span.start_ns) })),
    ...(span.warnings || []).map((warning) => el("p", { class: "warning" }, warning))];
  const source = SOURCES[sourceOf(span)];
  if (source && source.note) parts.push(el("p", { class: "muted" }, `${source.name}: ${source.note}`));
  if (span.db_statement) parts.push(el("pre", { class: "sql" }, span.db_statement));
  parts.push(el("table", { class: "attributes" }, el("tbody", {}, rows)));
  for (const event of span.events) {
    const attrs = event.attributes;
    parts.push(el("div", { class: event.name === "exception" ? "event bad" : "event" },
      el("strong", {}, event.name), " ", attrs["exception.type"] || "", " ", attrs["exception.message"] || "",
      attrs["exception.stacktrace"] ? el("pre", {}, attrs["exception.stacktrace"]) : null));
  }
  if (logs.length) parts.push(logTable(logs, _("Logs of this span")));
  return parts;
}
