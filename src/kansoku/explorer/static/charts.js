// Charts shared by the pages: sparklines, line charts over a time range, value formats by unit.
"use strict";

// A small line chart: points [[x, y], ...] over the chart's width.
function sparkline(points, { width = 160, height = 36, label = "" } = {}) {
  const svg = el("svg:svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": label, class: "spark" });
  if (points.length < 2) return svg;
  const xs = points.map((p) => p[0]); const ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const top = Math.max(...ys) || 1;
  const path = points.map(([x, y], i) => `${i ? "L" : "M"}${((x - x0) / (x1 - x0 || 1) * (width - 2) + 1).toFixed(1)},${(height - 2 - y / top * (height - 4)).toFixed(1)}`).join(" ");
  svg.append(el("svg:path", { d: path, fill: "none", stroke: "currentColor", "stroke-width": 1.5 }));
  svg.append(el("svg:title", {}, `${label}: max ${top.toFixed(1)}`));
  return svg;
}


// A metric's unit (UCUM, as OpenTelemetry writes it) and kind as a formatter of its
// chart's values: bytes in KiB/MiB/GiB, a utilization as a percentage, money in its
// currency (`currencies`: those its series are in), durations in ms or s, and counts as
// numbers. A histogram's chart counts its observations, whatever their unit.
function formatFor(metric, currencies = []) {
  const { unit = "", kind = "", name = "" } = metric;
  if (["histogram", "exponential_histogram", "summary"].includes(kind)) return number;
  if (unit === "By") return bytes;
  if (unit === "1" && name.endsWith(".utilization")) return (value) => `${number(100 * value)} %`;
  if (unit === "s") return (value) => ms(1000 * value);
  if (unit === "ms") return ms;
  if (unit === "us") return (value) => ms(value / 1000);
  if (unit === "{currency_unit}" && currencies.length === 1) return money(currencies[0]);
  return number;
}

// The time range a chart spans: { start, end, step } in ns.
function rangeOf(lookbackText, steps = 60) {
  const minutes = { "15m": 15, "1h": 60, "6h": 360, "24h": 1440 }[lookbackText] || 60;
  const end = Date.now() * 1e6;
  return { start: end - minutes * 60e9, end, step: minutes * 60e9 / steps };
}

// Ticks on the time axis: the shortest of these intervals that gives at most six.
const TICK_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720];

// A line chart of one line per series, over a chart's time range: points are
// [{service, attribute?, time_ns, value}, ...], each the value of the step that starts at
// `time_ns`, drawn at the step's end (so the latest step meets the right edge, "now");
// a line breaks where steps are missing. A time axis in UTC, a value axis in `format`.
function lineChart(points, title, { format = number, range }) {
  const [width, height, left, right, top, bottom] = [420, 160, 56, 10, 10, 24];
  const plotWidth = width - left - right; const plotHeight = height - top - bottom;
  const x = (ns) => left + (Math.min(Math.max(ns, range.start), range.end) - range.start)
    / (range.end - range.start) * plotWidth;
  const peak = Math.max(...points.map((p) => p.value), 0);
  // The value axis' top: a round number (1, 2 or 5 times a power of ten, in the unit the
  // values are written in) at or above the peak.
  const unit = format.unit ? format.unit(peak) : 1;
  const magnitude = 10 ** Math.floor(Math.log10(peak / unit || 1));
  const topValue = unit * ([1, 2, 5, 10].map((m) => m * magnitude).find((v) => v >= peak / unit) || 1);
  const y = (value) => top + (1 - value / topValue) * plotHeight;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart" });
  for (const fraction of [0, 0.5, 1]) {
    const value = topValue * fraction;
    svg.append(el("svg:line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: fraction ? "grid" : "axis-line" }),
      el("svg:text", { x: left - 4, y: y(value) + 3, "text-anchor": "end", class: "axis" }, format(value)));
  }
  const minutes = (range.end - range.start) / 60e9;
  const every = (TICK_MINUTES.find((m) => minutes / m <= 6) || 1440) * 60e9;
  for (let tick = Math.ceil(range.start / every) * every; tick <= range.end; tick += every) {
    svg.append(el("svg:line", { x1: x(tick), x2: x(tick), y1: top + plotHeight, y2: top + plotHeight + 3, class: "axis-line" }),
      el("svg:text", { x: x(tick), y: height - 8, "text-anchor": "middle", class: "axis" }, clock(new Date(tick / 1e6), false)));
  }
  svg.append(el("svg:text", { x: left - 4, y: height - 8, "text-anchor": "end", class: "axis zone" }, "UTC"));
  const bySeries = {};
  for (const p of points) (bySeries[p.attribute ? `${p.service} · ${p.attribute}` : p.service] ||= []).push(p);
  Object.entries(bySeries).forEach(([name, series], index) => {
    series.sort((a, b) => a.time_ns - b.time_ns);
    const path = series.map((p, i) => {
      const gap = i && p.time_ns - series[i - 1].time_ns > 1.5 * range.step;
      return `${!i || gap ? "M" : "L"}${x(p.time_ns + range.step).toFixed(1)},${y(p.value).toFixed(1)}`;
    }).join(" ");
    svg.append(el("svg:path", { d: path, class: `series s${index % 8}` },
      el("svg:title", {}, `${name}: latest ${format(series[series.length - 1].value)}`)));
    if (series.length < 4) {  // too few points for a line to show: mark each one
      for (const p of series) {
        svg.append(el("svg:circle", { r: 3, class: `dot s${index % 8}`,
          cx: x(p.time_ns + range.step).toFixed(1), cy: y(p.value).toFixed(1) }));
      }
    }
  });
  const legend = el("p", { class: "legend" }, Object.keys(bySeries).map((name, index) =>
    el("span", { class: `key s${index % 8}` }, name)));
  return el("figure", { class: "metric" }, el("figcaption", {}, title), svg, legend);
}
