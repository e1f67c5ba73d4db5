/**
 * vLLM's request-time gate for JSON schemas under its xgrammar backend: before compiling a
 * `response_format` schema, vLLM looks for features xgrammar does not support and answers
 * HTTP 400 "The provided JSON schema contains features not supported by xgrammar." With
 * `backend: xgrammar` (what codegod's compose file sets) there is no fallback to another
 * backend; with `auto` vLLM would switch to guidance instead.
 *
 * These are the rules of vLLM's `has_xgrammar_unsupported_json_features`
 * (vllm/v1/structured_output/backend_xgrammar.py), restated here and applied the way vLLM
 * applies them: to every object anywhere in the schema (property maps included), with a
 * node's types read from its `type` keyword only.
 *
 * The scripted server answers a refused schema the way vLLM does; the unit tests hold every
 * schema codegod sends to these rules.
 */

/** The string formats xgrammar compiles; any other `format` on a string is refused. */
export const XGRAMMAR_STRING_FORMATS: ReadonlySet<string> = new Set([
  'email',
  'date',
  'time',
  'date-time',
  'duration',
  'ipv4',
  'ipv6',
  'hostname',
  'uuid',
  'uri',
  'uri-reference',
  'uri-template',
  'json-pointer',
  'relative-json-pointer',
]);

/** vLLM's own wording of the refusal, as its HTTP 400 carries it. */
export const VLLM_XGRAMMAR_REFUSAL = 'The provided JSON schema contains features not supported by xgrammar.';

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function typesOf(node: Node): Set<string> {
  const t = node.type;
  if (typeof t === 'string') return new Set([t]);
  if (Array.isArray(t)) return new Set(t.filter((x): x is string => typeof x === 'string'));
  return new Set();
}

/** A generative constraint (pattern or format) next to a length bound: xgrammar silently drops the bound. */
function constrainedAndBounded(node: Node): boolean {
  return ('pattern' in node || 'format' in node) && ('minLength' in node || 'maxLength' in node);
}

/** What one node does that the gate refuses (an empty list when nothing). */
function refusedHere(node: Node): string[] {
  const types = typesOf(node);
  const found: string[] = [];
  const numeric = types.has('integer') || types.has('number');
  if (numeric && 'multipleOf' in node) found.push('multipleOf on a number');
  if (types.has('array')) {
    for (const k of ['uniqueItems', 'contains', 'minContains', 'maxContains']) if (k in node) found.push(`${k} on an array`);
  }
  if (types.has('string')) {
    if ('format' in node && !XGRAMMAR_STRING_FORMATS.has(String(node.format))) found.push(`string format '${String(node.format)}'`);
    if (constrainedAndBounded(node)) found.push('pattern or format beside minLength/maxLength on a string');
  }
  if (types.has('object')) {
    const names = node.propertyNames;
    if (isNode(names) && constrainedAndBounded(names)) found.push('propertyNames with a pattern or format beside a length bound');
    const otherKeys =
      'properties' in node ||
      'patternProperties' in node ||
      isNode(node.additionalProperties) ||
      ('unevaluatedProperties' in node && node.unevaluatedProperties !== true);
    if ('propertyNames' in node && otherKeys) {
      found.push('propertyNames beside properties, patternProperties, an additionalProperties schema or unevaluatedProperties');
    }
    const patterns = node.patternProperties;
    if (isNode(patterns) && ('properties' in node || Object.keys(patterns).length > 1)) {
      found.push('patternProperties beside properties, or more than one pattern');
    }
  }
  return found;
}

/**
 * Every feature of `schema` vLLM's xgrammar gate refuses, each with the JSON pointer of the
 * object it sits on; empty when vLLM accepts the schema.
 */
export function xgrammarRefusals(schema: unknown): string[] {
  const out: string[] = [];
  const walk = (value: unknown, pointer: string): void => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, `${pointer}/${i}`));
      return;
    }
    if (!isNode(value)) return;
    for (const problem of refusedHere(value)) out.push(`${pointer || '/'}: ${problem}`);
    for (const [key, child] of Object.entries(value)) walk(child, `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`);
  };
  walk(schema, '');
  return out;
}
