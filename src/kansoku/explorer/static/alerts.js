// The Alerts page (docs/alerts.md).
"use strict";

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
