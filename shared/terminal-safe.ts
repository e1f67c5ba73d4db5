/**
 * Text from outside codegod — what an LLM wrote, what an agent's command printed, a goal, a
 * file name — may hold bytes a terminal obeys: ESC and CSI sequences that move the cursor,
 * clear the screen or retitle the window, OSC 52 that writes the clipboard, a BEL, a `\r`
 * that returns to the start of the line so that what follows hides what came before, the
 * 8-bit C1 controls (0x9B is a CSI on its own), and Unicode bidi overrides that reorder
 * what a line seems to say. Everything a terminal would act on is shown as an escape
 * instead (`\x1b`, `\r`, `\u202e`). Newlines and tabs stay; a `\r` before a newline (CRLF
 * output) overwrites nothing and is dropped.
 */

/** C0 but tab and newline, DEL, C1, and the bidi embeddings, overrides and isolates. */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

function visible(char: string): string {
  if (char === '\r') return '\\r';
  const code = char.charCodeAt(0);
  return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
}

/** `text` with every control character a terminal would act on made visible. */
export function terminalSafe(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(UNSAFE, visible);
}

/** Characters JSON.stringify leaves raw that a terminal may still act on (it escapes C0 itself). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON text (from JSON.stringify) with DEL, C1 and bidi controls written as `\uXXXX`
 * escapes: the same document to a parser, inert on a terminal. Outside strings JSON holds
 * only ASCII, so every such character sits inside a string, where the escape is valid.
 */
export function terminalSafeJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
