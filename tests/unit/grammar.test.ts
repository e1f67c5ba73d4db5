import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { loadScenarioFile, type Rule } from '../../scripts/llm-server/scenario.js';
import { JsonGrammar } from '../../scripts/llm-server/xgrammar.js';
import { wireJsonSchema } from '../../shared/llm/wire-schema.js';
import { ROOT } from '../helpers/processes.js';
import { schemaOf, sentSchemas } from '../helpers/wire-schemas.js';

/**
 * codegod's schemas held to xgrammar itself (its WebAssembly build), compiled as vLLM
 * compiles them: what a model under vLLM's default structured-output engine can and cannot
 * write for each request codegod sends.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Node = Record<string, unknown>;

const SCENARIO = join(ROOT, 'scripts/llm-server/scenarios/todo-app.yaml');
/** What free text naturally holds and a length-bounded xgrammar string cannot: a quote, a backslash, a newline. */
const ESCAPES = ' said "hi" in C:\\temp\nthen left';

/** The request each scripted answer of the todo-app scenario answers: its role and phase. */
interface Answer {
  name: string;
  schema: z.ZodType;
  value: Json;
}

function answersOf(rules: Rule[]): Answer[] {
  const plan = rules.find((r) => r.match.phase === 'plan-dag')!.reply as { kind: 'json'; value: { tasks: Array<{ id: string; role: string }> } };
  const roleOfTask = new Map(plan.value.tasks.map((t) => [t.id, t.role]));
  return rules.map((rule, i) => {
    const phase = rule.match.phase!;
    const role = phase === 'plan-dag' ? 'planner' : (rule.match.role ?? roleOfTask.get(rule.match.task ?? '') ?? 'backend');
    if (rule.reply?.kind !== 'json') throw new Error(`rule ${i} has no JSON reply`);
    return { name: `rule ${i} (${role}/${phase})`, schema: schemaOf(role, phase), value: rule.reply.value as Json };
  });
}

/** The schema node of a value at a step into it (a property name or an array index). */
function child(node: Node, key: string | number, value: Json): Node | undefined {
  const branches = node.anyOf as Node[] | undefined;
  if (branches) {
    const t = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    const branch = branches.find((b) => b.type === t || (t === 'number' && b.type === 'integer'));
    return branch && child(branch, key, value);
  }
  if (typeof key === 'number') return node.items as Node | undefined;
  return (node.properties as Record<string, Node> | undefined)?.[key];
}

/** Resolves an anyOf to the branch `value` takes. */
function branchOf(node: Node, value: Json): Node {
  const branches = node.anyOf as Node[] | undefined;
  if (!branches) return node;
  const t = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return branches.find((b) => b.type === t) ?? node;
}

/**
 * A copy of `value` with `edit` applied at every node where `match` holds (the node's schema,
 * its value), walking value and schema together; returns the copy and how many nodes changed.
 */
function rewrite(value: Json, schema: Node, match: (node: Node, v: Json) => boolean, edit: (v: Json, node: Node) => Json): [Json, number] {
  let count = 0;
  const walk = (v: Json, node: Node | undefined): Json => {
    if (!node) return v;
    const here = branchOf(node, v);
    if (match(here, v)) {
      count++;
      return edit(v, here);
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, child(here, i, v)));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, child(here, k, v))]));
    return v;
  };
  return [walk(value, schema), count];
}

const isFreeText = (node: Node, v: Json) => typeof v === 'string' && node.type === 'string' && node.enum === undefined;
const isEnum = (node: Node, v: Json) => typeof v === 'string' && Array.isArray(node.enum);

