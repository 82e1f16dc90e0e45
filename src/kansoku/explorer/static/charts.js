// Charts shared by the pages: line charts over a time range, value formats and words by unit.
"use strict";

// A metric's unit (UCUM, as OpenTelemetry writes it) as a formatter of its chart's values:
// bytes in KiB/MiB/GiB, a utilization as a percentage, money in its currency
// (`currencies`: those its series are in), durations in ms or s, and counts as numbers.
// A counter's chart is its rate per second and a histogram's its percentiles, both in the
// metric's unit, so the same formats serve every instrument.
function formatFor(metric, currencies = []) {
  const { unit = "", name = "" } = metric;
  if (unit === "By") return bytes;
  if (unit === "1" && name.endsWith(".utilization")) return (value) => `${number(100 * value)} %`;
  if (unit === "s") return (value) => ms(1000 * value);
  if (unit === "ms") return ms;
  if (unit === "us") return (value) => ms(value / 1000);
  if (unit === "{currency_unit}" && currencies.length === 1) return money(currencies[0]);
  return number;
}

// A metric's unit in words, for titles and axis labels: "ms" for any duration (the
// charts show durations in ms), "bytes", "%", the currency, or the counted thing of a
// UCUM annotation ("{order}" → "orders").
function unitWords(metric, currencies = []) {
  const { unit = "", name = "" } = metric;
  if (["s", "ms", "us"].includes(unit)) return "ms";
  if (unit === "By") return _("bytes");
  if (unit === "1" && name.endsWith(".utilization")) return "%";
  if (unit === "{currency_unit}") return currencies.length === 1 ? currencies[0] : _("money");
  const counted = /^\{(.+)\}$/.exec(unit);
  if (counted) return counted[1].endsWith("s") ? counted[1] : `${counted[1]}s`;
  return unit && unit !== "1" ? unit : "";
}

// The chart steps of each time range the page offers, as the API takes them.
const STEPS = { "15m": "30s", "1h": "1m", "6h": "5m", "24h": "20m" };
function stepFor(range) {
  return STEPS[range] || "1m";
}

// The time range a chart spans: { start, end, step } in ns, cut in `steps` steps.
function rangeOf(lookbackText, steps = 60) {
  const minutes = { "15m": 15, "1h": 60, "6h": 360, "24h": 1440 }[lookbackText] || 60;
  const end = Date.now() * 1e6;
  return { start: end - minutes * 60e9, end, step: minutes * 60e9 / steps };
}

// The time range of a chart whose points the API gave in `stepFor`'s steps.
function stepRange(lookbackText) {
  const step = stepFor(lookbackText);
  const stepNs = parseInt(step, 10) * (step.endsWith("s") ? 1e9 : 60e9);
  const { start, end } = rangeOf(lookbackText);
  return { start, end, step: stepNs };
}

// Ticks on the time axis: the shortest of these intervals that gives at most six.
const TICK_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720];

// How a line is drawn besides its colour: percentiles each their own dash (p50 dotted,
// p95 solid, p99 dashed), other lines of one service (one per attribute value) in turn.
const STATISTIC_DASH = { p50: "1 3", p95: "", p99: "6 3" };
const DASHES = ["", "6 3", "1 3", "8 3 1 3"];

