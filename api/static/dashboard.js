// The monitoring dashboard: asks the ledger's statistics routes with this tab's token and draws
// each answer as it is (docs/dashboard.md). Listeners are attached here (no inline handlers) and
// tooltips are drawn on the canvas (no HTML), so the page's strict CSP holds.

import { LABELS, LANGUAGES, keyLabel } from "./dashboard-labels.js";
import { applyLabels, keepLanguage, preferredLanguage, zoneName } from "./language.js";

const echarts = window.echarts; // static/echarts.min.js, loaded before this module
const LANGUAGE_KEY = "customs-ledger.dashboard.language";
const TOKEN_KEY = "customs-ledger.dashboard.token";
// Relative to this page, so the dashboard also works behind a path prefix.
const ROOT = new URL("../", window.location.href);
const GROUPS = ["month", "zone", "trade_mode"];
const PAGES = 20; // at most 20 pages of 1,000 overdue bills or checklists are counted
const COLOURS = { green: "#3a9d5d", yellow: "#e0a526", red: "#d64541" };

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("filters"),
  token: $("token"),
  forget: $("forget"),
  zone: $("zone"),
  from: $("from"),
  to: $("to"),
  group: $("group"),
  lang: $("lang"),
  status: $("status"),
  problem: $("problem"),
  board: $("board"),
  bills: $("count-bills"),
  checklists: $("count-checklists"),
};
const CHARTS = ["declarations", "channels", "clearance", "stock", "overdue"];

// What the page shows, for people and for tests: each chart's ECharts instance, the answers it
// was drawn from and the request that got them.
const dashboard = {
  language: "en",
  shownAt: null,
  charts: {},
  answers: null,
  sources: {},
  zones: [],
};
window.dashboard = dashboard;

let runs = 0; // a later query wins over an earlier one still in flight

// -- language -------------------------------------------------------------------------------

function label(key) {
  return keyLabel(dashboard.language, key);
}

function setLanguage(language, keep) {
  dashboard.language = LANGUAGES.includes(language) ? language : "en";
  if (keep) keepLanguage(LANGUAGE_KEY, dashboard.language);
  document.documentElement.lang = dashboard.language;
  document.title = label("page_title");
  ui.lang.value = dashboard.language;
  applyLabels(document, label);
  fillZones();
  if (dashboard.answers) {
    draw();
    showStatus();
  }
}

