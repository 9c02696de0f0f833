// The trace viewer: asks GET /v1/trace with this tab's token and draws the answer. Listeners
// are attached here (no inline handlers), so the page's strict CSP holds.

import { chain, layout } from "./chain.js";
import {
  actorText,
  build,
  clear,
  documentText,
  h,
  lotName,
  shortId,
  uniqueDocuments,
  when,
} from "./dom.js";

const TOKEN_KEY = "customs-ledger.trace-viewer.token";
// Relative to this page, so the viewer also works behind a path prefix.
const API = new URL("../v1/trace", window.location.href);
const DIRECTIONS = ["both", "upstream", "downstream"];
const HINTS = {
  401: "The token is missing, unknown or revoked: enter another one (an administrator " +
    "issues them with `customs-ledger keys issue`).",
  403: "This token's role may not read traces.",
  404: "No goods you may see carry this reference.",
  422: "The query is not valid: see the fields below.",
};

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("query"),
  token: $("token"),
  tokenState: $("token-state"),
  forget: $("forget"),
  ref: $("ref"),
  direction: $("direction"),
  status: $("status"),
  problem: $("problem"),
  warning: $("warning"),
  result: $("result"),
  summary: $("summary"),
  chain: $("chain-scroll"),
  details: $("details-body"),
  timeline: document.querySelector("#timeline tbody"),
};
let view = null; // the answer drawn: {trace, lots: Map lot_id -> lot}
let runs = 0; // a later query wins over an earlier one still in flight

// -- the token: this tab's session storage only ---------------------------------------------

function storedToken() {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (_) {
    return "";
  }
}
function keepToken(token) {
  try {
    window.sessionStorage.setItem(TOKEN_KEY, token);
  } catch (_) {
    /* storage disabled: the token lives in the field only */
  }
}
function showTokenState() {
  ui.tokenState.textContent = storedToken()
    ? "Kept in this tab's session storage until the tab closes."
    : "No token kept.";
}
function forgetToken() {
  try {
    window.sessionStorage.removeItem(TOKEN_KEY);
  } catch (_) {
    /* nothing kept */
  }
  ui.token.value = "";
  runs++; // an answer still in flight is not drawn
  view = null;
  ui.result.hidden = true;
  ui.warning.hidden = true;
  showTokenState();
  ui.token.focus();
}

// -- asking the ledger ----------------------------------------------------------------------

