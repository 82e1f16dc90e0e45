// The Logs page, and the log tables of a trace and a span.
"use strict";

pages.logs = () => searchForm("log-search", async (fields) => {
  show(logTable(await api("/api/logs", { ...fields, lookback, limit: 200 }), null));
});

function logTable(logs, title) {
  if (!logs.length) return title ? el("section", {}, el("h2", {}, title), empty(_("None."))) : empty(_("No log records match."));
  const table = dataTable("logs",
    el("thead", {}, el("tr", {}, ...[_("Time (UTC)"), _("Service"), _("Level"), _("Message"), _("Trace")].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, logs.map((log) => el("tr", { class: /ERROR|CRITICAL/.test(log.severity || "") ? "bad" : "" },
      el("td", {}, when(log.time_ns)), el("td", {}, log.service), el("td", {}, log.severity || ""),
      el("td", {}, log.body), el("td", {}, log.trace_id ? link(`/traces/${log.trace_id}`, log.trace_id.slice(0, 8)) : "")))));
  return title ? el("section", {}, el("h2", {}, title), table) : table;
}
