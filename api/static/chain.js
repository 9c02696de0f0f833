// The chain as SVG: one lane per zone, lots left to right by business time, edges as arrows.

import { SVG_NS, clip, instant, lotName, s, shortId, when } from "./dom.js";

const EDGE_KINDS = ["transfer", "processing", "split", "lost"];
const NODE_W = 176;
const NODE_H = 58;
const COL_GAP = 110;
const ROW_GAP = 14;
const LANE_PAD = 16;
const LABEL_W = 64;

// Lanes in the answer's zone order; columns by distinct business time; lots of one zone at
// one time stack in their lane, each under the mean height of its parents (fewer crossings).
export function layout(trace) {
  const zones = [...trace.zones];
  for (const lot of trace.lots) if (!zones.includes(lot.zone)) zones.push(lot.zone);
  const times = [...new Set(trace.lots.map((l) => instant(l.occurred_at)))].sort((a, b) => a - b);
  const cells = new Map(); // "col|zone" -> lots
  for (const lot of trace.lots) {
    const key = times.indexOf(instant(lot.occurred_at)) + "|" + lot.zone;
    cells.set(key, [...(cells.get(key) || []), lot]);
  }
  const parents = new Map();
  for (const e of trace.edges) parents.set(e.to, [...(parents.get(e.to) || []), e.from]);
  const rows = new Map(zones.map((z) => [z, 1]));
  const place = new Map();
  const rank = (id) => {
    const p = place.get(id);
    return p ? zones.indexOf(p.zone) * 10000 + p.row : Infinity;
  };
  const weight = (lot) => {
    const known = (parents.get(lot.lot_id) || []).map(rank).filter(Number.isFinite);
    return known.length ? known.reduce((a, b) => a + b, 0) / known.length : Infinity;
  };
  times.forEach((_, col) => {
    for (const zone of zones) {
      const lots = (cells.get(col + "|" + zone) || []).map((l) => [weight(l), l]);
      lots.sort((a, b) => a[0] - b[0] || (a[1].lot_id < b[1].lot_id ? -1 : 1));
      lots.forEach(([, lot], row) => place.set(lot.lot_id, { col: col, row: row, zone: zone }));
      rows.set(zone, Math.max(rows.get(zone), lots.length));
    }
  });
  const lanes = [];
  let y = 0;
  for (const zone of zones) {
    const n = rows.get(zone);
    const height = 2 * LANE_PAD + n * NODE_H + (n - 1) * ROW_GAP;
    lanes.push({ zone: zone, y: y, height: height });
    y += height;
  }
  const top = new Map(lanes.map((l) => [l.zone, l.y]));
  for (const p of place.values()) {
    p.x = LABEL_W + COL_GAP / 2 + p.col * (NODE_W + COL_GAP);
    p.y = top.get(p.zone) + LANE_PAD + p.row * (NODE_H + ROW_GAP);
  }
  const width = LABEL_W + Math.max(1, times.length) * (NODE_W + COL_GAP);
  return { lanes: lanes, place: place, width: width, height: Math.max(y, 40) };
}

// `onSelect(lotId)` runs when a lot is clicked, or focused and activated with Enter or Space.
export function chain(trace, geometry, onSelect) {
  const svg = s("svg", {
    id: "chain",
    xmlns: SVG_NS,
    width: geometry.width,
    height: geometry.height,
    viewBox: "0 0 " + geometry.width + " " + geometry.height,
    role: "group",
    "aria-label": "The chain of lots, one lane per zone",
  });
  svg.append(
    s(
      "defs",
      {},
      EDGE_KINDS.map((kind) =>
        s(
          "marker",
          {
            id: "arrow-" + kind,
            viewBox: "0 0 10 10",
            refX: 9,
            refY: 5,
            markerWidth: 8,
            markerHeight: 8,
            orient: "auto-start-reverse",
          },
          s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-" + kind }),
        ),
      ),
    ),
  );
  geometry.lanes.forEach((lane, i) => {
    svg.append(
      s(
        "g",
        { class: "lane", "data-zone": lane.zone },
        s("rect", {
          class: i % 2 ? "lane-b" : "lane-a",
          x: 0,
          y: lane.y,
          width: geometry.width,
          height: lane.height,
        }),
        s("text", { class: "lane-label", x: 12, y: lane.y + lane.height / 2 + 5 }, lane.zone),
      ),
    );
  });
  const edges = s("g", { class: "edges" });
  for (const [edge, at] of labelPositions(trace.edges, geometry.place)) {
    edges.append(edgeShape(edge, geometry.place, at));
  }
  svg.append(edges);
  const nodes = s("g", { class: "lots" });
  for (const lot of trace.lots) nodes.append(lotNode(lot, geometry.place.get(lot.lot_id)));
  svg.append(nodes);
  svg.addEventListener("click", (event) => {
    const node = event.target.closest(".lot");
    if (node) onSelect(node.getAttribute("data-lot-id"));
  });
  svg.addEventListener("keydown", (event) => {
    const node = event.target.closest(".lot");
    if (node && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      onSelect(node.getAttribute("data-lot-id"));
    }
  });
  return svg;
}

