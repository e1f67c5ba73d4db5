import { BYTES_PER_TOKEN, estimateTokens } from '../../shared/llm/tokens.js';

/**
 * Fitting prompt parts into a token budget (codegod's estimate, shared/llm/tokens.ts). What
 * does not fit is cut and replaced by a marker that says what and how much, so the model knows
 * something was left out; JSON is shrunk value by value and stays valid JSON.
 */

/** Every marker starts with this, so a reader (or a test) can find what was cut. */
export const CUT = '…[cut';

function tokensOfBytes(bytes: number): number {
  return Math.ceil(bytes / BYTES_PER_TOKEN);
}

/**
 * `text` cut to at most `maxTokens`, ending with a marker when anything was cut; '' when not
 * even the marker fits. Never splits a character, and prefers to end at a line or word.
 */
export function clipToTokens(text: string, maxTokens: number, what = 'text'): string {
  if (estimateTokens(text) <= maxTokens) return text;
  const marker = (n: number) => `${CUT}: ${n} more characters of ${what}]`;
  const room = Math.floor(maxTokens * BYTES_PER_TOKEN) - Buffer.byteLength(marker(text.length)) - 1;
  if (room <= 0) return estimateTokens(marker(text.length)) <= maxTokens ? marker(text.length) : '';
  // Bytes to characters: walk forward until the budget of bytes is used.
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > room) break;
    bytes += b;
    end += ch.length;
  }
  const soft = Math.max(text.lastIndexOf('\n', end), text.lastIndexOf(' ', end));
  if (soft > end * 0.8) end = soft;
  return `${text.slice(0, end)} ${marker(text.length - end)}`;
}

/**
 * Whole lines kept while they fit (from the start, or from the end for `keep: 'tail'`), the
 * others replaced by one marker line; a first line too long on its own is clipped.
 */
export function fitLines(lines: readonly string[], maxTokens: number, options: { keep: 'head' | 'tail'; what: string }): string {
  const all = lines.join('\n');
  if (estimateTokens(all) <= maxTokens) return all;
  const marker = (n: number) => `${CUT}: ${n} more ${options.what} did not fit the prompt budget]`;
  const order = options.keep === 'head' ? lines : [...lines].reverse();
  const kept: string[] = [];
  let bytes = Buffer.byteLength(marker(lines.length));
  for (const line of order) {
    const add = Buffer.byteLength(line) + 1;
    if (tokensOfBytes(bytes + add) > maxTokens) break;
    bytes += add;
    kept.push(line);
  }
  if (kept.length === 0) {
    const markerTokens = estimateTokens(marker(lines.length - 1)) + 1;
    const first = clipToTokens(order[0] ?? '', maxTokens - markerTokens, options.what);
    if (first === '') return estimateTokens(marker(lines.length)) <= maxTokens ? marker(lines.length) : '';
    kept.push(first);
  }
  const cut = marker(lines.length - kept.length);
  return options.keep === 'head' ? [...kept, cut].join('\n') : [cut, ...kept.reverse()].join('\n');
}

/** Steps of shrinking: longest string kept, most items per array, most keys per object. */
const SHRINK_STEPS: ReadonlyArray<[number, number, number]> = [
  [2_000, 60, 40],
  [800, 30, 30],
  [300, 15, 20],
  [120, 8, 12],
  [60, 4, 8],
  [30, 2, 5],
  [12, 1, 3],
];
const MAX_DEPTH = 6;

function shrink(value: unknown, strMax: number, arrMax: number, keyMax: number, depth = 0): unknown {
  if (typeof value === 'string') return value.length <= strMax ? value : `${value.slice(0, strMax)}${CUT}: ${value.length - strMax} more characters]`;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return `${CUT}: nested value]`;
  if (Array.isArray(value)) {
    const items = value.slice(0, arrMax).map((v) => shrink(v, strMax, arrMax, keyMax, depth + 1));
    return value.length > arrMax ? [...items, `${CUT}: ${value.length - arrMax} more items]`] : items;
  }
  const entries = Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries.slice(0, keyMax)) out[k] = shrink(v, strMax, arrMax, keyMax, depth + 1);
  if (entries.length > keyMax) out['…'] = `${CUT}: ${entries.length - keyMax} more keys]`;
  return out;
}

/**
 * `value` as JSON of at most `maxTokens`: whole when it fits, else with long strings clipped,
 * long arrays and objects shortened (each cut marked inside the JSON), step by step until it
 * fits; '' when not even a one-line note fits.
 */
export function fitJson(value: unknown, maxTokens: number, what: string): string {
  const render = (v: unknown) => JSON.stringify(v, null, 1) ?? 'null';
  const whole = render(value);
  if (estimateTokens(whole) <= maxTokens) return whole;
  for (const [strMax, arrMax, keyMax] of SHRINK_STEPS) {
    const text = render(shrink(value, strMax, arrMax, keyMax));
    if (estimateTokens(text) <= maxTokens) return text;
  }
  const note = JSON.stringify(`${CUT}: ${what}, ${estimateTokens(whole)} tokens, did not fit the prompt budget]`);
  return estimateTokens(note) <= maxTokens ? note : '';
}

/**
 * Shares of `total` for parts that need `needs`: every part gets what it needs when all fit;
 * otherwise small needs are met in full and what is left is split evenly among the rest.
 * Depends only on its inputs, so the same parts get the same shares on every call.
 */
export function shares(needs: readonly number[], total: number): number[] {
  const out = needs.map(() => 0);
  let left = Math.max(0, total);
  let open = needs.map((n, i) => ({ n, i })).sort((a, b) => a.n - b.n || a.i - b.i);
  while (open.length > 0) {
    const even = Math.floor(left / open.length);
    const small = open.filter((p) => p.n <= even);
    if (small.length === 0) {
      for (const p of open) out[p.i] = even;
      break;
    }
    for (const p of small) {
      out[p.i] = p.n;
      left -= p.n;
    }
    open = open.filter((p) => p.n > even);
  }
  return out;
}
