// The Problems page, and the problems shown on a trace.
"use strict";

pages.problems = () => searchForm("problem-search", async (fields) => {
  const found = await api("/api/problems", { ...fields, lookback });
  show(found.length ? el("ol", { class: "problems" }, found.map(problemCard))
    : empty(_("No problems detected in this time range. Good news — or try the lab's scenarios.")));
});

// What a problem is about: its statement (SQL) or its route.
function problemTarget(problem) {
  return problem.statement ? el("pre", { class: "sql" }, problem.statement)
    : el("p", {}, el("span", { class: "muted" }, _("Route")), " ", el("code", {}, problem.route || ""));
}

const problemStateLabel = { ongoing: _("Ongoing"), cleared: _("Cleared") };

function problemCard(problem) {
  const times = problem.occurrences === 1 ? _("once") : ngettext("{n} time", "{n} times", problem.occurrences);
  // The resource kinds are about a process, not one operation or statement.
  const target = problem.statement || problem.route ? problemTarget(problem) : null;
  return el("li", {}, el("article", { class: `problem ${problem.kind} ${problem.state}`, "aria-label": `${problem.title}: ${problem.service} ${problem.operation}` },
    el("h2", {}, el("span", { class: "state" }, problemStateLabel[problem.state] || problem.state), " ",
      el("span", { class: "kind" }, problem.title), " ",
      link(withLookback(`/services/${encodeURIComponent(problem.service)}`), problem.service), " · ",
      el("span", { class: "operation" }, problem.operation)),
    el("p", { class: "headline" }, el("strong", {}, problem.headline)),
    target,
    el("p", { class: "explanation" }, problem.explanation),
    el("p", { class: "fix" }, el("strong", {}, _("Fix:")), " ", problem.fix),
    el("p", { class: "clears" }, el("strong", {}, problem.state === "cleared" ? _("Cleared.") : _("Ongoing.")), " ", problem.clears_when),
    el("p", { class: "muted" }, _("Seen {times} · {impact} · first {first} · last {last}", {
      times, impact: problem.impact_text, first: when(problem.first_seen_ns), last: when(problem.last_seen_ns) })),
    el("p", {}, problem.example_trace_id ? [link(`/traces/${problem.example_trace_id}`, _("Example trace")), " · "]
      : problem.details.latest_trace_id ? [link(`/traces/${problem.details.latest_trace_id}`, _("a recent trace of {service}", { service: problem.service })), " · "] : null,
      link(withLookback(`/problems?service=${encodeURIComponent(problem.service)}`), _("all problems of {service}", { service: problem.service })))));
}

function traceProblems(found) {
  return el("section", { class: "trace-problems", "aria-label": _("Problems in this trace") },
    el("h2", {}, ngettext("A problem in this trace", "{n} problems in this trace", found.length)),
    el("ul", {}, found.map((problem) => el("li", { class: "problem" },
      el("strong", {}, `${problem.title}: `), problem.explanation, " ",
      el("span", { class: "fix" }, el("strong", {}, _("Fix:")), " ", problem.fix), " ",
      el("span", { class: "muted" }, "(", ngettext("{n} span marked ⚠ below", "{n} spans marked ⚠ below", problem.span_ids.length), " · "),
      link(withLookback(`/problems?kind=${problem.kind}&service=${encodeURIComponent(problem.service)}`), _("every occurrence")),
      el("span", { class: "muted" }, ")")))));
}
