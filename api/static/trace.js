// The trace viewer: asks GET /v1/trace with this tab's token and draws the answer. Listeners
// are attached here (no inline handlers), so the page's strict CSP holds. Its words are in
// zh-CN or en (trace-labels.js; the choice is kept in localStorage); the answer's figures,
// codes and names are drawn as they are in either.

import { chain, edgeText, layout } from "./chain.js";
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
import { applyLabels, keepLanguage, preferredLanguage, zoneName } from "./language.js";
import { LANGUAGES, labeller } from "./trace-labels.js";

const TOKEN_KEY = "customs-ledger.trace-viewer.token";
const LANGUAGE_KEY = "customs-ledger.trace-viewer.language";
// Relative to this page, so the viewer also works behind a path prefix.
const API = new URL("../v1/trace", window.location.href);
const ZONES = new URL("../v1/zones", window.location.href);
const DIRECTIONS = ["both", "upstream", "downstream"];

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("query"),
  lang: $("lang"),
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
let L = labeller("en"); // the page's words in its language
let zones = new Map(); // code -> zone of GET /v1/zones (names in both languages)
let view = null; // the answer drawn: {trace, lots: Map lot_id -> lot}
let selected = null; // the lot whose details are shown
let shown = null; // the problem shown: {problem} from the ledger, or {own: [title, detail]}
let asking = null; // the query in flight: {ref, direction}
let runs = 0; // a later query wins over an earlier one still in flight

// -- language -------------------------------------------------------------------------------

function setLanguage(language, keep) {
  const chosen = LANGUAGES.includes(language) ? language : "en";
  if (keep) keepLanguage(LANGUAGE_KEY, chosen);
  L = labeller(chosen);
  document.documentElement.lang = chosen;
  document.title = L.text("page_title");
  ui.lang.value = chosen;
  applyLabels(document, pageLabel);
  showTokenState();
  if (asking) showAsking();
  if (shown) redrawProblem();
  if (view) draw(view.trace);
}

// A label of the page's HTML: a sentence (`run`), or a key of the ledger's (`direction.both`).
function pageLabel(key) {
  const [group, name] = key.split(".");
  return name === undefined ? L.text(key) : L.term(group, name);
}

// The zones' names (a lane's, a lot's): a convenience, so a failure only leaves the codes.
async function loadZones() {
  try {
    const response = await fetch(ZONES, { headers: { Accept: "application/json" } });
    if (response.ok) {
      const items = (await response.json()).items || [];
      zones = new Map(items.map((z) => [z.code, z]));
    }
  } catch (_) {
    /* the codes alone */
  }
}

