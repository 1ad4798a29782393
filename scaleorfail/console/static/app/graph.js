// The state machine graph: laid out by dagre (a compound graph: a Map or Parallel state holds its
// inner states), drawn as SVG with DOM calls. Statuses colour the nodes; a Map shows its iteration counts.
import dagre from "../vendor/dagre.esm.js";

const SVG = "http://www.w3.org/2000/svg";
const START = "__start__";
const END = "__end__";
const PRIORITY = ["failed", "running", "caught", "aborted", "succeeded"];

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function nodeSize(node) {
  if (node.id === START || node.id === END) return { width: 64, height: 30 };
  const second = node.function || node.type || "";
  const chars = Math.max(String(node.id).length, String(second).length * 0.85);
  // states inside a Map or Parallel are wider, so that the container's header (its counts) fits
  return { width: Math.min(300, Math.max(node.parent ? 290 : 120, chars * 7.6 + 28)), height: 46 };
}

export function statusOf(counts) {
  if (!counts) return "not-run";
  for (const status of PRIORITY) if (counts[status]) return status;
  return Object.keys(counts).length ? "succeeded" : "not-run";
}

// Draw `graph` ({nodes, edges}) into `host`; returns {update(states, maps), select(name)}.
export function drawGraph(host, graph, onSelect) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 56, marginx: 16, marginy: 50 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    if (node.container) g.setNode(node.id, { label: node.id, paddingLeft: 16, paddingRight: 16, paddingBottom: 14 });
    else g.setNode(node.id, { label: node.id, ...nodeSize(node) });
  }
  for (const node of graph.nodes) if (node.parent) g.setParent(node.id, node.parent);
  graph.edges.forEach((edge, i) => {
    // a labelled edge reserves room for its label in the layout (dagre places it at the edge's x, y)
    const room = edge.label ? { width: edge.label.length * 5.6 + 8, height: 14, labelpos: "c" } : {};
    g.setEdge(edge.from, edge.to, { label: edge.label, kind: edge.kind, ...room }, `e${i}`);
  });
  dagre.layout(g);

  const size = g.graph();
  const root = svg("svg", {
    class: "asl-graph",
    viewBox: `0 0 ${Math.ceil(size.width)} ${Math.ceil(size.height)}`,
    width: Math.ceil(size.width),
    height: Math.ceil(size.height),
    role: "img",
    "aria-label": "state machine graph",
  });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow-head" }));
  defs.append(marker);
  root.append(defs);

  const boxes = new Map();
  const containers = graph.nodes.filter((n) => n.container);
  const plain = graph.nodes.filter((n) => !n.container);
  for (const node of containers) {
    const box = g.node(node.id);
    const group = svg("g", { class: "state container not-run", "data-state": node.id, tabindex: 0 });
    const top = box.y - box.height / 2 - 36; // the header (name, counts) sits above the inner states
    group.append(svg("rect", { x: box.x - box.width / 2, y: top, width: box.width, height: box.height + 36, rx: 10 }));
    group.append(svg("text", { x: box.x - box.width / 2 + 12, y: top + 16, class: "title" }, `${node.id} (${node.type})`));
    const counts = svg("text", { x: box.x - box.width / 2 + 12, y: top + 30, class: "counts" }, "");
    group.append(counts);
    root.append(group);
    boxes.set(node.id, { group, counts, node });
  }
  for (const edgeKey of g.edges()) {
    const edge = g.edge(edgeKey);
    const points = edge.points.map((p) => `${p.x},${p.y}`).join(" ");
    root.append(svg("polyline", { points, class: `edge ${edge.kind || "next"}`, "marker-end": "url(#arrow)" }));
    if (edge.label) root.append(svg("text", { x: edge.x, y: edge.y + 3, class: "edge-label center" }, edge.label));
  }
  for (const node of plain) {
    const box = g.node(node.id);
    const terminal = node.id === START || node.id === END;
    const group = svg("g", { class: `state ${terminal ? "terminal" : "not-run"}`, "data-state": node.id, tabindex: terminal ? -1 : 0 });
    group.append(svg("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: terminal ? 15 : 6 }));
    if (terminal) {
      group.append(svg("text", { x: box.x, y: box.y + 4, class: "center" }, node.id === START ? "Start" : "End"));
    } else {
      group.append(svg("text", { x: box.x, y: box.y - 3, class: "center title" }, node.id));
      group.append(svg("text", { x: box.x, y: box.y + 13, class: "center sub" }, node.function ? `${node.type} · ${node.function}` : node.type));
      const counts = svg("title", {}, node.id);
      group.append(counts);
      boxes.set(node.id, { group, counts, node, tooltip: true });
    }
    root.append(group);
  }
  for (const { group, node } of boxes.values()) {
    const choose = (event) => {
      event.stopPropagation();
      if (onSelect) onSelect(node.id);
    };
    group.addEventListener("click", choose);
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") choose(event);
    });
  }
  host.append(root);

  return {
    update(states, maps) {
      for (const [name, { group, counts, node, tooltip }] of boxes) {
        const status = statusOf(states ? states[name] : null);
        group.setAttribute("class", `state ${node.container ? "container " : ""}${status}`);
        group.dataset.status = status;
        const parts = Object.entries((states && states[name]) || {}).map(([k, v]) => `${v} ${k}`);
        if (node.container && maps && maps[name]) {
          const m = maps[name];
          counts.textContent = `${m.length} items: ${m.pending} pending · ${m.running} running · ${m.succeeded} succeeded · ${m.failed} failed`;
        } else if (tooltip) {
          counts.textContent = `${name}: ${parts.join(", ") || "not run"}`;
        }
      }
    },
    select(name) {
      for (const [key, { group }] of boxes) group.classList.toggle("selected", key === name);
    },
  };
}
