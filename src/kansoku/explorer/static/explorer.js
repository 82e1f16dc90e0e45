// The explorer's pages: each fetches the JSON API and draws tables and SVG charts.
// Data is always inserted as text (never as HTML): span names and attributes come from
// whoever sent them.
"use strict";

// --- Texts in the reader's language ---------------------------------------------------
// Every text a person reads is written here in English inside `_("…")` or
// `ngettext("…", "…", n)`, with {name} placeholders `format` fills. scripts/messages
// finds them (Babel) for the catalogs; the page carries their translations into its
// language (pages.py: a JSON object in <script id="messages">, empty in English).
const LANG = document.documentElement.lang || "en";
const MESSAGES = JSON.parse(document.getElementById("messages")?.textContent || "{}");

// `text` with each {name} replaced by values[name] (left as it is when not given).
function format(text, values = {}) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

function _(text, values) {
  const translated = MESSAGES[text];
  return format(typeof translated === "string" && translated ? translated : text, values);
}

// `text` (already translated) as pieces for el(): each {name} replaced by the node (or
// text) values[name], so a link can sit where the reader's language puts it.
function formatNodes(text, values) {
  return text.split(/\{(\w+)\}/).map((piece, index) => (index % 2 ? values[piece] ?? `{${piece}}` : piece))
    .filter((piece) => piece !== "");
}

// The form for `count` ({n} is the count, formatted): Japanese has one, English two.
function ngettext(singular, plural, count, values = {}) {
  const forms = MESSAGES[singular];
  const chosen = Array.isArray(forms) && forms.length
    ? forms[forms.length === 1 || count === 1 ? 0 : 1] : count === 1 ? singular : plural;
  return format(chosen, { n: number(count), ...values });
}

const params = new URLSearchParams(location.search);
const lookback = params.get("lookback") || "1h";
const content = document.getElementById("content");
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attributes = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The JSON API's answer (its `data`, or with `whole` all of it); an array value is sent
// as the parameter repeated.
async function api(path, query = {}, { whole = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(key, item);
    }
  }
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || _("{status} from {path}", { status: response.status, path }));
  return whole ? body : body.data;
}

