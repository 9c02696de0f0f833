// What the ledger's pages share of their two languages (issue #20): which they are, which one
// a browser starts in and keeps, how a label is looked up and written into the page, and a
// zone's name in the page's language. Each page keeps its own labels (dashboard-labels.js,
// trace-labels.js); the figures and codes of the ledger are never translated.

export const LANGUAGES = ["zh-CN", "en"];

// The language a page starts in: the one kept under `storageKey`, else the browser's (any
// Chinese is zh-CN, anything else en).
export function preferredLanguage(storageKey) {
  try {
    const kept = window.localStorage.getItem(storageKey);
    if (LANGUAGES.includes(kept)) return kept;
  } catch (_) {
    /* storage disabled */
  }
  const asked = (navigator.language || "").toLowerCase();
  return asked === "zh" || asked.startsWith("zh-") ? "zh-CN" : "en";
}

// The language chosen, remembered for the next visit (this page view only without storage).
export function keepLanguage(storageKey, language) {
  try {
    window.localStorage.setItem(storageKey, language);
  } catch (_) {
    /* storage disabled */
  }
}

const own = (table, key) => Object.prototype.hasOwnProperty.call(table || {}, key);

// `key`'s label in `language`; else the English one; else the key itself (a code of the
// ledger the labels do not name is shown as it is).
export function lookup(labels, language, key) {
  if (own(labels[language], key)) return labels[language][key];
  if (own(labels.en, key)) return labels.en[key];
  return String(key);
}

// A label's `{name}` places filled with `values` (text, never markup).
export function fill(text, values) {
  return text.replace(/\{([a-z_]+)\}/g, (all, name) => (own(values, name) ? values[name] : all));
}

// Writes the page's own words: `data-label` the element's text, `data-label-placeholder` and
// `data-label-aria` its placeholder and aria-label, `data-label-title` its title.
export function applyLabels(root, label) {
  const attributes = [
    ["labelPlaceholder", "placeholder"],
    ["labelAria", "aria-label"],
    ["labelTitle", "title"],
  ];
  for (const element of root.querySelectorAll("[data-label]")) {
    element.textContent = label(element.dataset.label);
  }
  for (const [data, attribute] of attributes) {
    const selector = "[data-" + data.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()) + "]";
    for (const element of root.querySelectorAll(selector)) {
      element.setAttribute(attribute, label(element.dataset[data]));
    }
  }
}

// A zone of GET /v1/zones by its name in the page's language: `name_zh` in Chinese (its
// English name where it has none), `name` in English.
export function zoneName(zone, language) {
  if (!zone) return "";
  return (language === "zh-CN" && zone.name_zh) || zone.name || "";
}
