import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CodegodError } from '../../shared/domain/errors.js';

/**
 * Scenario files of the scripted OpenAI-compatible server: which reply (or fault) answers
 * which request. A scenario is JSON or YAML:
 *
 * ```yaml
 * models: [codegod-test]            # what /v1/models lists; default one model, codegod-test
 * rules:                            # ordered; the first matching rule with `times` left answers
 *   - match: { role: backend, phase: plan, contains: ["app.py"] }
 *     reply: { steps: [] }          # an object/array/number is sent as JSON content
 *     times: 1                      # answers at most once per build (default: unlimited)
 *   - match: { phase: reason }
 *     fault: http500                # http400 | http500 | http429 | hang | malformed_json | schema_violation | length
 *                                   # | reject_json_schema | reject_response_format
 *     delayMs: 50                   # waits before answering
 *   - match: { phase: plan }
 *     fault: reject_json_schema     # refuses the request's schema …
 *     wording: vllm                 # … as vllm | ollama | llamacpp | opaque | generic (default) words it
 *     reply: { steps: [] }          # and answers the same request without it
 * fallback:                         # answers what no rule matched (else a 400 `scenario_no_match`)
 *   reply: { text: "plain text" }   # a string, or { text } is sent verbatim; { json } as JSON
 * ```
 *
 * Requests are told apart by the headers codegod's LLM client sends (`x-codegod-role`,
 * `x-codegod-phase`, `x-codegod-task`), by model, and by text the messages contain
 * (`contains`: every string must occur in the messages' concatenated content).
 *
 * `times` is counted per build (the `x-codegod-build` header), so one server answers any
 * number of builds the same way — a scenario is a script of one build, run again for each.
 * Requests without the header share one count.
 */

export const FAULTS = [
  /** Answers 400 whatever the request asks, as a server does for a prompt over the model's context length. */
  'http400',
  'http500',
  'http429',
  'hang',
  'malformed_json',
  'schema_violation',
  'length',
  /** Refuses a `json_schema` response_format (worded per `wording`), like a server that cannot compile the schema. */
  'reject_json_schema',
  /** Refuses `json_schema` (worded per `wording`) and `json_object`; answers requests without a response_format. */
  'reject_response_format',
] as const;
export const FaultSchema = z.enum(FAULTS);
export type Fault = z.infer<typeof FaultSchema>;

/**
 * How a refusal is worded: as vLLM's xgrammar gate, Ollama (a 500), a llama.cpp server, a
 * bare 400 that names nothing (`opaque`), or a server that names the field (`generic`).
 */
export const WORDINGS = ['generic', 'vllm', 'ollama', 'llamacpp', 'opaque'] as const;
export type Wording = (typeof WORDINGS)[number];

export const DEFAULT_MODEL = 'codegod-test';

export type Reply = { kind: 'json'; value: unknown } | { kind: 'text'; text: string };

/**
 * A bare string is text, `{ text }` is text, `{ json }` is JSON; any other value is JSON.
 * Only an object whose sole key is `json` or `text` counts as the wrapper form.
 */
const ReplySchema = z.unknown().transform((value, ctx): Reply => {
  if (value === undefined) {
    ctx.addIssue({ code: 'custom', message: 'reply is required' });
    return z.NEVER;
  }
  if (typeof value === 'string') return { kind: 'text', text: value };
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const only = keys.length === 1 ? keys[0] : undefined;
    const inner = (value as Record<string, unknown>)[only ?? ''];
    if (only === 'text') {
      if (typeof inner === 'string') return { kind: 'text', text: inner };
      ctx.addIssue({ code: 'custom', message: '`text` reply must be a string' });
      return z.NEVER;
    }
    if (only === 'json') return { kind: 'json', value: inner };
  }
  return { kind: 'json', value };
});

const MatchSchema = z
  .object({
    role: z.string().min(1).optional(),
    phase: z.string().min(1).optional(),
    task: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    contains: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  })
  .strict();
export type Match = z.infer<typeof MatchSchema>;

/**
 * Faults that never send the rule's reply need none. The refusals answer the requests they
 * do not refuse normally, so they need one like any plain answer.
 */
const NO_CONTENT_FAULTS: ReadonlySet<Fault> = new Set(['http400', 'http500', 'http429', 'hang', 'schema_violation']);

const ActionShape = {
  reply: ReplySchema.optional(),
  fault: FaultSchema.optional(),
  wording: z.enum(WORDINGS).optional(),
  delayMs: z.number().int().min(0).max(600_000).optional(),
};

const REFUSALS: ReadonlySet<Fault> = new Set(['reject_json_schema', 'reject_response_format']);

function checkAction(action: { reply?: Reply | undefined; fault?: Fault | undefined; wording?: Wording | undefined }, ctx: z.RefinementCtx): void {
  if (action.reply === undefined && (action.fault === undefined || !NO_CONTENT_FAULTS.has(action.fault))) {
    ctx.addIssue({ code: 'custom', path: ['reply'], message: `a reply is required${action.fault ? ` with fault ${action.fault}` : ''}` });
  }
  if (action.wording !== undefined && (action.fault === undefined || !REFUSALS.has(action.fault))) {
    ctx.addIssue({ code: 'custom', path: ['wording'], message: 'wording goes with fault reject_json_schema or reject_response_format' });
  }
}

const RuleSchema = z
  .object({
    match: MatchSchema.default({}),
    times: z.number().int().min(1).optional(),
    ...ActionShape,
  })
  .strict()
  .superRefine(checkAction);
export type Rule = z.infer<typeof RuleSchema>;