const ms = (value) => value === null || value === undefined ? "–"
  : value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(value < 10 ? 2 : 0)} ms`;
// A length of time given in seconds, as people say it: "45 s", "2 min", "1 h 30 min".
function lengthOfTime(seconds) {
  if (seconds < 60) return _("{n} s", { n: +seconds.toFixed(1) });
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return _("{n} min", { n: minutes });
  return minutes % 60 ? _("{hours} h {minutes} min", { hours: Math.floor(minutes / 60), minutes: minutes % 60 })
    : _("{n} h", { n: minutes / 60 });
}
const pct = (value) => `${value.toFixed(value && value < 1 ? 2 : 1)} %`;

// Every time shown is UTC on a 24-hour clock, as the shop's own pages show theirs: one
// zone whatever the browser's, so a time here and one in the shop can be compared.
const two = (n) => String(n).padStart(2, "0");
const clock = (date, seconds = true) =>
  `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}${seconds ? `:${two(date.getUTCSeconds())}` : ""}`;
// A moment (ns since the epoch): its time, and its date too when that is not today.
function when(ns) {
  const date = new Date(ns / 1e6);
  const day = date.toISOString().slice(0, 10);
  return day === new Date().toISOString().slice(0, 10) ? clock(date) : `${day} ${clock(date)}`;
}
const link = (href, text) => el("a", { href }, text);
const withLookback = (path) => `${path}${path.includes("?") ? "&" : "?"}lookback=${lookback}`;

// One colour per service, the same on every page (waterfall, map, charts, legends): the
// shop's own components in the order the page lists them (body data-components), each its
// own colour; any other name hashed onto the same palette.
const PALETTE = ["#2f5fd0", "#13856b", "#a15c07", "#7a3fb0", "#b8326a", "#2a7f9e", "#5b6b12",
  "#6b5b4b", "#c2410c", "#0f766e", "#4338ca", "#9d174d", "#3f6212", "#1e40af", "#92400e", "#6d28d9"];
const COMPONENTS = (document.body.dataset.components || "").split(" ").filter(Boolean);
function serviceColor(name) {
  const index = COMPONENTS.indexOf(name);
  if (index >= 0) return PALETTE[index % PALETTE.length];
  let hash = 0;
  for (const character of name) hash = (hash * 31 + character.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

// A page's search form (#formId): its service choice filled from the API, its fields
// from the page's address, and on submit the address updated (so the search can be
// shared and reloaded) and `search(fields)` run; run once at the start. `fields` is the
// form's filled fields.
async function searchForm(formId, search) {
  const form = document.getElementById(formId);
  // The fields show the address's search at once; the service choice once the list of
  // services has come (a select keeps only a value it has an option for).
  for (const [key, value] of params) {
    const field = form.elements[key];
    if (!field) continue;
    if (field.type === "checkbox") field.checked = value === "true";
    else field.value = value;
  }
  const choice = form.querySelector("select[name=service]");
  if (choice) {
    for (const name of await api("/api/services")) choice.append(el("option", { value: name }, name));
    choice.value = params.get("service") || "";
  }
  const filled = () => Object.fromEntries([...new FormData(form)].filter(([, value]) => value));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams(filled());
    query.set("lookback", lookback);
    history.replaceState(null, "", `?${query}`);
    search(filled()).catch(fail);
  });
  await search(filled());
}

function show(...nodes) {
  content.replaceChildren(...nodes);
}

// A data table, in a box that scrolls sideways when the table is wider than the screen
// (a phone), so the page itself never is.
function dataTable(className, ...children) {
  return el("div", { class: "table-box" }, el("table", { class: `data ${className}`.trim() }, ...children));
}

function empty(text) {
  return el("p", { class: "muted" }, text);
}

// Each page's filler, by the page's name (body data-page); the feature scripts add theirs.
const pages = {};

function fail(error) {
  show(el("p", { class: "error", role: "alert" }, _("Could not load this page: {error}", { error: error.message })));
}

// --- Units: how values read ---------------------------------------------------------

// Numbers as the page's language writes them (its separators), three significant digits.
const number = (value) => new Intl.NumberFormat(LANG, { maximumSignificantDigits: 3 }).format(value);

function bytes(value) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let index = 0;
  while (Math.abs(value) >= 1024 && index < units.length - 1) { value /= 1024; index += 1; }
  return `${number(value)} ${units[index]}`;
}
// Bytes' axis rounds in their own unit (512 MiB, not 477).
bytes.unit = (peak) => 1024 ** Math.max(0, Math.floor(Math.log(peak || 1) / Math.log(1024)));

function money(currency) {
  try {
    const format = new Intl.NumberFormat(LANG, { style: "currency", currency, maximumSignificantDigits: 4 });
    return (value) => format.format(value);
  } catch {  // not an ISO 4217 code: the number and whatever the code is
    return (value) => `${number(value)} ${currency}`;
  }
}

// Start: the page's filler, once every feature script has added its own (deferred
// scripts all run before DOMContentLoaded).
document.addEventListener("DOMContentLoaded", () => {
  const range = document.getElementById("lookback");
  range.value = lookback;
  range.addEventListener("change", () => {
    params.set("lookback", range.value);
    location.search = params.toString();
  });
  for (const a of document.querySelectorAll("nav a")) a.href = withLookback(a.getAttribute("href"));
  // The language switch brings the reader back to this page as it is now: its time
  // range, and a search the page has put in the address since it loaded.
  for (const a of document.querySelectorAll(".languages a")) {
    a.addEventListener("click", () => {
      const back = new URL(a.href, location.origin);
      back.searchParams.set("next", `${location.pathname}${location.search}`);
      a.href = `${back.pathname}${back.search}`;
    });
  }
  (pages[document.body.dataset.page] || (async () => {}))().catch(fail);
});
