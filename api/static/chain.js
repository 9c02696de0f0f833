// The chain as SVG: one lane per zone, lots left to right by business time, edges as arrows.
// Its words are the page's labels in the page's language (`L`, trace-labels.js); its figures
// and the geometry do not depend on the language.

import { zoneName } from "./language.js";
import { SVG_NS, clip, instant, lotName, s, shortId, when, wrap } from "./dom.js";

const EDGE_KINDS = ["transfer", "processing", "split", "lost"];
const NODE_W = 176;
const NODE_H = 58;
const COL_GAP = 110;
const ROW_GAP = 14;
const LANE_PAD = 16;
const LABEL_W = 100; // the lane's code and the zone's name, left of the first column
const NAME_COLUMNS = 22; // the zone's name: two lines of about 130 px at 11 px
const NAME_LINES = 2;

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
// `zones`: the zones of GET /v1/zones by code (a lane's name; none when unknown).
export function chain(trace, geometry, onSelect, L, zones) {
  const svg = s("svg", {
    id: "chain",
    xmlns: SVG_NS,
    width: geometry.width,
    height: geometry.height,
    viewBox: "0 0 " + geometry.width + " " + geometry.height,
    role: "group",
    "aria-label": L.text("chain_label"),
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
    const name = zoneName(zones.get(lane.zone), L.language);
    const lines = wrap(name, NAME_COLUMNS, NAME_LINES);
    // The code, and the name's lines under it, centred in the lane together.
    const top = lane.y + lane.height / 2 - (16 + 13 * lines.length) / 2;
    svg.append(
      s(
        "g",
        { class: "lane", "data-zone": lane.zone },
        s("title", {}, L.text("lane", { code: lane.zone, name: name }).trim()),
        s("rect", {
          class: i % 2 ? "lane-b" : "lane-a",
          x: 0,
          y: lane.y,
          width: geometry.width,
          height: lane.height,
        }),
        s("text", { class: "lane-label", x: 12, y: top + 13 }, lane.zone),
        lines.map((line, n) =>
          s("text", { class: "lane-name", x: 12, y: top + 29 + 13 * n }, line),
        ),
      ),
    );
  });
  const edges = s("g", { class: "edges" });
  for (const [edge, at] of labelPositions(trace.edges, geometry.place)) {
    edges.append(edgeShape(edge, geometry.place, at, L));
  }
  svg.append(edges);
  const nodes = s("g", { class: "lots" });
  for (const lot of trace.lots) nodes.append(lotNode(lot, geometry.place.get(lot.lot_id), L));
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
function lotNode(lot, p, L) {
  const name = lotName(lot, L);
  const amount = lot.quantity_in + " " + lot.unit;
  const lost = lot.origin === "lost";
  const values = {
    name: name,
    id: shortId(lot.lot_id),
    amount: amount,
    status: L.term("status", lot.goods_status),
    zone: lot.zone,
    time: when(lot.occurred_at),
    on_hand: lot.on_hand,
  };
  const label = L.text(lost ? "node_lost" : "node", values);
  const status = lost ? L.text("lost_status") : values.status;
  const meta = L.text(lost ? "node_meta_lost" : "node_meta", values);
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

function edgeShape(edge, place, at, L) {
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
  const text = edgeText(edge, L);
  const ends = { text: text, from: shortId(edge.from), to: shortId(edge.to) };
  return s(
    "g",
    { class: "edge edge-" + kind, "data-from": edge.from, "data-to": edge.to },
    s("title", {}, L.text("edge_title", ends)),
    s("path", { d: d, "marker-end": "url(#arrow-" + kind + ")" }),
    s("text", { x: lx, y: ly - 4, "text-anchor": "middle" }, text),
  );
}

// An edge as its label says it: its kind in the page's language and the quantity, as answered.
export function edgeText(edge, L) {
  const kind = L.term("edge", edge.kind);
  return edge.quantity === null ? kind : kind + " " + edge.quantity;
}
