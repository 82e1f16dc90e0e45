// The service map: who calls whom, drawn from the spans.
"use strict";

pages.map = async () => {
  const { nodes, edges } = await api("/api/map", { lookback });
  if (!nodes.length) return show(empty("No calls between services in this time range yet."));
  // Layers: a node sits one column right of the deepest node calling it.
  const depth = Object.fromEntries(nodes.map((n) => [n.id, 0]));
  for (let round = 0; round < nodes.length; round += 1) {
    for (const e of edges) if (e.parent !== e.child) depth[e.child] = Math.max(depth[e.child], Math.min(depth[e.parent] + 1, 8));
  }
  const columns = {};
  for (const n of nodes) (columns[depth[n.id]] ||= []).push(n);
  const [boxWidth, columnGap, rowGap] = [150, 270, 80];
  const width = columnGap * Math.max(...Object.values(depth)) + boxWidth + 60;
  const height = rowGap * Math.max(...Object.values(columns).map((c) => c.length)) + 40;
  const at = {};
  for (const [column, members] of Object.entries(columns)) {
    members.forEach((n, i) => { at[n.id] = [30 + column * columnGap, 30 + i * rowGap]; });
  }
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": "Service map", class: "map" },
  el("svg:defs", {}, el("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#98a2b3" }))));
  for (const e of edges) {
    const [x1, y1] = at[e.parent]; const [x2, y2] = at[e.child];
    const bad = e.errors / e.calls >= 0.05;
    svg.append(el("svg:line", { x1: x1 + boxWidth, y1: y1 + 18, x2, y2: y2 + 18,
      class: `edge ${e.kind} ${bad ? "bad" : ""}`, "marker-end": "url(#arrow)" },
    el("svg:title", {}, `${e.parent} → ${e.child}: ${e.calls} calls, ${pct(100 * e.errors / e.calls)} errors, mean ${ms(e.mean_ms)}`)));
    // Calls into databases crowd the right-hand column: those tell their numbers on
    // hover only; calls between services are labelled.
    if (e.kind !== "database") {
      svg.append(el("svg:text", { x: (x1 + boxWidth + x2) / 2, y: (y1 + y2) / 2 + 12,
        "text-anchor": "middle", class: "edge-label" },
      `${e.calls} calls · ${ms(e.mean_ms)}${e.errors ? ` · ${e.errors} errors` : ""}`));
    }
  }
  for (const n of nodes) {
    const [x, y] = at[n.id];
    const label = n.id.length > 22 ? `${n.id.slice(0, 21)}…` : n.id;
    const box = el("svg:a", { href: n.kind === "service" ? withLookback(`/services/${encodeURIComponent(n.id)}`) : null },
      el("svg:title", {}, n.id),
      el("svg:rect", { x, y, width: boxWidth, height: 36, rx: n.kind === "database" ? 18 : 6, class: `node ${n.kind}` }),
      el("svg:text", { x: x + boxWidth / 2, y: y + 23, "text-anchor": "middle" }, label));
    svg.append(box);
  }
  show(el("p", { class: "muted" }, "Each arrow is calls from one component to another in this time range: count · mean latency · errors (dashed: through NATS). Hover an arrow for details; click a service for its routes."), svg);
};
