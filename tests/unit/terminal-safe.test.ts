import { describe, expect, it } from 'vitest';
import { paint, paletteFor, visibleLength } from '../../orchestrator/cli/colour.js';
import { table } from '../../orchestrator/cli/format.js';
import { terminalSafe, terminalSafeJson } from '../../shared/terminal-safe.js';

/** Every character a terminal would act on (tab and newline are layout, not commands). */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

const ESC = '\u001b';
const BEL = '\u0007';

describe('terminalSafe', () => {
  it.each([
    ['OSC 52 clipboard write', `${ESC}]52;c;cm0gLXJmIH4=${BEL}`, '\\x1b]52;c;cm0gLXJmIH4=\\x07'],
    ['OSC 52 ended by ST', `${ESC}]52;c;eA==${ESC}\\`, '\\x1b]52;c;eA==\\x1b\\'],
    ['window title', `${ESC}]0;pwned${BEL}`, '\\x1b]0;pwned\\x07'],
    ['CSI clear screen and home', `${ESC}[2J${ESC}[Hall good`, '\\x1b[2J\\x1b[Hall good'],
    ['cursor up and erase line', `ok${ESC}[1A${ESC}[2K`, 'ok\\x1b[1A\\x1b[2K'],
    ['\\r overwrite', 'rm -rf ~/project\rls          ', 'rm -rf ~/project\\rls          '],
    ['8-bit CSI (C1)', '\u009b2J\u009b31mred', '\\x9b2J\\x9b31mred'],
    ['other C1: NEL, OSC, ST', '\u0085\u009d0;t\u009c', '\\x85\\x9d0;t\\x9c'],
    ['bidi override (Trojan Source)', 'access = "user\u202e \u2066// admin\u2069 \u2066"', 'access = "user\\u202e \\u2066// admin\\u2069 \\u2066"'],
    ['every bidi embedding and isolate', '\u202a\u202b\u202c\u202d\u2067\u2068', '\\u202a\\u202b\\u202c\\u202d\\u2067\\u2068'],
    ['NUL, backspace, vertical tab, form feed, DEL', 'a\u0000b\bc\u000bd\u000ce\u007f', 'a\\x00b\\x08c\\x0bd\\x0ce\\x7f'],
  ])('makes %s visible', (_what, input, shown) => {
    const out = terminalSafe(input);
    expect(out).toBe(shown);
    expect(out).not.toMatch(RAW_CONTROL);
  });

  it('keeps newlines, tabs and any printable text; drops the \\r of CRLF, which overwrites nothing', () => {
    expect(terminalSafe('line 1\n\tindented — é 中文 🚀\n')).toBe('line 1\n\tindented — é 中文 🚀\n');
    expect(terminalSafe('windows\r\nlines\r\n')).toBe('windows\nlines\n');
    expect(terminalSafe('progress 10%\rprogress 100%\r\n')).toBe('progress 10%\\rprogress 100%\n');
  });
});

describe('terminalSafeJson', () => {
  it('is the same document to a parser, with nothing raw a terminal acts on', () => {
    const value = { output: `${ESC}]52;c;eA==${BEL}\u009b2J\u202eabc\u2028\u007f`, n: 1, nested: [{ t: '\r\u0085' }] };
    const text = terminalSafeJson(JSON.stringify(value, null, 2));
    expect(JSON.parse(text)).toEqual(value);
    expect(text.replace(/\n/g, '')).not.toMatch(RAW_CONTROL);
    expect(text).toContain('\\u009b2J\\u202eabc\\u2028\\u007f');
  });

  it('JSON.stringify alone leaves C1 and bidi raw (why it is needed)', () => {
    expect(JSON.stringify('\u009b\u202e')).toMatch(RAW_CONTROL);
    expect(JSON.stringify(`${ESC}\r`)).not.toMatch(RAW_CONTROL);
  });
});

describe('paint', () => {
  const tty = paletteFor({ write: () => true, isTTY: true }, {});
  const plain = paletteFor({ write: () => true }, {});

  it("applies codegod's own colours and makes every escape from elsewhere visible", () => {
    const hostile = `${ESC}[31mfake failure${ESC}[0m ${ESC}]52;c;eA==${BEL}`;
    const line = paint(`${tty.good('succeeded')} ${hostile} ${tty.state('failed')}`);
    expect(line).toBe(`${ESC}[32msucceeded${ESC}[39m \\x1b[31mfake failure\\x1b[0m \\x1b]52;c;eA==\\x07 ${ESC}[31mfailed${ESC}[39m`);
    // The only raw escapes are the palette's.
    expect(line.replace(/\u001b\[(?:32|31|39)m/g, '')).not.toMatch(RAW_CONTROL);
  });

  it('without colour, prints no escape at all', () => {
    expect(paint(`${plain.bad('failed')} ${ESC}[2J`)).toBe('failed \\x1b[2J');
  });

  it('a marker copied from outside does not become colour: its key is random per process', () => {
    const marker = tty.good('x').split('x')[0]!;
    expect(marker).not.toContain(ESC);
    // Text from outside can hold the marker's shape, but not this process's key.
    const forged = marker.replace(/[0-9a-f]{16}/, '0123456789abcdef');
    expect(paint(`${forged}oops`)).not.toContain(ESC);
  });

  it('measures what a terminal shows, so tables stay aligned', () => {
    expect(visibleLength(tty.bold('abc'))).toBe(3);
    expect(visibleLength(`a${ESC}[2Jb`)).toBe('a\\x1b[2Jb'.length);
    const rows = table(['STATE', 'NOTE'], [[tty.state('failed'), 'x'], [`ok${ESC}[1A`, 'y']]);
    const painted = rows.map(paint).map((r) => r.replace(/\u001b\[\d+m/g, ''));
    expect(painted[1]!.indexOf('x')).toBe(painted[2]!.indexOf('y'));
  });
});
