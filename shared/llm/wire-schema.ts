import { z } from 'zod';

/**
 * The JSON schema codegod sends as `response_format`, derived from a zod schema. The zod
 * schema stays the single source of truth: it validates every reply in full. The wire schema
 * is what a grammar engine (xgrammar, vLLM's default structured-output backend; llama.cpp's
 * and Ollama's converters) compiles into the grammar the model is held to, so it keeps only
 * what such a grammar enforces well and drops what would break it:
 *
 * - It describes the zod *input* (what the model must write: fields with defaults may be
 *   left out).
 * - Strings carry their type (and enum/const) only. xgrammar compiles `maxLength`/`minLength`
 *   into a bounded repetition of one character class that excludes `"` and `\`, so a bounded
 *   string can hold no escape at all: no quote in a command, no backslash in a path, no
 *   newline in expected output. `pattern` and `format` go too: vLLM refuses them beside a
 *   length, and their limits are zod's to check, with a repair round when broken.
 * - `propertyNames` goes: JSON keys are strings anyway, and vLLM refuses it beside
 *   `properties` or an object `additionalProperties` (what `z.record` emits).
 * - zod's integer bounds at ±MAX_SAFE_INTEGER go: they constrain nothing, and a grammar
 *   compiles every numeric bound into its automaton. Other bounds stay (xgrammar enforces
 *   integer ranges; on fractions it does not, and zod does).
 * - Keywords vLLM's xgrammar gate refuses outright go (`multipleOf`, `uniqueItems`,
 *   `contains`, `minContains`, `maxContains`); zod still checks what they said.
 *
 * The walk follows JSON Schema's structure (a property named `pattern` is a property, not a
 * keyword), so only keywords are touched.
 */

const STRING_KEYWORDS_DROPPED = ['maxLength', 'minLength', 'pattern', 'format'] as const;
const REFUSED_KEYWORDS = ['multipleOf', 'uniqueItems', 'contains', 'minContains', 'maxContains', 'propertyNames'] as const;
const SAFE_INT_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

/** Keywords whose value is a subschema or a list of them (draft-7 tuples put a list in `items`). */
const SCHEMA_KEYWORDS = [
  'items',
  'additionalItems',
  'prefixItems',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'anyOf',
  'oneOf',
  'allOf',
  'not',
  'if',
  'then',
  'else',
] as const;
/** Keywords whose value maps names to subschemas. */
const SCHEMA_MAP_KEYWORDS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'] as const;

type JsonSchema = Record<string, unknown>;

function isSchema(value: unknown): value is JsonSchema {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function typesOf(node: JsonSchema): string[] {
  const t = node.type;
  return typeof t === 'string' ? [t] : Array.isArray(t) ? t.filter((x): x is string => typeof x === 'string') : [];
}

function lean(node: JsonSchema): void {
  const types = typesOf(node);
  if (types.includes('string')) for (const k of STRING_KEYWORDS_DROPPED) delete node[k];
  for (const k of REFUSED_KEYWORDS) delete node[k];
  for (const bound of ['minimum', 'maximum']) {
    if (typeof node[bound] === 'number' && SAFE_INT_BOUNDS.has(node[bound])) delete node[bound];
  }
  for (const k of SCHEMA_KEYWORDS) {
    const value = node[k];
    for (const sub of Array.isArray(value) ? value : [value]) if (isSchema(sub)) lean(sub);
  }
  for (const k of SCHEMA_MAP_KEYWORDS) {
    const map = node[k];
    if (isSchema(map)) for (const sub of Object.values(map)) if (isSchema(sub)) lean(sub);
  }
}

const cache = new WeakMap<z.ZodType, JsonSchema>();

/** The JSON schema sent as `response_format` for `schema` (computed once per schema: it never changes). */
export function wireJsonSchema(schema: z.ZodType): JsonSchema {
  const cached = cache.get(schema);
  if (cached) return cached;
  const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete json.$schema;
  lean(json);
  cache.set(schema, json);
  return json;
}
