import { describe, expect, it } from 'vitest';
import { colourEnabled, paint, paletteFor, visibleLength } from '../../orchestrator/cli/colour.js';
import { table } from '../../orchestrator/cli/format.js';
import { createLogger, humanLine } from '../../shared/logger.js';

describe('logs for people', () => {
  it('a warning record becomes one codegod: warning: line with its context', () => {
    const record = JSON.stringify({ level: 40, time: '2025-01-01T00:00:00Z', pid: 1, service: 'cli', msg: 'invalid LLM reply', buildId: 'b-1', attempt: 2, error: 'not\nJSON' });
    expect(humanLine(record)).toBe('codegod: warning: invalid LLM reply (buildId=b-1, attempt=2, error=not JSON)\n');
    expect(humanLine(JSON.stringify({ level: 50, msg: 'boom' }))).toBe('codegod: error: boom\n');
    expect(humanLine(JSON.stringify({ level: 30, msg: 'started' }))).toBe('codegod: started\n');
  });

  it('the human logger writes plain lines; the json logger writes pino records', () => {
    const human: string[] = [];
    createLogger('warn', { service: 'cli' }, { format: 'human', write: (l) => human.push(l) }).warn({ taskId: 't1' }, 'heartbeat failed');
    expect(human).toEqual(['codegod: warning: heartbeat failed (taskId=t1)\n']);
    const json: string[] = [];
    createLogger('warn', { service: 'cli' }, { format: 'json', write: (l) => json.push(l) }).warn({ taskId: 't1' }, 'heartbeat failed');
    expect(JSON.parse(json[0]!)).toMatchObject({ level: 40, msg: 'heartbeat failed', taskId: 't1', service: 'cli' });
  });
});

describe('colour', () => {
  it('only on a terminal, never with NO_COLOR or TERM=dumb', () => {
    expect(colourEnabled({ write: () => true, isTTY: true }, {})).toBe(true);
    expect(colourEnabled({ write: () => true, isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colourEnabled({ write: () => true, isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(colourEnabled({ write: () => true }, {})).toBe(false);
    expect(paletteFor({ write: () => true }, {}).state('failed')).toBe('failed');
    expect(paint(paletteFor({ write: () => true, isTTY: true }, {}).state('failed'))).toBe('\u001b[31mfailed\u001b[39m');
  });

  it('coloured cells keep a table aligned', () => {
    const c = paletteFor({ write: () => true, isTTY: true }, {});
    const lines = table(['ID', 'STATE', 'NOTE'], [['a', c.state('succeeded'), 'x'], ['long-id', c.state('failed'), 'y']]);
    expect(lines.map((l) => visibleLength(l.slice(0, l.lastIndexOf(' ') + 1)))).toEqual([20, 20, 20]);
  });
});