// When the figures shown were asked for, in the page's language.
function showStatus() {
  const time = dashboard.shownAt.toLocaleTimeString(dashboard.language, { hour12: false });
  ui.status.textContent = label("shown").replace("{time}", time);
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
function forgetToken() {
  try {
    window.sessionStorage.removeItem(TOKEN_KEY);
  } catch (_) {
    /* nothing kept */
  }
  ui.token.value = "";
  runs++;
  dashboard.answers = null;
  ui.board.hidden = true;
  document.body.dataset.state = "idle";
  ui.token.focus();
}

// -- filters --------------------------------------------------------------------------------

function fillZones() {
  const chosen = ui.zone.value;
  const all = document.createElement("option");
  all.value = "";
  all.dataset.label = "all_zones";
  all.textContent = label("all_zones");
  const options = dashboard.zones.map((z) => {
    const option = document.createElement("option");
    option.value = z.code;
    option.textContent = (z.code + " " + zoneName(z, dashboard.language)).trim();
    return option;
  });
  ui.zone.replaceChildren(all, ...options);
  ui.zone.value = chosen;
}

async function loadZones() {
  try {
    const response = await fetch(new URL("v1/zones", ROOT), {
      headers: { Accept: "application/json" },
    });
    if (response.ok) dashboard.zones = (await response.json()).items || [];
  } catch (_) {
    /* the zone list is a convenience: the filter still takes the page's ?zone= */
  }
  const wanted = new URLSearchParams(window.location.search).get("zone") || "";
  if (wanted && !dashboard.zones.some((z) => z.code === wanted)) {
    dashboard.zones.push({ code: wanted, name: "" });
  }
  fillZones();
  ui.zone.value = wanted;
}

// A China day (YYYY-MM-DD) as the RFC 3339 instant it starts at; `after` days later.
function chinaMidnight(day, after) {
  const [y, m, d] = day.split("-").map(Number);
  const start = new Date(Date.UTC(y, m - 1, d + after));
  return start.toISOString().slice(0, 10) + "T00:00:00+08:00";
}

function filters() {
  const found = {};
  if (ui.zone.value) found.zone = ui.zone.value;
  if (ui.from.value) found.from = chinaMidnight(ui.from.value, 0);
  if (ui.to.value) found.to = chinaMidnight(ui.to.value, 1); // the last day is included
  return found;
}

function prefill() {
  const asked = new URLSearchParams(window.location.search);
  if (/^\d{4}-\d\d-\d\d$/.test(asked.get("from") || "")) ui.from.value = asked.get("from");
  if (/^\d{4}-\d\d-\d\d$/.test(asked.get("to") || "")) ui.to.value = asked.get("to");
  if (GROUPS.includes(asked.get("group_by"))) ui.group.value = asked.get("group_by");
}

function remember() {
  // The address keeps the filters, never the token.
  const shown = new URLSearchParams();
  if (ui.zone.value) shown.set("zone", ui.zone.value);
  if (ui.from.value) shown.set("from", ui.from.value);
  if (ui.to.value) shown.set("to", ui.to.value);
  shown.set("group_by", ui.group.value);
  window.history.replaceState(null, "", "?" + shown.toString());
}

// -- asking the ledger ----------------------------------------------------------------------

class Problem extends Error {
  constructor(status, body) {
    super((body && body.title) || "HTTP " + status);
    this.status = status;
    this.body = body || {};
  }
}

function address(path, params) {
  const url = new URL(path, ROOT);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url;
}

function shown(url) {
  // As typed: the API reads a `+` that arrives as a space as `+` (docs/api.md, "Time").
  const query = url.search.replace(/%3A/g, ":").replace(/%2B/g, "+");
  return "GET /" + url.pathname.replace(ROOT.pathname, "") + query;
}

async function ask(url, token) {
  const response = await fetch(url, {
    headers: {
      Authorization: "Bearer " + token,
      Accept: "application/json, application/problem+json",
      // A refusal (problem+json) comes back in the page's language, not the browser's.
      "Accept-Language": dashboard.language,
    },
  });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) throw new Problem(response.status, body);
  return body;
}

