import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { xgrammarRefusals } from '../../scripts/llm-server/xgrammar-gate.js';
import { CheckSchema, ReasonSchema } from '../../shared/domain/agent-phases.js';
import { wireJsonSchema } from '../../shared/llm/wire-schema.js';
import { schemaOf, sentSchemas } from '../helpers/wire-schemas.js';

type Node = Record<string, unknown>;

/** Every node of a JSON schema that is itself a schema, with its path (property maps are walked by name, not as schemas). */
function schemaNodes(node: Node, path = '#'): Array<[string, Node]> {
  const out: Array<[string, Node]> = [[path, node]];
  const sub = (value: unknown, p: string) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) out.push(...schemaNodes(value as Node, p));
  };
  for (const [k, v] of Object.entries(node)) {
    if (k === 'properties' || k === '$defs') for (const [name, s] of Object.entries(v as Node)) sub(s, `${path}/${k}/${name}`);
    else if (Array.isArray(v)) v.forEach((s, i) => sub(s, `${path}/${k}/${i}`));
    else if (k !== 'const' && k !== 'default') sub(v, `${path}/${k}`);
  }
  return out;
}

describe("vLLM's xgrammar gate, as codegod restates it", () => {
  // One refused example per rule of vLLM's has_xgrammar_unsupported_json_features, and the
  // neighbour it accepts, so the check cannot pass by refusing or accepting everything.
  const cases: Array<[string, unknown, unknown]> = [
    ['multipleOf on a number', { type: 'number', multipleOf: 5 }, { type: 'number', minimum: 0, maximum: 1 }],
    ['multipleOf on an integer', { type: ['integer', 'null'], multipleOf: 2 }, { type: 'integer', minimum: 1 }],
    ['uniqueItems on an array', { type: 'array', items: { type: 'string' }, uniqueItems: true }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 }],
    ['contains on an array', { type: 'array', contains: { type: 'string' } }, { type: 'array', items: { type: 'string' } }],
    ['minContains on an array', { type: 'array', minContains: 1 }, { type: 'array' }],
    ['an unknown string format', { type: 'string', format: 'int32' }, { type: 'string', format: 'date-time' }],
    ['pattern beside maxLength', { type: 'string', pattern: '^a', maxLength: 5 }, { type: 'string', pattern: '^a' }],
    ['format beside minLength', { type: 'string', format: 'email', minLength: 3 }, { type: 'string', maxLength: 5 }],
    [
      'propertyNames beside an additionalProperties schema (z.record)',
      { type: 'object', propertyNames: { type: 'string' }, additionalProperties: {} },
      { type: 'object', propertyNames: { type: 'string' }, additionalProperties: false },
    ],
    ['propertyNames beside properties', { type: 'object', properties: { a: {} }, propertyNames: { enum: ['a'] } }, { type: 'object', properties: { a: {} } }],
    ['propertyNames beside unevaluatedProperties', { type: 'object', propertyNames: { type: 'string' }, unevaluatedProperties: false }, { type: 'object', propertyNames: { type: 'string' } }],
    [
      'propertyNames with a pattern and a length bound',
      { type: 'object', propertyNames: { pattern: '^x', maxLength: 4 } },
      { type: 'object', propertyNames: { pattern: '^x' } },
    ],
    [
      'two patternProperties',
      { type: 'object', patternProperties: { '^a': {}, '^b': {} } },
      { type: 'object', patternProperties: { '^a': {} } },
    ],
    ['patternProperties beside properties', { type: 'object', properties: { a: {} }, patternProperties: { '^b': {} } }, { type: 'object', properties: { a: {}, b: {} } }],
  ];

  it.each(cases)('refuses %s, anywhere in the schema', (_rule, refused, accepted) => {
    expect(xgrammarRefusals(refused)).toHaveLength(1);
    expect(xgrammarRefusals(accepted)).toEqual([]);
    // Nested in properties, array items and anyOf branches, as vLLM walks every object.
    const nested = { type: 'object', properties: { list: { type: 'array', items: { anyOf: [refused, { type: 'null' }] } } } };
    expect(xgrammarRefusals(nested)).toEqual([expect.stringMatching(/^\/properties\/list\/items\/anyOf\/0: /)]);
  });

  it('reads a node\'s types from its type keyword only, as vLLM does', () => {
    expect(xgrammarRefusals({ multipleOf: 3 })).toEqual([]);
    expect(xgrammarRefusals({ type: 'string', uniqueItems: true })).toEqual([]);
  });

  it('catches what vLLM refused in codegod\'s plan schemas before the wire schema: z.record\'s propertyNames', () => {
    const raw = z.toJSONSchema(schemaOf('backend', 'plan'), { target: 'draft-7', io: 'input', unrepresentable: 'any' });
    expect(xgrammarRefusals(raw)).toEqual([
      '/properties/steps/items/properties/params: propertyNames beside properties, patternProperties, an additionalProperties schema or unevaluatedProperties',
    ]);
  });

  it('accepts every schema codegod sends', () => {
    const sent = sentSchemas();
    expect(sent).toHaveLength(13);
    expect(new Set(sent.map((s) => s.schema)).size).toBe(7);
    for (const { name, schema } of sent) expect([name, xgrammarRefusals(wireJsonSchema(schema))]).toEqual([name, []]);
  });
});

