// The service map: who calls whom, drawn from the spans. ELK's layered layout (elkjs,
// static/vendor/elk.bundled.js) places the boxes in layers from callers to callees, the
// calls' labels beside their arrows, and routes every arrow around the boxes; this file
// only measures the texts and draws what ELK answers.
"use strict";

const MAP_FONT = { node: 13, edge: 11 };  // px, as explorer.css sets them for svg.map
const NODE_PADDING = { x: 14, height: 34 };
const ARROW_GAP = 9;  // px between arrows meeting on a box's side: a busy box grows taller
const EDGE_LINE = 14;  // px between an edge label's lines

// A name longer than this is cut (with …) on its box; the box's tooltip has all of it.
const LONGEST_NAME = 32;
const shortName = (name) => name.length > LONGEST_NAME ? `${name.slice(0, LONGEST_NAME - 1)}…` : name;
// A call's label, short lines so that the layers between boxes stay narrow: "12 calls",
// "3.4 ms", then its errors when it has any — each line [text, class].
function callLines(edge) {
  return [[ngettext("{n} call", "{n} calls", edge.calls)], [ms(edge.mean_ms)],
    ...(edge.errors ? [[ngettext("{n} error", "{n} errors", edge.errors), "errors"]] : [])];
}

// The traces page, searching for the traces that hold this call.
function callTraces(edge) {
  const query = new URLSearchParams({ service: edge.traces.service });
  if (edge.traces.tag) query.set("tag", edge.traces.tag);
  return withLookback(`/traces?${query}`);
}

const failing = (edge) => edge.errors / edge.calls >= 0.05;

// The width of `text` in the map's font of `size` px, measured in the page (fonts differ
// between machines, so ELK is told each box's real size).
function measurer(svg) {
  const probe = el("svg:text", { class: "probe" });
  svg.append(probe);
  return (text, size) => {
    probe.setAttribute("font-size", size);
    probe.textContent = text;
    return probe.getComputedTextLength();
  };
}

// A text of several lines ([text, class] each) whose top-left corner is at (x, y).
function lines(texts, x, y, attributes) {
  return el("svg:text", { ...attributes, x, y },
    texts.map(([text, className], i) => el("svg:tspan", { x, y: y + (i + 0.8) * EDGE_LINE, class: className }, text)));
}