// Goods written off as lost in transit are a node of their own (origin `lost`): what never
// arrived, in the source zone's lane, at the time the stocktake wrote it off.
function lotNode(lot, p) {
  const name = lotName(lot);
  const amount = lot.quantity_in + " " + lot.unit;
  const lost = lot.origin === "lost";
  const label = lost
    ? name + ", " + amount + " " + lot.goods_status + " lost in transit (node " +
      shortId(lot.lot_id) + "), written off in " + lot.zone + " on " + when(lot.occurred_at)
    : name + ", lot " + shortId(lot.lot_id) + ", " + amount + ", " + lot.goods_status +
      ", in " + lot.zone + " since " + when(lot.occurred_at);
  const status = lost ? "lost in transit" : lot.goods_status;
  const meta = lost ? "written off \u00b7 " + shortId(lot.lot_id) : "lot " + shortId(lot.lot_id) +
    " \u00b7 on hand " + lot.on_hand;
  return s(
    "g",
    {
      class: "lot " + lot.goods_status + (lost ? " lost" : ""),
      "data-lot-id": lot.lot_id,
      tabindex: 0,
      role: "button",
      "aria-pressed": "false",
      "aria-label": label,
      transform: "translate(" + p.x + "," + p.y + ")",
    },
    s("title", {}, label),
    s("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
    s("text", { class: "lot-name", x: 10, y: 17 }, clip(name, 24)),
    s("text", { class: "lot-qty", x: 10, y: 33 }, amount + " \u00b7 " + status),
    s("text", { class: "lot-meta", x: 10, y: 49 }, meta),
  );
}

// Edges between the same two columns often cross at their middle (two lots transferred
// together): their labels sit at different points along the curves instead.
function labelPositions(edges, place) {
  const drawn = edges.filter((e) => place.has(e.from) && place.has(e.to)); // not beyond a cut
  const groups = new Map();
  for (const e of drawn) {
    const key = place.get(e.from).col + ">" + place.get(e.to).col;
    groups.set(key, [...(groups.get(key) || []), e]);
  }
  const at = new Map();
  for (const group of groups.values()) {
    const n = group.length;
    group.forEach((e, k) => at.set(e, n === 1 ? 0.5 : 0.3 + (0.4 * k) / (n - 1)));
  }
  return drawn.map((e) => [e, at.get(e)]);
}

function bezier(p, t) {
  const u = 1 - t;
  const mix = (i) => u * u * u * p[0][i] + 3 * u * u * t * p[1][i] + 3 * u * t * t * p[2][i] +
    t * t * t * p[3][i];
  return [mix(0), mix(1)];
}

function edgeShape(edge, place, at) {
  const a = place.get(edge.from);
  const b = place.get(edge.to);
  let points;
  if (b.col > a.col) {
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x - 2;
    const y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    points = [[x1, y1], [mx, y1], [mx, y2], [x2, y2]];
  } else {
    // The same business time: from the parent's edge to the child's, across the lanes.
    const down = b.y >= a.y;
    const x1 = a.x + NODE_W / 2;
    const y1 = down ? a.y + NODE_H : a.y;
    const x2 = b.x + NODE_W / 2;
    const y2 = down ? b.y - 2 : b.y + NODE_H + 2;
    const my = (y1 + y2) / 2;
    points = [[x1, y1], [x1, my], [x2, my], [x2, y2]];
  }
  const d = "M" + points[0] + " C" + points[1] + " " + points[2] + " " + points[3];
  const [lx, ly] = bezier(points, at);
  const kind = EDGE_KINDS.includes(edge.kind) ? edge.kind : "split";
  const text = edge.quantity === null ? edge.kind : edge.kind + " " + edge.quantity;
  return s(
    "g",
    { class: "edge edge-" + kind, "data-from": edge.from, "data-to": edge.to },
    s("title", {}, text + ": lot " + shortId(edge.from) + " \u2192 lot " + shortId(edge.to)),
    s("path", { d: d, "marker-end": "url(#arrow-" + kind + ")" }),
    s("text", { x: lx, y: ly - 4, "text-anchor": "middle" }, text),
  );
}
