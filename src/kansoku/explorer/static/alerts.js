// The Alerts page (docs/alerts.md).
"use strict";

const stateLabel = { firing: _("Firing"), pending: _("Pending"), resolved: _("Resolved"), inactive: _("Cleared") };

function alertLinks(alert) {
  const names = { service: alert.service, traces: _("traces"), example_trace: _("example trace"), logs: _("error logs"), slos: _("SLOs") };
  return Object.entries(alert.links || {}).flatMap(([name, path], index) =>
    [index ? " · " : "", link(path, names[name] || name)]);
}

function alertCard(alert) {
  const extra = Object.entries(alert.labels).filter(([key]) => !["service", "severity"].includes(key))
    .map(([key, value]) => `${key}=${value}`).join(" · ");
  const state = stateLabel[alert.state] || alert.state;
  return el("li", {}, el("article", { class: `alert ${alert.state} ${alert.severity}`, "aria-label": `${alert.name} ${state}` },
    el("h2", {}, el("span", { class: "state" }, state), " ",
      el("span", { class: "name" }, alert.name), " ",
      alert.service ? link(withLookback(`/services/${encodeURIComponent(alert.service)}`), alert.service) : null,
      extra ? el("span", { class: "muted" }, ` · ${extra}`) : null),
    el("p", { class: "summary" }, alert.summary),
    // Why it resolved: a value back within its threshold is a fix; no traffic is not.
    alert.resolution ? el("p", { class: "resolution" }, el("strong", {}, _("Resolved:")), " ", alert.resolution) : null,
    el("p", { class: "muted" }, _("{severity} · value {value}", { severity: SEVERITIES[alert.severity] || alert.severity, value: alert.value_text ?? alert.value ?? "–" }),
      alert.threshold_text ? [" ", _("(threshold {threshold})", { threshold: alert.threshold_text })] : "",
      " · ", _("{state} since {time} UTC", { state, time: when(alert.since_ns) })),
    el("p", {}, alertLinks(alert))));
}

const ruleStateLabel = { firing: _("Firing"), pending: _("Pending"), inactive: _("Inactive") };
// Where the rules come from: the user's file by its path, or kansoku's own defaults.
const rulesSource = (rules) => (rules.packaged ? _("the packaged defaults") : rules.source);
// The severities of the default rules, in words; a rules file's own are shown as written.
const SEVERITIES = { critical: _("critical"), warning: _("warning"), info: _("info") };

// Every rule in use, with its state now, its condition in words and where it comes from.
function rulesTable(rules) {
  const alertsOf = (rule) => [rule.firing > 1 || (rule.firing && rule.pending) ? _("{n} firing", { n: rule.firing }) : "",
    rule.pending && (rule.firing || rule.pending > 1) ? _("{n} pending", { n: rule.pending }) : ""].filter(Boolean).map((text) => ` · ${text}`).join("");
  return dataTable("rules",
    el("thead", {}, el("tr", {}, ...[_("Rule"), _("State"), _("Fires when"), _("For"), _("Severity"), _("Defined in")].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, rules.overview.map((rule) => el("tr", { class: rule.state === "firing" ? "bad" : "", "aria-label": _("Rule {name} {state}", { name: rule.name, state: ruleStateLabel[rule.state] || rule.state }) },
      el("th", { scope: "row" }, rule.name),
      el("td", { class: `state ${rule.state}` }, `${ruleStateLabel[rule.state] || rule.state}${alertsOf(rule)}`),
      el("td", {}, rule.condition,
        rule.error ? el("span", { class: "error" }, " ", _("Its last evaluation failed: {error}", { error: rule.error })) : null),
      el("td", { class: "nowrap" }, rule.for_seconds ? lengthOfTime(rule.for_seconds) : _("at once")),
      el("td", {}, SEVERITIES[rule.severity] || rule.severity),
      el("td", {}, rules.packaged ? rulesSource(rules) : el("code", {}, rule.source))))));
}

pages.alerts = async () => {
  const [alerts, history, rules] = await Promise.all([api("/api/alerts"),
    api("/api/alerts/history", { lookback, limit: 200 }), api("/api/alerts/rules")]);
  const active = alerts.filter((a) => a.state !== "resolved");
  const resolved = alerts.filter((a) => a.state === "resolved");
  const problems = rules.load_error ? [el("p", { class: "error", role: "alert" },
    _("The rules file has a mistake, so the rules before it stay in use: {error}", { error: rules.load_error }))] : [];
  const historyTable = history.length ? dataTable("history",
    el("thead", {}, el("tr", {}, ...[_("Time (UTC)"), _("Alert"), _("Labels"), _("Change"), _("Value"), _("Why")].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, history.map((h) => el("tr", { class: h.to_state === "firing" ? "bad" : "" },
      el("td", {}, when(h.time_ns)), el("td", {}, h.rule),
      el("td", {}, Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(" ")),
      el("td", {}, `${stateLabel[h.from_state] || h.from_state} → ${stateLabel[h.to_state] || h.to_state}`),
      el("td", {}, h.value === null ? "–" : +h.value.toPrecision(3)),
      el("td", { class: "why" }, h.reason || "")))))
    : empty(_("No alert changed state in this time range."));
  show(...problems,
    el("p", { class: "muted" }, ngettext("{n} rule from {source}, evaluated every few seconds; each is listed under Rules with its state.",
      "{n} rules from {source}, evaluated every few seconds; each is listed under Rules with its state.", rules.overview.length,
      { source: rulesSource(rules) }), " ", formatNodes(_("The same alerts are {api}."), { api: el("code", {}, "GET /api/alerts") })),
    el("h2", {}, _("Firing and pending")),
    active.length ? el("ol", { class: "alerts" }, active.map(alertCard)) : empty(_("Nothing is firing. All quiet.")),
    ...(resolved.length ? [el("h2", {}, _("Resolved lately")), el("ol", { class: "alerts" }, resolved.map(alertCard))] : []),
    el("h2", {}, _("Rules")), rules.overview.length ? rulesTable(rules) : empty(_("The rules file has no rules.")),
    el("h2", {}, _("History")), historyTable);
};