// A line chart of one line per series, over a chart's time range: points are
// [{service, attribute?, statistic?, time_ns, value}, ...], each the value of the step
// that starts at `time_ns`, drawn at the step's end (so the latest step meets the right
// edge, "now"); a line breaks where steps are missing. Each line is its service's colour
// (`serviceColor`), and named in the legend "service · attribute · p95". A time axis in
// UTC, a value axis in `format`, labelled `axis` (its unit: "ms", "orders/s").
function lineChart(points, title, { format = number, range, axis = "" }) {
  const [width, height, left, right, top, bottom] = [420, 172, 66, 10, 10, 36];
  const plotWidth = width - left - right; const plotHeight = height - top - bottom;
  const x = (ns) => left + (Math.min(Math.max(ns, range.start), range.end) - range.start)
    / (range.end - range.start) * plotWidth;
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const peak = Math.max(...values, 0);
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
      // The origin reads "0 ms", not "0.00 ms".
      el("svg:text", { x: left - 4, y: y(value) + 3, "text-anchor": "end", class: "axis" },
        fraction ? format(value) : format(0).replace(/^0\.0+(?=\D|$)/, "0")));
  }
  if (axis) {
    svg.append(el("svg:text", { x: 0, y: 0, "text-anchor": "middle", class: "axis-title value-axis",
      transform: `translate(11 ${top + plotHeight / 2}) rotate(-90)` }, axis));
  }
  const minutes = (range.end - range.start) / 60e9;
  const every = (TICK_MINUTES.find((m) => minutes / m <= 6) || 1440) * 60e9;
  for (let tick = Math.ceil(range.start / every) * every; tick <= range.end; tick += every) {
    svg.append(el("svg:line", { x1: x(tick), x2: x(tick), y1: top + plotHeight, y2: top + plotHeight + 3, class: "axis-line" }),
      // A tick at the right edge ends there, rather than run out of the chart.
      el("svg:text", { x: x(tick), y: top + plotHeight + 14, "text-anchor": x(tick) > width - right - 14 ? "end" : "middle", class: "axis" },
        clock(new Date(tick / 1e6), false)));
  }
  svg.append(el("svg:text", { x: left + plotWidth / 2, y: height - 4, "text-anchor": "middle", class: "axis-title time-axis" }, _("Time (UTC)")));
  const bySeries = new Map();
  for (const p of points) {
    if (p.value === null || p.value === undefined) continue;
    const name = [p.service, p.attribute, STATISTIC_DASH[p.statistic] === undefined ? null : p.statistic]
      .filter(Boolean).join(" · ");
    if (!bySeries.has(name)) bySeries.set(name, []);
    bySeries.get(name).push(p);
  }
  const othersOf = {};  // per service, how many of its lines have been drawn
  const looks = [...bySeries.entries()].map(([name, series]) => {
    const first = series[0];
    const turn = othersOf[first.service] = (othersOf[first.service] ?? -1) + 1;
    const dash = STATISTIC_DASH[first.statistic] ?? DASHES[turn % DASHES.length];
    return { name, series, color: serviceColor(first.service || name), dash };
  });
  for (const { name, series, color, dash } of looks) {
    series.sort((a, b) => a.time_ns - b.time_ns);
    const path = series.map((p, i) => {
      const gap = i && p.time_ns - series[i - 1].time_ns > 1.5 * range.step;
      return `${!i || gap ? "M" : "L"}${x(p.time_ns + range.step).toFixed(1)},${y(p.value).toFixed(1)}`;
    }).join(" ");
    svg.append(el("svg:path", { d: path, class: "series", stroke: color, "stroke-dasharray": dash || undefined },
      el("svg:title", {}, _("{name}: latest {value}", { name, value: format(series[series.length - 1].value) }))));
    if (series.length < 4) {  // too few points for a line to show: mark each one
      for (const p of series) {
        svg.append(el("svg:circle", { r: 3, class: "dot", fill: color,
          cx: x(p.time_ns + range.step).toFixed(1), cy: y(p.value).toFixed(1) }));
      }
    }
  }
  const legend = el("p", { class: "legend" }, looks.map(({ name, color, dash }) =>
    el("span", { class: "key" }, el("svg:svg", { width: 18, height: 6, "aria-hidden": "true" },
      el("svg:line", { x1: 0, x2: 18, y1: 3, y2: 3, stroke: color, "stroke-width": 2, "stroke-dasharray": dash || undefined })),
    name)));
  return el("figure", { class: "metric" }, el("figcaption", {}, title), svg, legend);
}