function pathOf(section) {
  const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
  return points.map((p, i) => `${i ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(" ");
}

pages.map = async () => {
  const { nodes, edges } = await api("/api/map", { lookback });
  if (!nodes.length) return show(empty(_("No calls between services in this time range yet.")));
  const svg = el("svg:svg", { role: "img", "aria-label": _("Service map"), class: "map" },
    el("svg:defs", {}, ["arrow", "arrow-bad"].map((id) => el("svg:marker", { id, viewBox: "0 0 10 10",
      refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    el("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", class: id })))));
  const legend = el("p", { class: "muted" }, _("Each arrow is calls from one component to another in this time range: count · mean latency, and errors (dashed: through a message broker; red: 5 % or more failed). Click an arrow or its label for those calls' traces, a service for its routes; hover for details."));
  show(legend, el("div", { class: "map-box" }, svg));

  const width = measurer(svg);
  const arrows = (id) => Math.max(edges.filter((e) => e.child === id).length,
    edges.filter((e) => e.parent === id).length);
  const graph = {
    id: "map",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.edgeRouting": "ORTHOGONAL",
      "elk.padding": "[top=12,left=12,bottom=12,right=12]",
      "elk.spacing.nodeNode": "22",
      "elk.spacing.edgeNode": "14",
      "elk.spacing.edgeEdge": "10",
      "elk.spacing.edgeLabel": "4",
      "elk.layered.spacing.nodeNodeBetweenLayers": "24",
      "elk.layered.spacing.edgeNodeBetweenLayers": "14",
      "elk.layered.spacing.edgeEdgeBetweenLayers": "10",
      "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
      "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
    },
    children: nodes.map((node) => ({ id: node.id,
      width: Math.max(72, width(shortName(node.name), MAP_FONT.node) + 2 * NODE_PADDING.x),
      height: Math.max(NODE_PADDING.height, ARROW_GAP * (arrows(node.id) + 1)) })),
    edges: edges.map((edge, i) => {
      const texts = callLines(edge).map(([text]) => text);
      return { id: `call-${i}`, sources: [edge.parent], targets: [edge.child],
        labels: [{ text: texts.join("\n"), width: Math.max(...texts.map((t) => width(t, MAP_FONT.edge))) + 4,
          height: texts.length * EDGE_LINE + 2, layoutOptions: { "elk.edgeLabels.placement": "CENTER" } }] };
    }),
  };
  const layout = await new ELK().layout(graph);
  svg.querySelector(".probe").remove();
  svg.setAttribute("viewBox", `0 0 ${Math.ceil(layout.width)} ${Math.ceil(layout.height)}`);
  svg.setAttribute("width", Math.ceil(layout.width));
  svg.setAttribute("height", Math.ceil(layout.height));

  const placed = Object.fromEntries(layout.edges.map((edge) => [edge.id, edge]));
  edges.forEach((edge, i) => {
    const { sections = [], labels = [] } = placed[`call-${i}`];
    const bad = failing(edge);
    const values = { parent: edge.parent, child: edge.child, calls: ngettext("{n} call", "{n} calls", edge.calls),
      failed: number(edge.errors), percent: pct(100 * edge.errors / edge.calls), mean: ms(edge.mean_ms), via: edge.via };
    const what = edge.via
      ? _("{parent} → {child}: {calls}, {failed} failed ({percent}), mean {mean}, through {via}. Click for their traces.", values)
      : _("{parent} → {child}: {calls}, {failed} failed ({percent}), mean {mean}. Click for their traces.", values);
    const call = el("svg:a", { href: callTraces(edge), class: `call ${edge.kind}${bad ? " bad" : ""}`,
      "data-parent": edge.parent, "data-child": edge.child }, el("svg:title", {}, what));
    for (const section of sections) {
      const d = pathOf(section);
      call.append(el("svg:path", { d, class: "edge-hit" }),  // a wider, invisible line to click
        el("svg:path", { d, class: "edge", "marker-end": `url(#${bad ? "arrow-bad" : "arrow"})` }));
    }
    for (const label of labels) {
      call.append(el("svg:rect", { x: label.x, y: label.y, width: label.width, height: label.height, class: "edge-label-box" }),
        lines(callLines(edge), label.x + 2, label.y, { class: "edge-label" }));
    }
    svg.append(call);
  });

  const byId = Object.fromEntries(nodes.map((node) => [node.id, node]));
  // The same calls as a table: read by screen readers (the drawing is one image to
  // them), and on a phone without scrolling around the drawing.
  const nameOf = (id) => byId[id].name;
  content.append(el("h2", {}, _("Calls")), dataTable("calls",
    el("thead", {}, el("tr", {}, [_("From"), _("To"), _("Calls"), _("Mean"), _("Errors"), _("Traces")].map((h) => el("th", {}, h)))),
    el("tbody", {}, edges.map((edge) => el("tr", {},
      el("td", {}, nameOf(edge.parent)), el("td", {}, nameOf(edge.child), edge.via ? el("span", { class: "muted" }, " ", _("(through {via})", { via: edge.via })) : null),
      el("td", {}, edge.calls), el("td", {}, ms(edge.mean_ms)),
      el("td", { class: edge.errors ? "error" : "" }, edge.errors ? `${edge.errors} (${pct(100 * edge.errors / edge.calls)})` : "0"),
      el("td", {}, link(callTraces(edge), _("traces"))))))));
  for (const box of layout.children) {
    const node = byId[box.id];
    const service = node.kind === "service";
    const tip = node.note || (node.name === node.id ? node.id : `${node.name} (${node.id})`);
    svg.append(el("svg:a", { href: service ? withLookback(`/services/${encodeURIComponent(node.id)}`) : null,
      class: `node ${node.kind}`, "data-id": node.id },
    el("svg:title", {}, tip),
    el("svg:rect", { x: box.x, y: box.y, width: box.width, height: box.height, rx: service ? 6 : 16,
      style: service ? `--service:${serviceColor(node.id)}` : null }),
    el("svg:text", { x: box.x + box.width / 2, y: box.y + box.height / 2, "text-anchor": "middle",
      "dominant-baseline": "central", class: "node-label" }, shortName(node.name))));
  }
};
