// Shared helpers of the console's pages. Every value from AWS or from a run is put in the page as
// text (textContent, setAttribute on non-event attributes): the Content-Security-Policy requires
// Trusted Types, so an HTML string could not even be assigned.

export const body = document.body;
export const readOnly = body.dataset.readOnly === "1";
export const refreshMs = Number(body.dataset.refreshMs || 2000);
const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

const SAFE_URL = /^(https?:|mailto:|\/(?!\/)|#|\.\.?\/)/i;

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (/^on/i.test(name)) throw new Error("no event handler attributes");
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if ((name === "href" || name === "src") && !SAFE_URL.test(String(value))) continue;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, ...children);
  return node;
}

export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function answer(response) {
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    throw new ApiError(response.status, "BadResponse", `the console answered ${response.status}`);
  }
  if (!response.ok) throw new ApiError(response.status, data.error || "Error", data.message || "failed");
  return data;
}

export async function get(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (Array.isArray(value)) value.forEach((v) => query.append(key, v));
    else if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const url = query.toString() ? `${path}?${query}` : path;
  return answer(await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }));
}

// A list read again by a tick, a filter and a pager at once: answers can arrive out of order, and the
// last to arrive is not always the last asked for. latest() gives a reader whose call resolves to the
// answer only if no later call was made meanwhile (else to null: a newer answer is on its way).
export function latest() {
  let asked = 0;
  return async (path, params) => {
    const mine = ++asked;
    const data = await get(path, params);
    return mine === asked ? data : null;
  };
}

export async function post(path, params, payload) {
  const query = new URLSearchParams(params || {});
  const url = query.toString() ? `${path}?${query}` : path;
  return answer(
    await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: JSON.stringify(payload || {}),
    }),
  );
}

// A live page's loop: run `tick` every `ms` (never two at once), while it
// returns true; paused while the tab is hidden.
export function poll(tick, ms = refreshMs) {
  let stopped = false;
  let timer = null;
  const loop = async () => {
    timer = null;
    if (stopped) return;
    if (document.visibilityState === "hidden") {
      timer = setTimeout(loop, ms);
      return;
    }
    const began = performance.now();
    let again = true;
    try {
      again = await tick();
    } catch (error) {
      showError(error);
    }
    // fixed rate: the next tick starts `ms` after this one started (not after it ended)
    if (again !== false && !stopped) timer = setTimeout(loop, Math.max(0, ms - (performance.now() - began)));
  };
  timer = setTimeout(loop, ms);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

export function showError(error, where) {
  const box = where || document.getElementById("errors") || document.getElementById("main");
  const text = error instanceof ApiError ? `${error.code}: ${error.message}` : String(error && error.message ? error.message : error);
  const note = el("p", { class: "error", role: "alert" }, text);
  if (where) clear(where).append(note);
  else box.prepend(note);
  return note;
}

export function pad(n) {
  return String(n).padStart(2, "0");
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return "-";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function fmtNumber(value, digits = 2) {
  if (value === null || value === undefined) return "-";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits });
}

export function badge(status) {
  const s = String(status || "").toLowerCase().replace(/_/g, "-");
  return el("span", { class: `badge ${s}` }, String(status || "-"));
}

export function link(href, text) {
  return el("a", { href }, text);
}

export function executionHref(arn) {
  return `/states/executions/${arn}`;
}

export function machineHref(arn) {
  return `/states/statemachines/${arn}`;
}

export function table(columns, rows, options = {}) {
  const head = el("tr", {}, columns.map(([, title]) => el("th", { scope: "col" }, title)));
  const lines = rows.map((row, i) =>
    el(
      "tr",
      options.rowAttrs ? options.rowAttrs(row, i) : {},
      columns.map(([key]) => {
        const value = typeof key === "function" ? key(row) : row[key];
        return el("td", {}, value instanceof Node ? value : value === null || value === undefined ? "-" : String(value));
      }),
    ),
  );
  return el("table", { class: options.class || "grid" }, el("thead", {}, head), el("tbody", {}, lines));
}

export function section(title, ...children) {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}

export function prettyJson(text) {
  if (text === null || text === undefined) return "-";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (_) {
    return String(text);
  }
}

export function codeBlock(text, label) {
  return el("pre", { class: "code", "aria-label": label || null }, prettyJson(text));
}

export function pager(total, offset, limit, onPage) {
  const last = Math.max(0, Math.ceil(total / limit) - 1);
  const page = Math.floor(offset / limit);
  const prev = el("button", { type: "button", disabled: page <= 0 }, "‹ Previous");
  const next = el("button", { type: "button", disabled: page >= last }, "Next ›");
  prev.addEventListener("click", () => onPage(Math.max(0, offset - limit)));
  next.addEventListener("click", () => onPage(offset + limit));
  const first = total ? offset + 1 : 0;
  return el("div", { class: "pager" }, prev, el("span", {}, `${fmtNumber(first)}-${fmtNumber(Math.min(total, offset + limit))} of ${fmtNumber(total)}`), next);
}

export function tabs(names, onSelect, selected) {
  const bar = el("div", { class: "tabs", role: "tablist" });
  const buttons = names.map(([key, label]) => {
    const b = el("button", { type: "button", role: "tab", "data-tab": key, "aria-selected": key === selected ? "true" : "false" }, label);
    b.addEventListener("click", () => {
      buttons.forEach((x) => x.setAttribute("aria-selected", x === b ? "true" : "false"));
      onSelect(key);
    });
    return b;
  });
  append(bar, buttons);
  return bar;
}

// Markdown arrives as a tree of [tag, attrs, children] built by the server (scaleorfail/console/markdown.py).
const MD_TAGS = new Set(["p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "code", "pre", "a", "blockquote", "table", "thead", "tbody", "tr", "th", "td", "hr", "br", "s", "span"]);

export function markdown(nodes) {
  const out = document.createDocumentFragment();
  for (const node of nodes || []) {
    if (typeof node === "string") {
      out.append(document.createTextNode(node));
      continue;
    }
    const [tag, attrs, children] = node;
    const element = document.createElement(MD_TAGS.has(tag) ? tag : "span");
    if (tag === "a" && attrs.href && SAFE_URL.test(attrs.href)) {
      element.setAttribute("href", attrs.href);
      if (/^https?:/i.test(attrs.href)) element.setAttribute("rel", "noopener noreferrer");
    }
    if ((tag === "td" || tag === "th") && /^(left|right|center)$/.test(attrs.align || "")) element.className = `align-${attrs.align}`;
    element.append(markdown(children));
    out.append(element);
  }
  return out;
}

export function heading(title, ...extra) {
  return el("div", { class: "heading" }, el("h1", {}, title), ...extra);
}
