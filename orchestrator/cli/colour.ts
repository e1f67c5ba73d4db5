import { randomBytes } from 'node:crypto';
import { terminalSafe } from '../../shared/terminal-safe.js';
import type { CliOutput } from './context.js';

/**
 * Colour for people at a terminal: used only when the stream is a TTY, TERM is not `dumb`
 * and NO_COLOR is unset (https://no-color.org); anywhere else every function returns its
 * text unchanged, so pipes, files and CI logs stay plain.
 */
export interface Palette {
  readonly enabled: boolean;
  good(text: string): string;
  bad(text: string): string;
  warn(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
  /** A build or task state in the colour of what it means. */
  state(state: string): string;
}

/**
 * Colour travels in the same lines as text from outside (LLM replies, command output), and
 * the CLI makes every escape in a line visible on the way out (`paint`). So the palette
 * writes no escapes: it writes markers holding a random key of this process, which no
 * text from outside can know, and `paint` turns exactly those into SGR sequences once
 * everything else in the line is safe.
 */
const KEY = randomBytes(8).toString('hex');
const MARKER = new RegExp(`\uE000${KEY}(\\d+)\uE001`, 'g');
const mark = (code: number) => `\uE000${KEY}${code}\uE001`;
const sgr = (open: number, close: number) => (text: string) => `${mark(open)}${text}${mark(close)}`;

/** A line as it goes to a terminal: control characters made visible, then the palette's colours applied. */
export function paint(text: string): string {
  return terminalSafe(text).replace(MARKER, '\u001b[$1m');
}

const GOOD_STATES = new Set(['succeeded', 'ok', 'idle']);
const BAD_STATES = new Set(['failed', 'unreadable']);
const WARN_STATES = new Set(['cancelled', 'skipped', 'stale', 'offline', 'stopping']);

function makePalette(enabled: boolean): Palette {
  const id = (text: string) => text;
  const good = enabled ? sgr(32, 39) : id;
  const bad = enabled ? sgr(31, 39) : id;
  const warn = enabled ? sgr(33, 39) : id;
  return {
    enabled,
    good,
    bad,
    warn,
    dim: enabled ? sgr(2, 22) : id,
    bold: enabled ? sgr(1, 22) : id,
    state(state) {
      const word = state.split(' ')[0] ?? state;
      if (GOOD_STATES.has(word)) return good(state);
      if (BAD_STATES.has(word)) return bad(state);
      if (WARN_STATES.has(word) || state.includes('(stale)')) return warn(state);
      return state;
    },
  };
}

export const PLAIN: Palette = makePalette(false);

export function colourEnabled(stream: CliOutput, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb' && (env.NO_COLOR ?? '') === '';
}

export function paletteFor(stream: CliOutput, env: NodeJS.ProcessEnv): Palette {
  return colourEnabled(stream, env) ? makePalette(true) : PLAIN;
}

/** The length a terminal shows once painted: colours take no columns, made-visible controls take theirs. */
export function visibleLength(text: string): number {
  return terminalSafe(text).replace(MARKER, '').length;
}
