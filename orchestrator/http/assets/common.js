// @ts-check
/**
 * Helpers every dashboard page uses. The pages build their DOM from text only: `h` and `s`
 * turn children that are not nodes into text nodes and set attributes with setAttribute,
 * never innerHTML, so text an LLM wrote is shown, never run. (Why JavaScript checked through
 * JSDoc rather than compiled TypeScript: tsconfig.json beside this file.)
 */

/** @typedef {Node | string | number | null | undefined | false | Child[]} Child */
/** @typedef {Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>} Attrs */

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * @param {string} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  appendOne(el, children);
  return el;
}

/**
 * @param {string} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {SVGElement}
 */
export function s(tag, attrs, ...children) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  setAttrs(el, attrs);
  appendOne(el, children);
  return el;
}

/**
 * `on…` attributes become event listeners; false, null and undefined leave an attribute out.
 * @param {Element} el
 * @param {Attrs | null | undefined} attrs
 */
function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  }
}

/**
 * @param {Node} el
 * @param {Child} c
 */
function appendOne(el, c) {
  if (c === undefined || c === null || c === false) return;
  if (Array.isArray(c)) {
    for (const x of c) appendOne(el, x);
    return;
  }
  el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
}

/**
 * @param {Node} el
 * @param {...Child} children
 */
export function append(el, ...children) {
  appendOne(el, children);
}

/** @param {Node} el */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/**
 * The element with this id, which the page's HTML always has.
 * @template {HTMLElement} [E=HTMLElement]
 * @param {string} id
 * @returns {E}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return /** @type {E} */ (el);
}

/** @param {number | null | undefined} ms */
export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '\u2014';
  if (ms < 1000) return Math.round(ms) + ' ms';
  const sec = ms / 1000;
  if (sec < 60) return sec.toFixed(sec < 10 ? 1 : 0) + ' s';
  const m = Math.floor(sec / 60);
  if (m < 60) return m + 'm ' + Math.floor(sec % 60) + 's';
  const hr = Math.floor(m / 60);
  if (hr < 48) return hr + 'h ' + (m % 60) + 'm';
  return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h';
}

/** @param {number | null | undefined} ts */
export function fmtAge(ts) {
  return ts ? fmtMs(Math.max(0, Date.now() - ts)) + ' ago' : '\u2014';
}

/** @param {number | null | undefined} n */
export function fmtNum(n) {
  return Number(n || 0).toLocaleString('en-US');
}

/**
 * @param {unknown} value
 * @param {number} n
 */
export function clip(value, n) {
  const text = String(value);
  return text.length > n ? text.slice(0, n - 1) + '\u2026' : text;
}

/** @param {string} state */
export function badge(state) {
  return h('span', { class: 'badge st-' + state }, state);
}

/**
 * @param {number} done
 * @param {number} total
 * @param {boolean} [wide]
 */
export function progressBar(done, total, wide) {
  const pct = total > 0 ? Math.round((100 * done) / total) : 0;
  const fill = h('span');
  fill.style.width = pct + '%';
  return h('span', { class: 'bar' + (wide ? ' wide' : ''), title: done + ' of ' + total + ' tasks done' }, fill);
}

/** @param {string} id */
export function buildHref(id) {
  return '/builds/' + encodeURIComponent(id);
}

/**
 * Shows `err` as a banner in `where`, or clears it when there is none.
 * @param {HTMLElement} where
 * @param {unknown} err
 */
export function showError(where, err) {
  clear(where);
  if (err) append(where, h('div', { class: 'banner error' }, String((err instanceof Error && err.message) || err)));
}
