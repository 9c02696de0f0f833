// The trace viewer's DOM and text helpers. Elements are built with DOM calls and text nodes,
// never innerHTML, so nothing in an answer of the ledger is ever parsed as markup.

export const SVG_NS = "http://www.w3.org/2000/svg";

export function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
export const s = (tag, attrs, ...children) =>
  build(document.createElementNS(SVG_NS, tag), attrs, children);
export const clear = (element) => element.replaceChildren();

export const shortId = (id) => String(id).slice(0, 8);
export const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + "\u2026" : text);
// `L`: the page's labels in its language (trace-labels.js `labeller`).
export const lotName = (lot, L) => lot.name || L.text("item", { n: lot.item_no });
// Business times keep the offset the client sent: show it, never convert it.
export function when(text) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$/.exec(text || "");
  return m ? m[1] + " " + m[2] + (m[4] ? " " + m[4] : "") : String(text);
}
export const instant = (text) => Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
// A document without a number of its own (a processing run) is named by its short id.
export const documentText = (d, L) =>
  L.term("doc", d.kind) + " " + (d.number && d.number !== d.kind ? d.number : shortId(d.id));
export function actorText(actor, L) {
  const bound = actor.enterprise || actor.zone;
  const values = { name: actor.name, role: L.term("role", actor.role), bound: bound };
  return L.text(bound ? "actor_bound" : "actor", values);
}
// A text in at most `lines` lines of at most `width` columns (a Chinese character takes two):
// broken at spaces, or between any two Chinese characters; a line left over is cut with "…".
const WIDE = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef";
const WIDE_CHAR = new RegExp("[" + WIDE + "]");
const PIECES = new RegExp("[" + WIDE + "]|[^\\s" + WIDE + "]+\\s*|\\s+", "g");
export function wrap(text, width, lines) {
  const wide = (c) => (WIDE_CHAR.test(c) ? 2 : 1);
  const columns = (t) => [...t].reduce((n, c) => n + wide(c), 0);
  const out = [""];
  for (const piece of String(text).match(PIECES) || []) {
    const last = out[out.length - 1];
    if (last && columns(last + piece.trimEnd()) > width) out.push(piece.trimStart());
    else out[out.length - 1] = last + piece;
  }
  const found = out.map((l) => l.trimEnd()).filter(Boolean);
  const cut = (line, more) => {
    if (columns(line) <= width && !more) return line;
    let kept = "";
    for (const c of line) {
      if (columns(kept) + wide(c) + 1 > width) break;
      kept += c;
    }
    return kept.trimEnd() + "\u2026";
  };
  return found.slice(0, lines).map((l, i) => cut(l, i === lines - 1 && found.length > lines));
}
export function uniqueDocuments(events) {
  const seen = new Map();
  for (const e of events) for (const d of e.documents) seen.set(d.kind + "\u0000" + d.id, d);
  return [...seen.values()];
}
