// The Logs page, and the log tables of a trace and a span.
"use strict";

pages.logs = async () => {
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
};

function logTable(logs, title) {
  if (!logs.length) return title ? el("section", {}, el("h2", {}, title), empty(_("None."))) : empty(_("No log records match."));
  const table = dataTable("logs",
    el("thead", {}, el("tr", {}, ...[_("Time (UTC)"), _("Service"), _("Level"), _("Message"), _("Trace")].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, logs.map((log) => el("tr", { class: /ERROR|CRITICAL/.test(log.severity || "") ? "bad" : "" },
      el("td", {}, when(log.time_ns)), el("td", {}, log.service), el("td", {}, log.severity || ""),
      el("td", {}, log.body), el("td", {}, log.trace_id ? link(`/traces/${log.trace_id}`, log.trace_id.slice(0, 8)) : "")))));
  return title ? el("section", {}, el("h2", {}, title), table) : table;
}
