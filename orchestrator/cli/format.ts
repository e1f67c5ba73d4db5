import { visibleLength } from './colour.js';

/**
 * Plain-text formatting shared by the commands. Nothing here adds ANSI escapes (colour is
 * colour.ts's, and only on a terminal); `table` measures cells by what a terminal shows, so
 * coloured cells stay aligned.
 */

/** A compact duration: 850ms, 4.2s, 1m 12s, 2h 03m. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const s = Math.floor(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  const m = Math.floor(s / 60);
  if (m < 48 * 60) return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(m / 1_440)}d ${String(Math.floor((m % 1_440) / 60)).padStart(2, '0')}h`;
}

/** Time since `at` (ms since the epoch), as in `12s ago`. */
export function formatAge(at: number, now: number): string {
  return `${formatDuration(Math.max(0, now - at))} ago`;
}

/** 12345 → 12,345 (digit grouping that does not depend on the locale). */
export function formatCount(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** 980 B, 12.4 KB, 3.1 MB (powers of 1024). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** `1 task`, `3 tasks`: a count with its noun (plural by adding s). */
export function plural(n: number, noun: string): string {
  return `${formatCount(n)} ${noun}${n === 1 ? '' : 's'}`;
}

/** One line of at most `max` characters: newlines and tabs become spaces, and an ellipsis marks a cut. */
export function clip(text: string, max: number): string {
  const line = text.replace(/\s*[\r\n\t]+\s*/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * Columns aligned by padding, two spaces apart; the last column is not padded. `rows` may
 * hold fewer cells than `headers`.
 */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const pad = (cell: string, width: number) => cell + ' '.repeat(Math.max(0, width - visibleLength(cell)));
  const line = (cells: readonly string[]) =>
    headers
      .map((_, i) => (i === headers.length - 1 ? (cells[i] ?? '') : pad(cells[i] ?? '', widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

