// The Browser page: what real browsers measured.
"use strict";

// Web Vitals' ratings (the API's `rating`), in words.
const RATINGS = { good: _("good"), "needs-improvement": _("needs improvement"), poor: _("poor") };

pages.browser = async () => {
  const { vitals, errors, thresholds } = await api("/api/vitals", { lookback });
  const format = (name, value) => name === "CLS" ? value.toFixed(3) : ms(value);
  // Slowest pages first: by their LCP at p75.
  const lcp = (pagePath) => (vitals.find((v) => v.page === pagePath && v.name === "LCP") || { p75: -1 }).p75;
  const pagesSeen = [...new Set(vitals.map((v) => v.page))].sort((a, b) => lcp(b) - lcp(a));
  const names = Object.keys(thresholds);
  const table = vitals.length ? dataTable("vitals",
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, _("Page (route)")),
      ...names.map((n) => el("th", { scope: "col" }, `${n} p75`)))),
    el("tbody", {}, pagesSeen.map((pagePath) => el("tr", {}, el("th", { scope: "row" }, pagePath || _("(unknown)")),
      ...names.map((n) => {
        const v = vitals.find((x) => x.page === pagePath && x.name === n);
        return v ? el("td", { class: `rating ${v.rating}`, title: ngettext("{n} measurement", "{n} measurements", v.samples) },
          format(n, v.p75), el("span", { class: "muted" }, ` ${RATINGS[v.rating] || v.rating}`)) : el("td", {}, "–");
      })))))
    : empty(_("No Web Vitals from real browsers in this time range. Browse the storefront and come back."));
  const legend = el("p", { class: "muted" }, _("Good / poor thresholds (web-vitals):"), " ",
    names.map((n) => `${n} ≤ ${format(n, thresholds[n].good)} / > ${format(n, thresholds[n].poor)}`).join(" · "));
  const errorList = errors.length ? dataTable("",
    el("thead", {}, el("tr", {}, ...[_("Error"), _("Page"), _("Count"), _("Last seen (UTC)")].map((n) => el("th", { scope: "col" }, n)))),
    el("tbody", {}, errors.map((e) => el("tr", { class: "bad" }, el("td", {}, e.message || _("(no message)")),
      el("td", {}, e.page || ""), el("td", {}, e.count),
      el("td", {}, e.trace_id ? link(`/traces/${e.trace_id}`, when(e.last_seen_ns)) : when(e.last_seen_ns))))))
    : empty(_("No JavaScript errors reported."));
  show(el("h2", {}, _("Web Vitals per page (p75), slowest first")), legend, table, el("h2", {}, _("JavaScript errors")), errorList);
};
