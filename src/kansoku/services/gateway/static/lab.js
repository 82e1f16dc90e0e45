// The lab page's script (written here; no build step). The page works without it: each
// form posts, and the page comes back with the result. With it, a button runs its
// operation with fetch and fills in its result box, timed as the browser saw it. rum.js
// gives this site's fetches a traceparent, so each run's trace starts in this browser
// and goes on through the gateway into the lab; the box links to it in the explorer.
"use strict";

(() => {
  const lab = document.querySelector("[data-lab]");
  if (!lab) return;
  const explorer = lab.dataset.explorerUrl || "";
  // The page's texts in the reader's language (lab.html), "{name}" filled in here.
  const texts = JSON.parse(lab.dataset.texts || "{}");
  const say = (key, values = {}) => (texts[key] || key).replace(
    /\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  const counted = (key, count) => say(`${key}_${count === 1 ? "one" : "other"}`, { count });
  const TRACE_ID = /^[0-9a-f]{32}$/;
  // The last answer of each box on this page: a problem and its fix, side by side.
  const latest = new Map();

  const field = (box, name) => box.querySelector(`[data-field="${name}"]`);
  const ms = (value) => `${value.toFixed(1)} ms`;

  /** The form's choices as the lab's parameters (empty ones left out: the defaults). */
  function parameters(form) {
    const values = {};
    for (const [name, value] of new FormData(form)) {
      if (name === "csrf_token" || typeof value !== "string" || value.trim() === "") continue;
      values[name] = name === "limit" || name === "product_id" ? Number(value) : value.trim();
    }
    return values;
  }

  function describe(answer, httpStatus) {
    if (answer.error) {
      const code = answer.error.sqlstate ? ` (SQLSTATE ${answer.error.sqlstate})` : "";
      return say("postgres_said", { message: answer.error.message }) + code;
    }
    if (!answer.data) {
      return answer.detail || answer.title || say("refused_detail", { status: httpStatus });
    }
    return counted("rows", answer.data.results.length);
  }

  function show(box, answer, httpStatus, elapsed) {
    const status = answer.data ? answer.status : "refused";
    box.classList.remove("success", "error", "refused", "running");
    box.classList.add(status);
    field(box, "status").textContent = `${say(status)} (HTTP ${httpStatus})`;
    field(box, "response-time").textContent = ms(elapsed);
    field(box, "execution-time").textContent = answer.data ? ms(answer.data.execution_time * 1000) : "—";
    field(box, "query-count").textContent = answer.data ? String(answer.data.query_count) : "—";
    field(box, "message").textContent = describe(answer, httpStatus);
    const trace = field(box, "trace");
    trace.replaceChildren();
    if (typeof answer.trace_id === "string" && TRACE_ID.test(answer.trace_id)) {
      const link = document.createElement("a");
      link.href = `${explorer}/traces/${answer.trace_id}`;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = say("trace_link");
      trace.append(link);
    }
  }

  /** Once a problem and its fix have both answered here: what the fix saved. */
  function compare(scenario) {
    const line = document.querySelector(`[data-comparison="${scenario}"]`);
    const problem = latest.get(scenario);
    const fixed = latest.get(`${scenario}-fixed`);
    if (!line || !problem || !fixed || !problem.data || !fixed.data) return;
    const before = problem.elapsed;
    const after = fixed.elapsed;
    const values = {
      problem_statements: counted("statements", problem.data.query_count),
      problem_time: ms(before),
      fix_statements: counted("statements", fixed.data.query_count),
      fix_time: ms(after),
      factor: after > 0 ? (before / after).toFixed(1) : "",
    };
    line.textContent = say(after > 0 && before > after ? "compare_faster" : "compare", values);
  }

  async function run(form, button) {
    const key = button.dataset.result;
    const box = document.querySelector(`[data-testid="result-${key}"]`);
    if (!box) return;
    const token = form.querySelector('input[name="csrf_token"]')?.value || "";
    box.classList.remove("success", "error", "refused");
    box.classList.add("running");
    field(box, "status").textContent = say("running");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    const started = performance.now();
    try {
      const response = await fetch(button.dataset.run, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": token },
        body: JSON.stringify(parameters(form)),
      });
      const elapsed = performance.now() - started;
      const isJson = (response.headers.get("Content-Type") || "").includes("json");
      const answer = isJson ? await response.json().catch(() => ({})) : {};
      show(box, answer, response.status, elapsed);
      latest.set(key, { data: answer.data, elapsed });
      compare(form.dataset.scenario);
    } catch {
      box.classList.remove("running");
      box.classList.add("refused");
      field(box, "status").textContent = say("no_answer");
      field(box, "message").textContent = say("unreachable");
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  for (const form of document.querySelectorAll("form.lab-form")) {
    form.addEventListener("submit", (event) => {
      const button = event.submitter;
      if (!(button instanceof HTMLButtonElement) || !button.dataset.run) return;
      event.preventDefault();
      run(form, button);
    });
  }
})();
