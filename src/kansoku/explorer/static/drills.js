// The Drills page: the drills there are, and the one in progress — its question, the
// hints taken, an answer form, the answers given and the score so far. Starting a drill,
// checking a fix and ending it act on the stack: the page gives those commands.
"use strict";

// The cause categories an answer names (the API's values), in words.
const CAUSES = { errors: _("errors"), latency: _("latency"), resources: _("resources"),
  messaging: _("messaging"), browser: _("browser"), outage: _("outage") };
// How an answer compared with the truth (the API's `outcome`), in words.
const OUTCOMES = { right: _("right"), "wrong-service": _("wrong service"), "wrong-cause": _("wrong cause"),
  "no-evidence": _("no evidence"), "false-alarm": _("false alarm"), "missed-fault": _("missed fault") };

// A JSON request to the API: its `data`, or an Error with the problem's detail.
async function send(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body ?? {}) });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.detail || _("{status} from {path}", { status: response.status, path }));
  return answer.data;
}

const command = (text) => el("code", { class: "command" }, text);
const seconds = (value) => (value === null || value === undefined ? "–" : lengthOfTime(value));

function scoreTable(score) {
  const rows = [[_("Points"), score.points], [_("Time to detect"), seconds(score.detect_seconds)],
    [_("Time to diagnose"), seconds(score.diagnose_seconds)], [_("Time to mitigate"), seconds(score.mitigate_seconds)],
    [_("Hints"), _("−{n} points", { n: score.hint_points })], [_("Wrong tries"), score.wrong_tries],
    [_("False alarms"), score.false_alarms], ...(score.over_time ? [[_("Over time"), _("yes")]] : [])];
  return dataTable("score", el("tbody", {}, rows.map(([what, value]) =>
    el("tr", {}, el("th", { scope: "row" }, what), el("td", { class: "num" }, value)))));
}

// What the last answer given on this page got: said again under the form once the page
// has redrawn with it.
let lastAnswer = null;

function answerForm(current, done) {
  const status = el("p", { class: `answer-status ${lastAnswer ? lastAnswer.className : ""}`, role: "status" },
    lastAnswer ? lastAnswer.text : null);
  const choose = (name, label, values, words = {}) => el("label", {}, label,
    el("select", { name, required: true }, el("option", { value: "" }, _("choose…")),
      values.map((value) => el("option", { value }, words[value] || value))));
  const form = el("form", { class: "search answer", "aria-label": _("Your answer") },
    choose("service", _("Service at fault"), current.services),
    choose("cause", _("Cause"), current.causes, CAUSES),
    el("label", {}, _("Evidence: a trace id"), el("input", { name: "trace_id", required: true, size: 34,
      pattern: "[0-9a-fA-F]{32}", placeholder: _("32 hex digits"), autocomplete: "off" })),
    el("button", { type: "submit" }, _("Answer")),
    el("button", { type: "button", class: "secondary", onclick: () => submit({ nothing_wrong: true }) }, _("Nothing is wrong")));
  async function submit(body) {
    try {
      const result = await send("/api/drills/current/answer", body);
      lastAnswer = { className: result.right ? "good" : "error", text: `${OUTCOMES[result.outcome] || result.outcome}: ${result.message}` };
      await done();
    } catch (error) {
      status.className = "answer-status error";
      status.textContent = error.message;
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    submit({ service: data.service, cause: data.cause, trace_id: data.trace_id.trim() });
  });
  return [form, status];
}

function currentView(current, refresh) {
  const hintButton = current.hints_left
    ? el("button", { type: "button", onclick: async () => {
      try { await send("/api/drills/current/hint"); await refresh(); } catch (error) { fail(error); }
    } }, _("Take a hint (−{n} points)", { n: current.next_hint_cost }))
    : el("p", { class: "muted" }, _("No hints left."));
  const answers = current.answers.length ? el("ol", { class: "answers" }, current.answers.map((given) =>
    el("li", { class: given.outcome === "right" ? "good" : "bad" },
      el("strong", {}, OUTCOMES[given.outcome] || given.outcome), " ",
      el("span", { class: "muted" }, given.service ? `${given.service}, ${CAUSES[given.cause] || given.cause}` : _("nothing is wrong")),
      given.trace_id ? [" · ", link(`/traces/${given.trace_id}`, given.trace_id.slice(0, 8))] : null,
      ` — ${given.message}`))) : null;
  return el("section", { class: "drill current", "aria-label": _("Drill in progress") },
    el("h2", {}, current.title, " ", el("span", { class: "muted" }, `(${current.id})`)),
    el("p", { class: "question" }, current.question),
    el("p", { class: "muted" }, _("{elapsed} of {limit} · started by {user}", {
      elapsed: lengthOfTime(current.elapsed_seconds), limit: lengthOfTime(current.time_limit_seconds), user: current.user })),
    el("h3", {}, _("Hints")),
    current.hints.length ? el("ol", { class: "hints" }, current.hints.map((hint) => el("li", {}, hint)))
      : el("p", { class: "muted" }, _("No hint taken yet.")),
    hintButton,
    el("h3", {}, _("Answer")),
    current.answered ? el("p", { class: "good" }, _("Answered right. Now undo the fault, then check your fix:"), " ",
      command(current.commands.fix)) : answerForm(current, refresh),
    answers,
    el("h3", {}, _("Score so far")), scoreTable(current.score),
    el("p", { class: "muted" }, formatNodes(_("Checking a fix and ending the drill act on the stack; run them on the command line: {fix} and {end}."),
      { fix: command(current.commands.fix), end: command(current.commands.end) })));
}

// The catalogue as a list, not a table: a question reads on a phone as on a laptop.
function catalogue(drills) {
  return el("ol", { class: "drills" }, drills.map((drill) => el("li", {},
    el("h3", {}, drill.title, " ", el("span", { class: "muted" }, `(${drill.id})`)),
    el("p", {}, drill.question),
    el("p", { class: "muted" }, formatNodes(_("Time limit {time} · start it with {command}"), {
      time: lengthOfTime(drill.time_limit_seconds), command: command(drill.start_command) })))));
}

pages.drills = async () => {
  const draw = async () => {
    const [drills, current] = await Promise.all([api("/api/drills"), api("/api/drills/current").catch((error) => error)]);
    const running = current instanceof Error
      ? el("p", { class: "error" }, current.message)
      : current ? currentView(current, draw)
        : el("section", { "aria-label": _("Drill in progress") }, el("h2", {}, _("No drill in progress")),
          el("p", {}, formatNodes(_("Start one on the command line with {command}; its question, hints and answer form then appear here."),
            { command: command("kansoku drill start NAME") })));
    show(el("p", { class: "muted" }, _("A drill breaks the shop on purpose while a load runs; find the service at fault and the cause with the explorer, answer with a trace that shows it, then fix it. Hints cost points, and so do wrong answers.")),
      running, el("h2", {}, _("All drills")), catalogue(drills));
  };
  await draw();
};