async function run() {
  const token = ui.token.value.trim();
  const ref = ui.ref.value.trim();
  const direction = ui.direction.value;
  hideProblem();
  if (!token) {
    showProblem({ title: "A token is needed", detail: "Enter a bearer token to trace." });
    ui.token.focus();
    return;
  }
  if (!ref) {
    showProblem({ title: "A reference is needed", detail: "Enter a reference to trace." });
    ui.ref.focus();
    return;
  }
  keepToken(token);
  showTokenState();
  const query = new URLSearchParams({ ref: ref, direction: direction }).toString();
  // The address keeps what was asked, never the token.
  window.history.replaceState(null, "", "?" + query);
  const url = new URL(API);
  url.search = query;
  const mine = ++runs;
  ui.status.textContent = "Tracing " + ref + " (" + direction + ")\u2026";
  ui.result.hidden = true;
  ui.warning.hidden = true;
  let response;
  let body = null;
  try {
    response = await fetch(url, {
      headers: {
        Authorization: "Bearer " + token,
        Accept: "application/json, application/problem+json",
      },
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    body = await response.json().catch(() => null);
  } catch (err) {
    if (mine !== runs) return;
    ui.status.textContent = "";
    showProblem({ title: "The ledger did not answer", detail: String(err) });
    return;
  }
  if (mine !== runs) return;
  ui.status.textContent = "";
  if (!response.ok) {
    showProblem(
      body && typeof body === "object" && body.title
        ? body
        : { status: response.status, title: response.statusText || "Error" },
    );
    return;
  }
  draw(body);
}

function hideProblem() {
  ui.problem.hidden = true;
  clear(ui.problem);
}

function showProblem(problem) {
  clear(ui.problem);
  const status = problem.status ? problem.status + " " : "";
  ui.problem.append(h("h2", {}, status + problem.title));
  if (problem.detail && problem.detail !== problem.title) {
    ui.problem.append(h("p", { class: "detail" }, problem.detail));
  }
  if (Array.isArray(problem.errors) && problem.errors.length) {
    ui.problem.append(
      h("ul", {}, problem.errors.map((e) => h("li", {}, h("code", {}, e.loc), ": ", e.msg))),
    );
  }
  if (HINTS[problem.status]) ui.problem.append(h("p", { class: "hint" }, HINTS[problem.status]));
  if (problem.type) ui.problem.append(h("p", { class: "hint" }, h("code", {}, problem.type)));
  ui.problem.hidden = false;
}

// -- drawing --------------------------------------------------------------------------------

function draw(trace) {
  const geometry = layout(trace);
  view = { trace: trace, lots: new Map(trace.lots.map((l) => [l.lot_id, l])) };
  ui.warning.hidden = !trace.truncated;
  ui.summary.textContent = summary(trace);
  clear(ui.chain);
  ui.chain.append(chain(trace, geometry, select));
  fillTimeline(trace);
  showDetails(null);
  ui.result.hidden = false;
}

function summary(trace) {
  const kinds = new Map();
  for (const m of trace.matched) kinds.set(m.kind, (kinds.get(m.kind) || 0) + 1);
  const matched = [...kinds].map(([kind, n]) => n + " " + kind).join(", ");
  return (
    "\u201c" + trace.ref + "\u201d (" + trace.direction + ") matched " + matched + ": " +
    trace.lots.length + " lots in " + trace.zones.length + " zones, " +
    trace.edges.length + " edges, " + trace.events.length + " events."
  );
}

function fillTimeline(trace) {
  clear(ui.timeline);
  for (const e of trace.events) {
    const lot = view.lots.get(e.lot_id);
    ui.timeline.append(
      h(
        "tr",
        { "data-lot-id": e.lot_id },
        h("td", {}, String(e.position)),
        h("td", { title: "recorded " + e.recorded_at }, when(e.occurred_at)),
        h("td", {}, e.zone),
        h("td", { class: "type type-" + e.type }, e.type),
        h("td", {}, lotButton(e.lot_id, lot ? lotName(lot) : null)),
        h("td", { class: "qty" }, e.quantity + (lot ? " " + lot.unit : "")),
        h("td", { class: "documents" }, e.documents.map(documentText).join("; ")),
        h("td", { class: "actor" }, actorText(e.actor)),
      ),
    );
  }
}

function lotButton(lotId, name) {
  return h(
    "button",
    {
      type: "button",
      class: "link",
      "data-lot-id": lotId,
      "aria-label": "Show lot " + lotId + (name ? " (" + name + ")" : ""),
    },
    "lot " + shortId(lotId),
  );
}

// -- selecting a lot ------------------------------------------------------------------------

function select(lotId) {
  if (!view || !view.lots.has(lotId)) return;
  for (const node of document.querySelectorAll("svg#chain .lot")) {
    const on = node.getAttribute("data-lot-id") === lotId;
    node.classList.toggle("selected", on);
    node.setAttribute("aria-pressed", on ? "true" : "false");
  }
  for (const edge of document.querySelectorAll("svg#chain .edge")) {
    const on = edge.getAttribute("data-from") === lotId || edge.getAttribute("data-to") === lotId;
    edge.classList.toggle("related", on);
  }
  for (const row of ui.timeline.rows) {
    row.classList.toggle("selected", row.getAttribute("data-lot-id") === lotId);
  }
  showDetails(view.lots.get(lotId));
}

function showDetails(lot) {
  clear(ui.details);
  if (!lot) {
    ui.details.append(h("p", { class: "hint" }, "No lot selected."));
    return;
  }
  const trace = view.trace;
  const events = trace.events.filter((e) => e.lot_id === lot.lot_id);
  const fields = [
    ["Lot", lot.lot_id],
    ["Zone", lot.zone],
    ["Account book", lot.account_book],
    ["Item", lot.item_no + " \u00b7 " + lotName(lot)],
    ["HS code", lot.hs_code],
    ["Goods status", lot.goods_status],
    ["Quantity in", lot.quantity_in + " " + lot.unit],
    ["On hand", lot.on_hand + " " + lot.unit],
    ["Made by", lot.origin === "lost" ? "lost in transit, written off by a stocktake" : lot.origin],
    ["Movement", lot.movement_id],
    ["Since", when(lot.occurred_at)],
  ];
  const related = (end, other) =>
    trace.edges
      .filter((e) => e[end] === lot.lot_id && view.lots.has(e[other]))
      .map((e) => {
        const quantity = e.quantity === null ? "" : " " + e.quantity;
        return h("li", {}, lotButton(e[other]), " " + view.lots.get(e[other]).zone +
          ", " + e.kind + quantity);
      });
  const parents = related("to", "from");
  const children = related("from", "to");
  build(ui.details, {}, [
    h("h3", { id: "details-lot" }, lotName(lot) + " \u00b7 lot " + shortId(lot.lot_id)),
    h("dl", {}, fields.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    parents.length ? [h("h3", {}, "Came from"), h("ul", {}, parents)] : null,
    children.length ? [h("h3", {}, "Went into"), h("ul", {}, children)] : null,
    h("h3", {}, "Events"),
    h(
      "ol",
      { class: "lot-events" },
      events.map((e) =>
        h("li", {}, when(e.occurred_at) + " \u00b7 " + e.type + " " + e.quantity + " \u00b7 " +
          actorText(e.actor)),
      ),
    ),
    h("h3", {}, "Documents"),
    h("ul", { class: "lot-documents" }, uniqueDocuments(events).map((d) =>
      h("li", { title: d.id }, documentText(d)))),
  ]);
}

// -- start ----------------------------------------------------------------------------------

function start() {
  const params = new URLSearchParams(window.location.search);
  ui.ref.value = params.get("ref") || "";
  if (DIRECTIONS.includes(params.get("direction"))) ui.direction.value = params.get("direction");
  ui.token.value = storedToken();
  showTokenState();
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  ui.forget.addEventListener("click", forgetToken);
  const follow = (event) => {
    const button = event.target.closest("button[data-lot-id]");
    if (button) select(button.getAttribute("data-lot-id"));
  };
  ui.timeline.addEventListener("click", follow);
  ui.details.addEventListener("click", follow);
  if (ui.ref.value && ui.token.value) run();
}

start();
