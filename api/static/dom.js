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
export const lotName = (lot) => lot.name || "item " + lot.item_no;
// Business times keep the offset the client sent: show it, never convert it.
export function when(text) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$/.exec(text || "");
  return m ? m[1] + " " + m[2] + (m[4] ? " " + m[4] : "") : String(text);
}
export const instant = (text) => Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
// A document without a number of its own (a processing run) is named by its short id.
export const documentText = (d) =>
  d.kind + " " + (d.number && d.number !== d.kind ? d.number : shortId(d.id));
export function actorText(actor) {
  const bound = actor.enterprise || actor.zone;
  return actor.name + " (" + actor.role + (bound ? ", " + bound : "") + ")";
}
export function uniqueDocuments(events) {
  const seen = new Map();
  for (const e of events) for (const d of e.documents) seen.set(d.kind + "\u0000" + d.id, d);
  return [...seen.values()];
}