describe('wire schemas', () => {
  it('leave no length, pattern or format on any string, and no propertyNames, so free text can hold any JSON escape', () => {
    for (const { name, schema } of sentSchemas()) {
      for (const [path, node] of schemaNodes(wireJsonSchema(schema))) {
        const where = `${name} ${path}`;
        if (node.type === 'string') for (const k of ['maxLength', 'minLength', 'pattern', 'format']) expect(node, where).not.toHaveProperty(k);
        expect(node, where).not.toHaveProperty('propertyNames');
        expect(node, where).not.toHaveProperty('$schema');
      }
    }
  });

  it('keep what a grammar enforces well: enums, array sizes, integer bounds', () => {
    const plan = wireJsonSchema(schemaOf('backend', 'plan')) as { properties: { steps: Node & { items: { properties: { action: Node; params: Node } } } } };
    expect(plan.properties.steps).toMatchObject({ minItems: 1, maxItems: 12 });
    expect(plan.properties.steps.items.properties.action.enum).toContain('write_file');
    expect(plan.properties.steps.items.properties.params).toEqual({ type: 'object', additionalProperties: {} });
    const wire = wireJsonSchema(z.object({ n: z.number().int().min(1).max(9), any: z.number().int(), tag: z.string().email() }));
    expect(wire).toMatchObject({ properties: { n: { type: 'integer', minimum: 1, maximum: 9 }, any: { type: 'integer' }, tag: { type: 'string' } } });
    expect((wire as { properties: { any: Node; tag: Node } }).properties.any).not.toHaveProperty('minimum');
    expect((wire as { properties: { tag: Node } }).properties.tag).not.toHaveProperty('format');
  });

  it('touch keywords only: a property named like a keyword stays', () => {
    // The validate phase's checks have a property called `contains`, an array keyword vLLM refuses.
    const check = wireJsonSchema(CheckSchema) as { properties: Record<string, Node>; required: string[] };
    expect(Object.keys(check.properties)).toEqual(['kind', 'target', 'args', 'contains']);
    expect(check.required).toEqual(['kind', 'target', 'args', 'contains']);
    expect(check.properties.contains).toEqual({ anyOf: [{ type: 'string' }, { type: 'null' }] });
    const named = wireJsonSchema(z.object({ pattern: z.string().max(3), maxLength: z.number(), uniqueItems: z.array(z.string()) })) as { properties: Record<string, Node> };
    expect(Object.keys(named.properties)).toEqual(['pattern', 'maxLength', 'uniqueItems']);
    expect(named.properties.pattern).toEqual({ type: 'string' });
  });

  it('leave the limits to zod, which still validates every reply in full', () => {
    const ok = { problem_analysis: 'a', root_causes: [], approach: 'b', risks: [], success_criteria: 'c', conclusion: 'd' };
    expect(ReasonSchema.safeParse({ ...ok, conclusion: 'x'.repeat(2_001) }).success).toBe(false);
    expect(JSON.stringify(wireJsonSchema(ReasonSchema))).not.toContain('2000');
  });

  it('are computed once per schema', () => {
    expect(wireJsonSchema(ReasonSchema)).toBe(wireJsonSchema(ReasonSchema));
  });
});