/** JSON as xgrammar writes it with any_whitespace off (vLLM's disable_any_whitespace): one line, `, ` and `: `. */
function oneLine(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(oneLine).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${oneLine(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

let grammar: JsonGrammar;
let tight: JsonGrammar;
let answers: Answer[];

beforeAll(async () => {
  grammar = await JsonGrammar.create();
  tight = await JsonGrammar.create({ anyWhitespace: false });
  answers = answersOf((await loadScenarioFile(SCENARIO)).rules);
});

describe('every schema codegod sends, in xgrammar', () => {
  it('compiles, in both of vLLM\'s whitespace modes', async () => {
    const distinct = [...new Set(sentSchemas().map((s) => s.schema))];
    expect(distinct).toHaveLength(7);
    for (const schema of distinct) {
      await expect(grammar.compile(wireJsonSchema(schema))).resolves.toBeDefined();
      await expect(tight.compile(wireJsonSchema(schema))).resolves.toBeDefined();
    }
  });

  it('accepts every answer of the todo-app scenario, as scripted and as a model without free whitespace writes it', async () => {
    expect(answers).toHaveLength(22);
    for (const a of answers) {
      const wire = wireJsonSchema(a.schema);
      expect([a.name, await grammar.check(wire, JSON.stringify(a.value))]).toEqual([a.name, { ok: true }]);
      expect([a.name, await grammar.check(wire, JSON.stringify(a.value, null, 2))]).toEqual([a.name, { ok: true }]);
      expect([a.name, await tight.check(wire, oneLine(a.value))]).toEqual([a.name, { ok: true }]);
      expect([a.name, a.schema.safeParse(a.value).success]).toEqual([a.name, true]);
    }
  });

  it('accepts a quote, a backslash and a newline in every free-text string', async () => {
    let strings = 0;
    for (const a of answers) {
      const wire = wireJsonSchema(a.schema);
      const [escaped, count] = rewrite(a.value, wire, isFreeText, (v) => `${v as string}${ESCAPES}`);
      strings += count;
      expect(count, a.name).toBeGreaterThan(0);
      expect([a.name, await grammar.check(wire, JSON.stringify(escaped))]).toEqual([a.name, { ok: true }]);
      expect([a.name, await tight.check(wire, oneLine(escaped))]).toEqual([a.name, { ok: true }]);
      expect([a.name, a.schema.safeParse(escaped).success]).toEqual([a.name, true]);
    }
    expect(strings).toBeGreaterThan(100);
  });

  it('would not accept them had the wire schema kept zod\'s maxLength (what the grammar did before)', async () => {
    const reason = answers.find((a) => a.name.endsWith('/reason)'))!;
    const bounded = { ...wireJsonSchema(reason.schema) } as { properties: Record<string, Node> };
    bounded.properties = { ...bounded.properties, conclusion: { type: 'string', maxLength: 2_000 } };
    const value = { ...(reason.value as Record<string, Json>), conclusion: `run "pytest"${ESCAPES}` };
    const verdict = await grammar.check(bounded, JSON.stringify(value));
    expect(verdict).toMatchObject({ ok: false, problem: expect.stringContaining('the grammar rejects "\\\\" at byte') });
  });

  it('rejects an answer zod rejects for a missing field', async () => {
    let checked = 0;
    for (const a of answers) {
      const wire = wireJsonSchema(a.schema) as { required: string[] };
      for (const key of wire.required) {
        const { [key]: _dropped, ...rest } = a.value as Record<string, Json>;
        expect([a.name, key, a.schema.safeParse(rest).success]).toEqual([a.name, key, false]);
        const verdict = await grammar.check(wire, JSON.stringify(rest));
        expect([a.name, key, verdict.ok]).toEqual([a.name, key, false]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('rejects an answer zod rejects for a wrong enum value', async () => {
    let checked = 0;
    for (const a of answers) {
      const wire = wireJsonSchema(a.schema);
      const [wrong, count] = rewrite(a.value, wire, isEnum, () => 'launch_rockets');
      if (count === 0) continue;
      expect([a.name, a.schema.safeParse(wrong).success]).toEqual([a.name, false]);
      expect([a.name, (await grammar.check(wire, JSON.stringify(wrong))).ok]).toEqual([a.name, false]);
      checked++;
    }
    // Every plan (action names) and validate (check kinds) answer has an enum.
    expect(checked).toBe(answers.filter((a) => /\/(plan|validate)\)$/.test(a.name)).length);
  });

  it('leaves a fraction\'s bounds to zod: xgrammar does not enforce them (a repair round catches it)', async () => {
    const plan = answers.find((a) => a.name.endsWith('/plan)'))!;
    const wire = wireJsonSchema(plan.schema);
    expect(wire).toMatchObject({ properties: { confidence: { type: 'number', minimum: 0, maximum: 1 } } });
    const over = { ...(plan.value as Record<string, Json>), confidence: 1.5 };
    expect(await grammar.check(wire, JSON.stringify(over))).toEqual({ ok: true });
    expect(plan.schema.safeParse(over).success).toBe(false);
  });

  it('rejects keys out of schema order and keys the schema does not have', async () => {
    for (const a of answers) {
      const wire = wireJsonSchema(a.schema);
      const entries = Object.entries(a.value as Record<string, Json>);
      const reversed = Object.fromEntries([...entries].reverse());
      expect([a.name, (await grammar.check(wire, JSON.stringify(reversed))).ok]).toEqual([a.name, false]);
      const extra = { ...(a.value as Record<string, Json>), note: 'more' };
      expect([a.name, (await grammar.check(wire, JSON.stringify(extra))).ok]).toEqual([a.name, false]);
    }
  });
});