// Every item of a list route, page after page (at most PAGES of them).
async function every(path, params, token) {
  const items = [];
  let cursor = null;
  for (let n = 0; n < PAGES; n++) {
    const url = address(path, { ...params, limit: "1000", ...(cursor ? { cursor } : {}) });
    const body = await ask(url, token);
    items.push(...body.items);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return items;
}

async function run() {
  const token = ui.token.value.trim();
  hideProblem();
  if (!token) {
    showProblem(null, { title: label("need_token"), detail: label("need_token_detail") });
    ui.token.focus();
    return;
  }
  keepToken(token);
  remember();
  const mine = ++runs;
  const period = filters();
  const group = ui.group.value;
  const zoneOnly = ui.zone.value ? { zone: ui.zone.value } : {};
  const urls = {
    declarations: address("v1/stats", { group_by: group, ...period }),
    channels: address("v1/stats/channels", { group_by: group, ...period }),
    clearance: address("v1/stats/clearance-time", { group_by: "channel", ...period }),
    stock: address("v1/stats/stock", zoneOnly),
    overdue: address("v1/stats", { group_by: "zone", ...period }),
  };
  document.body.dataset.state = "loading";
  ui.status.textContent = label("loading");
  try {
    const [declarations, channels, clearance, stock, overdue, bills, checklists] =
      await Promise.all([
        ask(urls.declarations, token),
        ask(urls.channels, token),
        ask(urls.clearance, token),
        ask(urls.stock, token),
        ask(urls.overdue, token),
        every("v1/tax-bills", { status: "overdue" }, token),
        every("v1/checklists", { overdue: "true", ...zoneOnly }, token),
      ]);
    if (mine !== runs) return;
    dashboard.answers = {
      declarations: declarations.items,
      channels: channels.items,
      clearance: clearance.items,
      stock: stock.items,
      overdue: overdue.items,
      // GET /v1/tax-bills has no zone filter: the bills of the chosen zone are counted here.
      overdue_bills: bills.filter((b) => !ui.zone.value || b.zone === ui.zone.value).length,
      overdue_checklists: checklists.length,
    };
    dashboard.sources = {};
    for (const [name, url] of Object.entries(urls)) dashboard.sources[name] = url.toString();
    for (const name of CHARTS) $("src-" + name).textContent = shown(urls[name]);
    ui.board.hidden = false;
    draw();
    dashboard.shownAt = new Date();
    showStatus();
    document.body.dataset.state = "ready";
  } catch (error) {
    if (mine !== runs) return;
    ui.status.textContent = "";
    document.body.dataset.state = "error";
    if (error instanceof Problem) showProblem(error.status, error.body);
    else showProblem(null, { title: String(error) });
  }
}

// -- problems -------------------------------------------------------------------------------

function hideProblem() {
  ui.problem.hidden = true;
  ui.problem.replaceChildren();
}

function showProblem(status, body) {
  const heading = document.createElement("h2");
  heading.textContent = (status ? status + " " : "") + (body.title || "");
  const parts = [heading];
  const hint = status && LABELS[dashboard.language][status];
  for (const text of [body.detail, hint]) {
    if (!text) continue;
    const p = document.createElement("p");
    p.textContent = text;
    parts.push(p);
  }
  for (const e of body.errors || []) {
    const p = document.createElement("p");
    p.textContent = e.loc + ": " + e.msg;
    parts.push(p);
  }
  ui.problem.replaceChildren(...parts);
  ui.problem.hidden = false;
}

// -- charts ---------------------------------------------------------------------------------

// A chart's instance, made again when the language changed: ECharts's own texts (the
// description it gives screen readers) follow the locale it was made with.
const chartLanguage = {};
function chart(name) {
  if (dashboard.charts[name] && chartLanguage[name] !== dashboard.language) {
    dashboard.charts[name].dispose();
    delete dashboard.charts[name];
  }
  if (!dashboard.charts[name]) {
    const locale = dashboard.language === "zh-CN" ? "ZH" : "EN";
    dashboard.charts[name] = echarts.init($("chart-" + name), null, {
      renderer: "canvas",
      locale: locale,
    });
    chartLanguage[name] = dashboard.language;
  }
  return dashboard.charts[name];
}

const percent = (value) => (Number(value) * 100).toFixed(1) + "%";

// The parts every chart shares: canvas tooltips (no HTML under the CSP), the legend, and a
// "no data" title over an empty answer.
function frame(rows, extra) {
  return {
    animation: false,
    aria: { enabled: true },
    tooltip: { trigger: "axis", renderMode: "richText", confine: true },
    legend: { bottom: 0, type: "scroll" },
    grid: { left: 64, right: 64, top: 40, bottom: 64 },
    title: {
      show: rows.length === 0,
      text: label("no_data"),
      left: "center",
      top: "middle",
      textStyle: { color: "#777", fontSize: 14, fontWeight: "normal" },
    },
    ...extra,
  };
}

// A key on an axis: its short name where it has one (the channels), else its name.
function axisLabel(key) {
  return LABELS[dashboard.language][key + "_short"] || label(key);
}

function categories(keys) {
  return {
    type: "category",
    data: keys,
    axisLabel: { formatter: axisLabel, interval: 0, width: 140, overflow: "break" },
  };
}

// Each option names its series by `id` (the field of the answer it draws) and takes the
// field's values as they are: counts as numbers, decimal strings as strings.
const DRAW = {
  declarations(rows) {
    return frame(rows, {
      xAxis: categories(rows.map((r) => r.key)),
      yAxis: [
        { type: "value", name: label("declarations"), minInterval: 1 },
        { type: "value", name: label("value_cny") },
      ],
      series: [
        {
          id: "declarations",
          name: label("declarations"),
          type: "bar",
          data: rows.map((r) => r.declarations),
        },
        {
          id: "value_cny",
          name: label("value_cny"),
          type: "line",
          yAxisIndex: 1,
          data: rows.map((r) => r.value_cny),
        },
      ],
    });
  },
  channels(rows) {
    const bars = ["green", "yellow", "red"].map((channel) => ({
      id: channel,
      name: label(channel),
      type: "bar",
      stack: "channels",
      itemStyle: { color: COLOURS[channel] },
      data: rows.map((r) => r[channel]),
    }));
    return frame(rows, {
      xAxis: categories(rows.map((r) => r.key)),
      yAxis: [
        { type: "value", name: label("declarations"), minInterval: 1 },
        { type: "value", name: label("inspection_rate"), axisLabel: { formatter: percent } },
      ],
      series: [
        ...bars,
        {
          id: "inspection_rate",
          name: label("inspection_rate"),
          type: "line",
          yAxisIndex: 1,
          data: rows.map((r) => r.inspection_rate),
        },
      ],
    });
  },
  clearance(rows) {
    return frame(rows, {
      xAxis: categories(rows.map((r) => r.key)),
      yAxis: { type: "value", name: label("hours") },
      series: ["p50_hours", "p90_hours"].map((field) => ({
        id: field,
        name: label(field),
        type: "bar",
        data: rows.map((r) => r[field]),
        label: { show: true, position: "top" },
      })),
    });
  },
  stock(rows) {
    const zones = [...new Set(rows.map((r) => r.zone))].sort();
    const kinds = [...new Set(rows.map((r) => r.goods_status + "|" + r.unit))].sort();
    const series = kinds.map((kind) => {
      const [status, unit] = kind.split("|");
      const of = new Map(
        rows.filter((r) => r.goods_status === status && r.unit === unit).map((r) => [r.zone, r])
      );
      return {
        id: "stock:" + kind,
        name: label(status) + " " + unit,
        type: "bar",
        data: zones.map((z) => (of.has(z) ? of.get(z).on_hand : null)),
      };
    });
    return frame(rows, {
      xAxis: categories(zones),
      yAxis: { type: "value", name: label("on_hand") },
      series,
    });
  },
  overdue(rows) {
    return frame(rows, {
      xAxis: categories(rows.map((r) => r.key)),
      yAxis: { type: "value", name: label("overdue_cny") },
      series: [
        {
          id: "overdue_cny",
          name: label("overdue_cny"),
          type: "bar",
          itemStyle: { color: COLOURS.red },
          data: rows.map((r) => r.overdue_cny),
        },
      ],
    });
  },
};

function draw() {
  const answers = dashboard.answers;
  for (const name of CHARTS) {
    // notMerge: a new answer replaces the old series, never mixes with them.
    chart(name).setOption(DRAW[name](answers[name]), { notMerge: true });
  }
  ui.bills.textContent = String(answers.overdue_bills);
  ui.checklists.textContent = String(answers.overdue_checklists);
}

// -- start ----------------------------------------------------------------------------------

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
ui.forget.addEventListener("click", forgetToken);
ui.lang.addEventListener("change", () => setLanguage(ui.lang.value, true));
window.addEventListener("resize", () => {
  for (const instance of Object.values(dashboard.charts)) instance.resize();
});

prefill();
setLanguage(preferredLanguage(LANGUAGE_KEY), false);
ui.token.value = storedToken();
loadZones().then(() => {
  if (ui.token.value) run();
});