const FallbackSchema = z.object(ActionShape).strict().superRefine(checkAction);
export type Fallback = z.infer<typeof FallbackSchema>;

export const ScenarioSchema = z
  .object({
    models: z.array(z.string().min(1)).min(1).default([DEFAULT_MODEL]),
    rules: z.array(RuleSchema).default([]),
    fallback: FallbackSchema.optional(),
  })
  .strict();
export type Scenario = z.infer<typeof ScenarioSchema>;
/** What a scenario file or an in-process caller provides (before defaults and reply normalisation). */
export type ScenarioInput = z.input<typeof ScenarioSchema>;

export function parseScenario(input: unknown, source = 'scenario'): Scenario {
  const parsed = ScenarioSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new CodegodError('USAGE', `invalid ${source}: ${problems.join('; ')}`, { exitCode: 2 });
}

/** Reads a JSON or YAML scenario file (YAML is a superset of JSON, so one parser reads both). */
export async function loadScenarioFile(path: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CodegodError('USAGE', `cannot read scenario ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { exitCode: 2 });
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new CodegodError('USAGE', `scenario ${path} is neither JSON nor YAML: ${(err as Error).message.split('\n')[0]}`, { exitCode: 2 });
  }
  return parseScenario(data, `scenario ${path}`);
}

/** What the matcher knows about one chat completion request. */
export interface MatchInput {
  role?: string | undefined;
  phase?: string | undefined;
  task?: string | undefined;
  model: string;
  /** Every message's text content, joined with newlines. */
  text: string;
}

export function ruleMatches(match: Match, input: MatchInput): boolean {
  if (match.role !== undefined && match.role !== input.role) return false;
  if (match.phase !== undefined && match.phase !== input.phase) return false;
  if (match.task !== undefined && match.task !== input.task) return false;
  if (match.model !== undefined && match.model !== input.model) return false;
  if (match.contains !== undefined) {
    const needles = typeof match.contains === 'string' ? [match.contains] : match.contains;
    if (!needles.every((n) => input.text.includes(n))) return false;
  }
  return true;
}

/**
 * Index of the first rule that matches and still has answers left (`used[i]` answers given
 * so far), or undefined.
 */
export function selectRule(rules: readonly Rule[], used: readonly number[], input: MatchInput): number | undefined {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.times !== undefined && (used[i] ?? 0) >= rule.times) continue;
    if (ruleMatches(rule.match, input)) return i;
  }
  return undefined;
}

export function replyText(reply: Reply | undefined): string {
  if (reply === undefined) return '{}';
  return reply.kind === 'text' ? reply.text : JSON.stringify(reply.value);
}

/** Deterministic token estimate (about four characters a token), used for usage and latency. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** The small part of JSON Schema the light checks below read. */
type JsonSchemaLike = {
  type?: string | string[];
  properties?: Record<string, JsonSchemaLike>;
  required?: string[];
};

function asSchema(value: unknown): JsonSchemaLike | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonSchemaLike) : undefined;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeAllows(declared: string | string[] | undefined, value: unknown): boolean {
  if (declared === undefined) return true;
  const allowed = Array.isArray(declared) ? declared : [declared];
  const actual = jsonType(value);
  return allowed.includes(actual) || (actual === 'integer' && allowed.includes('number'));
}

/**
 * A light conformance check of a reply against a request's JSON schema: the top-level type,
 * the required keys, and the declared type of each top-level property present. Guided
 * decoding guarantees at least this much, so a scripted reply failing it is a scenario bug.
 */
export function schemaProblems(value: unknown, rawSchema: unknown): string[] {
  const schema = asSchema(rawSchema);
  if (!schema) return [];
  if (!typeAllows(schema.type, value)) return [`expected ${String(schema.type)} at the top level, got ${jsonType(value)}`];
  if (jsonType(value) !== 'object') return [];
  const obj = value as Record<string, unknown>;
  const problems = (schema.required ?? []).filter((k) => !(k in obj)).map((k) => `missing required key '${k}'`);
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (key in obj && !typeAllows(asSchema(prop)?.type, obj[key])) {
      problems.push(`key '${key}' should be ${String(asSchema(prop)?.type)}, got ${jsonType(obj[key])}`);
    }
  }
  return problems;
}

function wrongValueFor(type: string | string[] | undefined): unknown {
  const t = Array.isArray(type) ? type : type === undefined ? [] : [type];
  if (t.length === 0) return undefined;
  if (!t.includes('integer') && !t.includes('number')) return 12345;
  if (!t.includes('string')) return 'not the declared type';
  return [false];
}

/**
 * JSON that breaks the request's schema on purpose: the first required key missing and every
 * other declared property of the wrong type. Without a usable object schema, a value of the
 * wrong top-level type.
 */
export function schemaViolation(rawSchema: unknown): unknown {
  const schema = asSchema(rawSchema);
  const isObject = schema?.type === 'object' || schema?.properties !== undefined;
  if (!schema || !isObject) return schema?.type === 'array' ? {} : [];
  const [firstRequired] = schema.required ?? [];
  const out: Record<string, unknown> = {};
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (key === firstRequired) continue;
    const wrong = wrongValueFor(asSchema(prop)?.type);
    if (wrong !== undefined) out[key] = wrong;
  }
  return firstRequired === undefined && Object.keys(out).length === 0 ? [] : out;
}

/** Text that no JSON parser accepts: a trailing `,,` is invalid after any JSON prefix. */
export function malformed(text: string): string {
  return `${text.slice(0, -1)},,`;
}