function zoneText(code) {
  const name = zoneName(zones.get(code), L.language);
  return name ? code + " " + name : code;
}

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
  ui.tokenState.textContent = L.text(storedToken() ? "token_kept" : "token_none");
}
function forgetToken() {
  try {
    window.sessionStorage.removeItem(TOKEN_KEY);
  } catch (_) {
    /* nothing kept */
  }
  ui.token.value = "";
  runs++; // an answer still in flight is not drawn
  asking = null;
  ui.status.textContent = "";
  view = null;
  selected = null;
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
    showOwnProblem("need_token", "need_token_detail");
    ui.token.focus();
    return;
  }
  if (!ref) {
    showOwnProblem("need_ref", "need_ref_detail");
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
  asking = { ref: ref, direction: direction };
  showAsking();
  ui.result.hidden = true;
  ui.warning.hidden = true;
  let response;
  let body = null;
  try {
    response = await fetch(url, {
      headers: {
        Authorization: "Bearer " + token,
        Accept: "application/json, application/problem+json",
        // An error's title and detail come back in the page's language (problem+json).
        "Accept-Language": L.language,
      },
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    body = await response.json().catch(() => null);
  } catch (err) {
    if (mine !== runs) return;
    asking = null;
    ui.status.textContent = "";
    showOwnProblem("no_answer", null, String(err));
    return;
  }
  if (mine !== runs) return;
  asking = null;
  ui.status.textContent = "";
  if (!response.ok) {
    showProblem(
      body && typeof body === "object" && body.title
        ? body
        : { status: response.status, title: response.statusText || L.text("error") },
    );
    return;
  }
  selected = null;
  draw(body);
}

function showAsking() {
  const direction = L.term("direction", asking.direction);
  ui.status.textContent = L.text("tracing", { ref: asking.ref, direction: direction });
}

function hideProblem() {
  shown = null;
  ui.problem.hidden = true;
  clear(ui.problem);
}

// A problem of the page's own (no token, no reference, no answer): written again in the
// language chosen later.
function showOwnProblem(title, detail, said) {
  showProblem(null, { own: [title, detail], said: said });
}

function redrawProblem() {
  showProblem(shown.problem, shown);
}

// The ledger's problem+json as it answered (in the language the page asked in) with the
// page's hint for its status in the page's language.
function showProblem(answer, own) {
  shown = own && own.own ? own : { problem: answer };
  const problem =
    own && own.own
      ? { title: L.text(own.own[0]), detail: own.said || (own.own[1] && L.text(own.own[1])) }
      : answer;
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
  if ([401, 403, 404, 422].includes(problem.status)) {
    ui.problem.append(h("p", { class: "hint" }, L.text(String(problem.status))));
  }
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
  ui.chain.append(chain(trace, geometry, select, L, zones));
  fillTimeline(trace);
  ui.result.hidden = false;
  if (selected && view.lots.has(selected)) select(selected);
  else showDetails(null);
}

function summary(trace) {
  const kinds = new Map();
  for (const m of trace.matched) kinds.set(m.kind, (kinds.get(m.kind) || 0) + 1);
  const matched = [...kinds]
    .map(([kind, n]) => L.text("matched", { n: n, kind: L.term("match", kind) }))
    .join(L.text("matched_join"));
  return L.text("summary", {
    ref: trace.ref,
    direction: L.term("direction", trace.direction),
    matched: matched,
    lots: trace.lots.length,
    zones: trace.zones.length,
    edges: trace.edges.length,
    events: trace.events.length,
  });
}

function fillTimeline(trace) {
  clear(ui.timeline);
  for (const e of trace.events) {
    const lot = view.lots.get(e.lot_id);
    const name = zoneName(zones.get(e.zone), L.language);
    ui.timeline.append(
      h(
        "tr",
        { "data-lot-id": e.lot_id },
        h("td", { class: "position" }, String(e.position)),
        h("td", { title: L.text("recorded", { time: e.recorded_at }) }, when(e.occurred_at)),
        h("td", { class: "zone", title: name || null }, e.zone),
        h("td", { class: "type type-" + e.type, "data-type": e.type }, L.term("type", e.type)),
        h("td", {}, lotButton(e.lot_id, lot ? lotName(lot, L) : null)),
        h("td", { class: "qty" }, e.quantity + (lot ? " " + lot.unit : "")),
        h("td", { class: "documents" }, e.documents.map((d) => documentText(d, L)).join("; ")),
        h("td", { class: "actor" }, actorText(e.actor, L)),
      ),
    );
  }
}

function lotButton(lotId, name) {
  const id = shortId(lotId);
  return h(
    "button",
    {
      type: "button",
      class: "link",
      "data-lot-id": lotId,
      "aria-label": name
        ? L.text("show_named_lot", { id: lotId, name: name })
        : L.text("show_lot", { id: lotId }),
    },
    L.text("lot", { id: id }),
  );
}

// -- selecting a lot ------------------------------------------------------------------------

function select(lotId) {
  if (!view || !view.lots.has(lotId)) return;
  selected = lotId;
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
    ui.details.append(h("p", { class: "hint" }, L.text("no_lot")));
    return;
  }
  const trace = view.trace;
  const events = trace.events.filter((e) => e.lot_id === lot.lot_id);
  const name = lotName(lot, L);
  const fields = [
    ["field_lot", lot.lot_id],
    ["field_zone", zoneText(lot.zone)],
    ["field_book", lot.account_book],
    ["field_item", lot.item_no + " \u00b7 " + name],
    ["field_hs_code", lot.hs_code],
    ["field_status", L.term("status", lot.goods_status)],
    ["field_quantity_in", lot.quantity_in + " " + lot.unit],
    ["field_on_hand", lot.on_hand + " " + lot.unit],
    ["field_origin", lot.origin === "lost" ? L.text("lost_origin") : L.term("origin", lot.origin)],
    ["field_movement", lot.movement_id],
    ["field_since", when(lot.occurred_at)],
  ];
  const related = (end, other) =>
    trace.edges
      .filter((e) => e[end] === lot.lot_id && view.lots.has(e[other]))
      .map((e) =>
        h(
          "li",
          {},
          lotButton(e[other]),
          L.text("related", { zone: view.lots.get(e[other]).zone, edge: edgeText(e, L) }),
        ),
      );
  const parents = related("to", "from");
  const children = related("from", "to");
  build(ui.details, {}, [
    h("h3", { id: "details-lot" }, name + " \u00b7 " + L.text("lot", { id: shortId(lot.lot_id) })),
    h("dl", {}, fields.map(([k, v]) => [h("dt", { "data-field": k }, L.text(k)), h("dd", {}, v)])),
    parents.length ? [h("h3", {}, L.text("came_from")), h("ul", {}, parents)] : null,
    children.length ? [h("h3", {}, L.text("went_into")), h("ul", {}, children)] : null,
    h("h3", {}, L.text("events")),
    h(
      "ol",
      { class: "lot-events" },
      events.map((e) =>
        h("li", {}, when(e.occurred_at) + " \u00b7 " + L.term("type", e.type) + " " + e.quantity +
          " \u00b7 " + actorText(e.actor, L)),
      ),
    ),
    h("h3", {}, L.text("documents")),
    h("ul", { class: "lot-documents" }, uniqueDocuments(events).map((d) =>
      h("li", { title: d.id }, documentText(d, L)))),
  ]);
}

// -- start ----------------------------------------------------------------------------------

async function start() {
  setLanguage(preferredLanguage(LANGUAGE_KEY), false);
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
  ui.lang.addEventListener("change", () => setLanguage(ui.lang.value, true));
  const follow = (event) => {
    const button = event.target.closest("button[data-lot-id]");
    if (button) select(button.getAttribute("data-lot-id"));
  };
  ui.timeline.addEventListener("click", follow);
  ui.details.addEventListener("click", follow);
  await loadZones();
  if (view) draw(view.trace); // drawn before the names came
  if (ui.ref.value && ui.token.value) run();
}

start();
