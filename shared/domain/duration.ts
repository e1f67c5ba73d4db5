/**
 * Durations as people write them: `7d`, `12h`, `30m`, `45s`, `500ms`, `2w` (one number, one
 * unit). Used by `codegod prune --older-than` and CODEGOD_RETENTION.
 */
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;

/** Milliseconds, or undefined when `text` is not a duration. `0` alone means zero. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === '0') return 0;
  const m = DURATION.exec(t);
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

export const DURATION_HINT = 'a duration such as 7d, 12h, 30m or 45s';
