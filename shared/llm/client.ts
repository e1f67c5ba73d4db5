import { performance } from 'node:perf_hooks';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { z } from 'zod';
import { CodegodError, errorMessage } from '../domain/errors.js';
import type { Logger } from '../logger.js';
import type { LlmClientOptions, LlmTarget } from '../options.js';
import { LlmNameSchema, nullUsageRecorder, type UsageRecorder } from '../telemetry/llm-usage.js';
import { displayUrl } from '../redis/connection.js';
import { isRole, ROLES, type Role } from '../domain/roles.js';
import { apiErrorDetail, isKnownRefusal, mayBeRefusal } from './refusal.js';
import { estimateMessagesTokens } from './tokens.js';
import { wireJsonSchema } from './wire-schema.js';

/**
 * codegod's LLM client: the official `openai` SDK against any OpenAI-compatible endpoint
 * (vLLM, Ollama, the scripted test server). It adds what the SDK lacks:
 *
 * - structured output: a JSON schema derived from the caller's zod schema (see
 *   `llm/wire-schema.ts`) goes out as `response_format` (vLLM's guided decoding honours it),
 *   every reply is parsed with zod, and a bounded repair loop re-asks after invalid JSON, a
 *   schema violation or a reply cut off at `max_tokens`.
 * - a server that refuses a schema (vLLM's xgrammar gate, llama.cpp's or Ollama's schema
 *   converters; see `llm/refusal.ts`) gets that schema as `json_object` with the schema in the
 *   prompt from then on: remembered per schema for the client's life, one warning line each;
 *   validation stays the same. A server that refuses `json_object` too fails the call with
 *   LLM_STRUCTURED_OUTPUT_REFUSED, naming the endpoint and what it refused.
 * - per-role endpoints (VLLM_API_URL_<ROLE>, e.g. a small model for some roles), models and
 *   sampling temperature (LLM_TEMPERATURE, per role too);
 * - a per-client limit on requests in flight (one client per process is the intended use, so
 *   it is the process's limit), waiting in FIFO order;
 * - the caller's AbortSignal cancels both the wait for a slot and the HTTP request;
 * - usage per request through a UsageRecorder (Redis in services, nothing in checks);
 * - one-line errors for an unreachable server, a wrong model name, timeouts.
 *
 * The SDK itself retries connection errors, timeouts, 429 and 5xx with backoff
 * (LLM_MAX_RETRIES, each try limited to LLM_TIMEOUT_MS until the response headers).
 *
 * Messages go out exactly as given (a json_object request adds the schema after them), repair
 * turns appended after that, so the stable prefix (role system prompt, then task context)
 * stays byte-identical and vLLM's prefix cache hits.
 */

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const TaskContextSchema = z.object({
  buildId: z.string().min(1).optional(),
  taskId: z.string().min(1).optional(),
  agentId: z.string().min(1).optional(),
});
export type TaskContext = z.infer<typeof TaskContextSchema>;

/** The plain-data part of a structured request, validated on entry. */
const StructuredInputSchema = z.object({
  role: LlmNameSchema,
  phase: LlmNameSchema,
  messages: z.array(ChatMessageSchema).min(1),
  maxTokens: z.number().int().min(1),
  taskContext: TaskContextSchema.default({}),
});

export interface StructuredRequest<S extends z.ZodType> {
  /** A worker role, or another caller's name (`planner`); picks LLM_MODEL_<ROLE> when one is set. */
  role: string;
  /** ORPAV phase or other step name; sent as `x-codegod-phase`. */
  phase: string;
  schema: S;
  messages: ChatMessage[];
  /** `max_tokens` of each request: keep it tight, guided decoding can run away in whitespace. */
  maxTokens: number;
  signal?: AbortSignal | undefined;
  taskContext?: TaskContext | undefined;
  /** A model for this call only (a build's `--model`), over LLM_MODEL and per-role models. */
  model?: string | undefined;
}

export interface LlmUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface StructuredResult<T> {
  data: T;
  /** Summed over every request the call made (repairs included). */
  usage: LlmUsage;
  /** Requests that returned a reply: 1 when the first one was valid. */
  attempts: number;
  latencyMs: number;
  model: string;
}

/** What an LlmClient works with besides its options. */
export interface LlmClientDeps {
  logger: Logger;
  /** Where usage goes: Redis in services, nowhere in checks. @default nowhere */
  recorder?: UsageRecorder;
}

export interface LlmCheck {
  url: string;
  models: string[];
  /** The model plain calls use (LLM_MODEL, else the first one listed). */
  model: string;
  /** Roles with an endpoint of their own (VLLM_API_URL_<ROLE>), with the model they use there. */
  roles?: Array<{ role: Role; url: string; model: string }>;
}

/** What a caller's requests use: its role's target for a worker role, else the defaults. */
function targetFor(options: LlmClientOptions, role: string): LlmTarget {
  return isRole(role) ? options.roles[role] : options.defaults;
}

/** FIFO counting semaphore; a waiter whose signal aborts leaves the queue. */
class Semaphore {
  active = 0;
  peak = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async acquire(signal: AbortSignal | undefined): Promise<() => void> {
    if (this.active < this.limit) {
      this.active++;
    } else {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.waiters.indexOf(wake);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal?.reason);
        };
        // A releasing holder hands its slot over directly (active unchanged), so no newcomer
        // can overtake a waiter.
        const wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.waiters.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    this.peak = Math.max(this.peak, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    };
  }
}

/** Rejects as soon as `signal` aborts, without waiting for the SDK to notice (it does not during retry backoff). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new APIUserAbortError());
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** The innermost `code` (ECONNREFUSED, ENOTFOUND, …) or message of a connection error's cause chain. */
function connectionDetail(err: unknown): string {
  let detail = errorMessage(err);
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code !== '') return code;
    if (e !== err) detail = errorMessage(e);
  }
  return detail;
}

interface WireSchema {
  schema: z.ZodType;
  /** `response_format.json_schema.name`: role and phase. */
  name: string;
  json: Record<string, unknown>;
}

/** What a json_object request adds to the prompt: the grammar no longer carries the schema, so the prompt does. */
function schemaInstruction(json: Record<string, unknown>): ChatMessage {
  return { role: 'user', content: `Answer with one JSON object and nothing else. It must match this JSON schema:\n${JSON.stringify(json)}` };
}

/** Servers without guided decoding sometimes fence JSON in markdown; unwrapping it saves a repair round. */
function unfence(text: string): string {
  const m = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/.exec(text);
  return m ? m[1]! : text;
}

type Verdict<T> = { ok: true; data: T } | { ok: false; error: string };

function judge<S extends z.ZodType>(schema: S, content: string, finishReason: string, maxTokens: number): Verdict<z.output<S>> {
  if (finishReason === 'length') {
    return { ok: false, error: `it was cut off at max_tokens (${maxTokens}); give a shorter reply` };
  }
  let value: unknown;
  try {
    value = JSON.parse(unfence(content));
  } catch (err) {
    return { ok: false, error: `it is not valid JSON (${errorMessage(err)})` };
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, data: parsed.data };
  const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  return { ok: false, error: `it does not match the schema (${issues.join('; ').slice(0, 1_000)})` };
}

interface Reply {
  content: string;
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
}

/**
 * Thrown for a failed request that already went through the SDK's retries; carries the elapsed
 * time and the prompt's estimated size for usage records.
 */
class RequestFailure extends Error {
  constructor(
    readonly error: CodegodError,
    readonly ms: number,
    readonly promptEstimate: number,
  ) {
    super(error.message);
  }
}

/** One OpenAI-compatible server: its SDK client and what codegod learned about it. */
interface Endpoint {
  /** The base URL without credentials, for messages. */
  url: string;
  /** The setting that names it (VLLM_API_URL or VLLM_API_URL_<ROLE>), for messages. */
  variable: string;
  openai: OpenAI;
  firstModel: Promise<string> | undefined;
  /** Schemas this server refused as json_schema, with its answer: asked as json_object from then on. */
  refusedSchemas: WeakMap<z.ZodType, string>;
}

export class LlmClient {
  /** The default endpoint (VLLM_API_URL) without credentials. */
  readonly url: string;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly recorder: UsageRecorder;
  private readonly logger: Logger;
  private readonly limiter: Semaphore;

  constructor(
    private readonly options: LlmClientOptions,
    deps: LlmClientDeps,
  ) {
    this.url = displayUrl(options.defaults.url);
    this.recorder = deps.recorder ?? nullUsageRecorder;
    this.logger = deps.logger.child({ component: 'llm' });
    this.limiter = new Semaphore(options.maxInflight);
  }

  /** The endpoint of `role` (made on first use); one in-flight limit covers all of them. */
  private endpoint(role: string): Endpoint {
    const target = targetFor(this.options, role);
    const base = target.url;
    let endpoint = this.endpoints.get(base);
    if (!endpoint) {
      endpoint = {
        url: displayUrl(base),
        variable: target.urlVariable,
        openai: new OpenAI({
          baseURL: base,
          apiKey: this.options.apiKey ?? 'EMPTY',
          maxRetries: this.options.maxRetries,
          timeout: this.options.timeoutMs,
          logger: this.logger.child({ component: 'openai' }),
          logLevel: sdkLogLevel(this.logger.level),
        }),
        firstModel: undefined,
        refusedSchemas: new WeakMap(),
      };
      this.endpoints.set(base, endpoint);
    }
    return endpoint;
  }

  /** Requests to the LLM in flight now (benches check that batching gets used). */
  get inFlight(): number {
    return this.limiter.active;
  }

  /** Most requests this client has had in flight at once. */
  get maxInFlight(): number {
    return this.limiter.peak;
  }

  /** The model ids the endpoint of `role` (default: VLLM_API_URL's) lists at `/models`. */
  async listModels(signal?: AbortSignal, role = ''): Promise<string[]> {
    const endpoint = this.endpoint(role);
    try {
      const ids: string[] = [];
      for await (const model of endpoint.openai.models.list({ signal })) ids.push(model.id);
      return ids;
    } catch (err) {
      if (err instanceof APIError && err.status === 404) {
        throw new CodegodError(
          'LLM_UNREACHABLE',
          `cannot reach the LLM at ${endpoint.url} (HTTP 404 for /models); ${endpoint.variable} must be the OpenAI base URL, usually ending in /v1`,
          { cause: err },
        );
      }
      throw this.translate(err, signal, role);
    }
  }

  /** LLM_MODEL_<ROLE> for a worker role, else LLM_MODEL, else the first model the role's endpoint lists (asked once). */
  async modelFor(role: string, signal?: AbortSignal): Promise<string> {
    const configured = targetFor(this.options, role).model;
    if (configured !== undefined) return configured;
    const endpoint = this.endpoint(role);
    // The lookup is shared by every caller waiting on it, so no one caller's signal may cancel it.
    endpoint.firstModel ??= this.listModels(undefined, role).then((models) => {
      const [first] = models;
      if (first === undefined) {
        throw new CodegodError('LLM_MODEL_UNKNOWN', `the LLM at ${endpoint.url} serves no models; load one or set LLM_MODEL`);
      }
      this.logger.info({ model: first, url: endpoint.url }, 'using the first model the LLM serves');
      return first;
    });
    const lookup = endpoint.firstModel;
    try {
      return await abortable(lookup, signal);
    } catch (err) {
      // A failed lookup is not cached: the server may be up on the next call.
      if (!signal?.aborted && endpoint.firstModel === lookup) endpoint.firstModel = undefined;
      throw this.translate(err, signal, role);
    }
  }

  /** The setting that chose a role's model, for error messages. */
  private modelVariable(role: string): string {
    return targetFor(this.options, role).modelVariable;
  }

  /**
   * Asks for JSON matching `schema` and returns it parsed. Throws CodegodError:
   * LLM_BAD_RESPONSE (no valid reply within LLM_REPAIR_ATTEMPTS repairs), TASK_ABORTED,
   * LLM_UNREACHABLE, LLM_TIMEOUT, LLM_MODEL_UNKNOWN, LLM_REQUEST_FAILED,
   * LLM_STRUCTURED_OUTPUT_REFUSED.
   */
  async structured<S extends z.ZodType>(request: StructuredRequest<S>): Promise<StructuredResult<z.output<S>>> {
    const input = StructuredInputSchema.parse({
      role: request.role,
      phase: request.phase,
      messages: request.messages,
      maxTokens: request.maxTokens,
      taskContext: request.taskContext,
    });
    const { signal, schema } = request;
    const started = performance.now();
    if (signal?.aborted) throw this.translate(new APIUserAbortError(), signal, input.role);
    const model = request.model ?? (await this.modelFor(input.role, signal));
    const wire = { schema, name: `${input.role}_${input.phase}`.slice(0, 64), json: wireJsonSchema(schema) };
    const repairs: ChatMessage[] = [];
    const usage: LlmUsage = { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
    const attempts = 1 + this.options.repairAttempts;
    const base = { role: input.role, phase: input.phase, model, ...input.taskContext };
    let lastError = '';

    for (let attempt = 1; attempt <= attempts; attempt++) {
      let reply: Reply;
      let ms: number;
      let promptEstimate: number;
      try {
        ({ reply, ms, promptEstimate } = await this.complete(input, model, wire, repairs, signal));
      } catch (err) {
        if (!(err instanceof RequestFailure)) throw err;
        await this.record({ ...base, promptTokens: 0, completionTokens: 0, promptEstimate: err.promptEstimate, ms: err.ms, attempt, ok: false, error: err.message });
        throw err.error;
      }
      usage.promptTokens += reply.promptTokens;
      usage.completionTokens += reply.completionTokens;
      usage.totalTokens = usage.promptTokens + usage.completionTokens;
      const verdict = judge(schema, reply.content, reply.finishReason, input.maxTokens);
      await this.record({
        ...base,
        promptTokens: reply.promptTokens,
        completionTokens: reply.completionTokens,
        promptEstimate,
        ms,
        attempt,
        ok: verdict.ok,
        ...(verdict.ok ? {} : { error: verdict.error }),
      });
      if (verdict.ok) {
        return { data: verdict.data, usage, attempts: attempt, latencyMs: Math.round(performance.now() - started), model };
      }
      lastError = verdict.error;
      this.logger.warn({ role: input.role, phase: input.phase, attempt, error: lastError }, 'invalid LLM reply');
      repairs.push(
        { role: 'assistant', content: reply.content },
        { role: 'user', content: `Your reply was not valid: ${lastError}. Reply again with only JSON matching the schema.` },
      );
    }
    throw new CodegodError(
      'LLM_BAD_RESPONSE',
      `no valid reply from the LLM for ${input.role}/${input.phase} after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${lastError}`,
    );
  }

  /**
   * One request (with the SDK's retries), holding an in-flight slot while it runs. A refused
   * `json_schema` is asked again as `json_object` within the same call. Returns the prompt's
   * size by codegod's own estimate (what prompt budgets are held to) with the reply.
   */
  private async complete(
    input: z.infer<typeof StructuredInputSchema>,
    model: string,
    wire: WireSchema,
    repairs: ChatMessage[],
    signal: AbortSignal | undefined,
  ): Promise<{ reply: Reply; ms: number; promptEstimate: number }> {
    const headers: Record<string, string> = { 'x-codegod-role': input.role, 'x-codegod-phase': input.phase };
    if (input.taskContext.taskId !== undefined) headers['x-codegod-task'] = input.taskContext.taskId;
    if (input.taskContext.buildId !== undefined) headers['x-codegod-build'] = input.taskContext.buildId;
    const endpoint = this.endpoint(input.role);
    const { temperature } = targetFor(this.options, input.role);
    let promptEstimate = estimateMessagesTokens([...input.messages, ...repairs]);
    let release: () => void;
    try {
      release = await this.limiter.acquire(signal);
    } catch (err) {
      throw this.translate(err, signal, input.role);
    }
    const started = performance.now();
    try {
      for (;;) {
        const format = this.formatFor(endpoint, wire.schema);
        // The schema goes into the prompt only when the grammar does not carry it, after the
        // caller's messages and before the repair turns, so the prompt prefix stays stable.
        const messages = format === 'json_object' ? [...input.messages, schemaInstruction(wire.json), ...repairs] : [...input.messages, ...repairs];
        promptEstimate = estimateMessagesTokens(messages);
        try {
          const completion = await abortable(
            endpoint.openai.chat.completions.create(
              {
                model,
                messages,
                max_tokens: input.maxTokens,
                ...(temperature === undefined ? {} : { temperature }),
                response_format:
                  format === 'json_object' ? { type: 'json_object' } : { type: 'json_schema', json_schema: { name: wire.name, schema: wire.json, strict: true } },
              },
              { signal, headers },
            ),
            signal,
          );
          const choice = completion.choices[0];
          return {
            reply: {
              content: choice?.message.content ?? '',
              finishReason: choice?.finish_reason ?? 'stop',
              promptTokens: completion.usage?.prompt_tokens ?? 0,
              completionTokens: completion.usage?.completion_tokens ?? 0,
            },
            ms: Math.round(performance.now() - started),
            promptEstimate,
          };
        } catch (err) {
          if (!(await this.refusesFormat(endpoint, err, { model, messages, maxTokens: input.maxTokens, headers }, signal))) throw err;
          if (format === 'json_object') throw this.refusedBoth(endpoint, input, wire, err);
          this.rememberRefusal(endpoint, input, wire, err);
        }
      }
    } catch (err) {
      const error =
        err instanceof APIError && err.status === 404 ? await this.unknownModel(input.role, model, err, signal) : this.translate(err, signal, input.role);
      throw new RequestFailure(error, Math.round(performance.now() - started), promptEstimate);
    } finally {
      release();
    }
  }

  /** `json_object` where configured or where the endpoint refused this schema before, else `json_schema`. */
  private formatFor(endpoint: Endpoint, schema: z.ZodType): 'json_schema' | 'json_object' {
    return this.options.structuredOutput === 'json_object' || endpoint.refusedSchemas.has(schema) ? 'json_object' : 'json_schema';
  }

  /**
   * Whether `err` refuses the request's `response_format`: a known wording, or a 400/422 to a
   * request the server accepts once `response_format` is left out. That probe is the same
   * request otherwise (`max_tokens` included: a prompt too long for the context is refused
   * either way), streamed and cut off as soon as the server accepts it.
   */
  private async refusesFormat(
    endpoint: Endpoint,
    err: unknown,
    request: { model: string; messages: ChatMessage[]; maxTokens: number; headers: Record<string, string> },
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    if (signal?.aborted) return false;
    if (isKnownRefusal(err)) return true;
    if (!mayBeRefusal(err)) return false;
    try {
      const stream = await abortable(
        endpoint.openai.chat.completions.create(
          { model: request.model, messages: request.messages, max_tokens: request.maxTokens, stream: true },
          { signal, headers: request.headers, maxRetries: 0 },
        ),
        signal,
      );
      stream.controller.abort();
      return true;
    } catch (probeErr) {
      if (signal?.aborted) throw probeErr;
      return false;
    }
  }

  /** From now on this schema goes out as json_object; the first refusal of each schema is logged once. */
  private rememberRefusal(endpoint: Endpoint, input: z.infer<typeof StructuredInputSchema>, wire: WireSchema, err: unknown): void {
    if (endpoint.refusedSchemas.has(wire.schema)) return;
    const detail = err instanceof APIError ? apiErrorDetail(err) : errorMessage(err);
    endpoint.refusedSchemas.set(wire.schema, detail);
    this.logger.warn(
      { role: input.role, phase: input.phase, schema: wire.name, endpoint: endpoint.url, refusal: detail },
      `the LLM refuses the JSON schema of ${input.role}/${input.phase} (${detail}); asking with json_object and the schema in the prompt from now on`,
    );
  }

  private refusedBoth(endpoint: Endpoint, input: z.infer<typeof StructuredInputSchema>, wire: WireSchema, err: unknown): CodegodError {
    const objectDetail = err instanceof APIError ? apiErrorDetail(err) : errorMessage(err);
    const schemaDetail = endpoint.refusedSchemas.get(wire.schema);
    const refused = schemaDetail
      ? `json_schema (${schemaDetail}) and json_object (${objectDetail})`
      : `json_object (${objectDetail}), and LLM_STRUCTURED_OUTPUT=json_object rules out json_schema`;
    return new CodegodError(
      'LLM_STRUCTURED_OUTPUT_REFUSED',
      `the LLM at ${endpoint.url} refuses structured output for ${input.role}/${input.phase}: ${refused}; serve the model with guided decoding (vLLM, Ollama, llama.cpp server) or set ${endpoint.variable} to one that has it`,
      { cause: err },
    );
  }

  /** A 404 from chat completions: a model the server does not serve, or a wrong base URL (then listing fails too). */
  private async unknownModel(role: string, model: string, err: APIError, signal: AbortSignal | undefined): Promise<CodegodError> {
    let served: string[];
    try {
      served = await this.listModels(signal, role);
    } catch (listErr) {
      return listErr instanceof CodegodError ? listErr : this.translate(listErr, signal, role);
    }
    if (served.includes(model)) return this.translate(err, signal, role);
    return new CodegodError(
      'LLM_MODEL_UNKNOWN',
      `model '${model}' is not served by ${this.endpoint(role).url} (it serves: ${served.join(', ') || 'nothing'}); set ${this.modelVariable(role)}`,
      { cause: err },
    );
  }

  private translate(err: unknown, signal: AbortSignal | undefined, role = ''): CodegodError {
    if (err instanceof CodegodError) return err;
    const { url, variable } = this.endpoint(role);
    if (signal?.aborted || err instanceof APIUserAbortError) {
      return new CodegodError('TASK_ABORTED', 'LLM call aborted', { cause: err });
    }
    const tries = `${this.options.maxRetries + 1} tr${this.options.maxRetries === 0 ? 'y' : 'ies'}`;
    if (err instanceof APIConnectionTimeoutError) {
      return new CodegodError(
        'LLM_TIMEOUT',
        `the LLM at ${url} did not answer within ${this.options.timeoutMs} ms (${tries}); check the server or raise LLM_TIMEOUT_MS`,
        { cause: err },
      );
    }
    if (err instanceof APIConnectionError) {
      return new CodegodError(
        'LLM_UNREACHABLE',
        `cannot reach the LLM at ${url} (${connectionDetail(err)}); start vLLM/Ollama or set ${variable}`,
        { cause: err },
      );
    }
    if (err instanceof APIError && err.status !== undefined) {
      const hint =
        err.status === 401 || err.status === 403
          ? '; check LLM_API_KEY'
          : err.status === 429 || err.status >= 500
            ? ` after ${tries}`
            : '';
      return new CodegodError('LLM_REQUEST_FAILED', `the LLM at ${url} answered ${apiErrorDetail(err)}${hint}`, {
        cause: err,
      });
    }
    // Anything else is a bug, not an LLM failure: it keeps its own type and stack.
    throw err;
  }

  /** Usage recording never fails a call whose answer arrived: a lost counter beats a lost task. */
  private async record(call: Parameters<UsageRecorder['record']>[0]): Promise<void> {
    this.logger.debug({ ...call }, 'llm call');
    try {
      await this.recorder.record(call);
    } catch (err) {
      this.logger.warn({ error: errorMessage(err) }, 'cannot record LLM usage');
    }
  }
}

/** The SDK logs through our logger; its own level follows the logger's. */
function sdkLogLevel(level: string): 'off' | 'error' | 'warn' | 'info' | 'debug' {
  switch (level) {
    case 'silent':
      return 'off';
    case 'fatal':
    case 'error':
      return 'error';
    case 'trace':
      return 'debug';
    case 'warn':
    case 'debug':
      return level;
    default:
      return 'info';
  }
}

/**
 * Checks that the LLM answers and serves every configured model, for `doctor`: lists
 * `/models` and returns what a plain call would use. A role with its own endpoint
 * (VLLM_API_URL_<ROLE>) has that endpoint checked for its model too. Throws LLM_UNREACHABLE
 * or LLM_MODEL_UNKNOWN.
 */
export async function checkLlm(options: LlmClientOptions, deps: LlmClientDeps): Promise<LlmCheck> {
  const client = new LlmClient(options, deps);
  const models = await client.listModels();
  const { defaults } = options;
  const ownEndpoint = ROLES.filter((r) => options.roles[r].urlVariable !== defaults.urlVariable);
  const notServed = (name: string, url: string, served: string[], variable: string) =>
    new CodegodError('LLM_MODEL_UNKNOWN', `model '${name}' is not served by ${url} (it serves: ${served.join(', ') || 'nothing'}); set ${variable}`);
  for (const target of [defaults, ...ROLES.filter((r) => !ownEndpoint.includes(r)).map((r) => options.roles[r])]) {
    if (target.model !== undefined && !models.includes(target.model)) throw notServed(target.model, client.url, models, target.modelVariable);
  }
  const model = defaults.model ?? models[0];
  if (model === undefined) {
    throw new CodegodError('LLM_MODEL_UNKNOWN', `the LLM at ${client.url} serves no models; load one or set LLM_MODEL`);
  }
  const roles: NonNullable<LlmCheck['roles']> = [];
  for (const role of ownEndpoint) {
    const target = options.roles[role];
    const url = displayUrl(target.url);
    const roleModelVariable = `LLM_MODEL_${role.toUpperCase()}`;
    const served = await client.listModels(undefined, role);
    const wanted = target.model ?? served[0];
    if (wanted === undefined) throw new CodegodError('LLM_MODEL_UNKNOWN', `the LLM at ${url} serves no models; load one or set ${roleModelVariable}`);
    if (!served.includes(wanted)) throw notServed(wanted, url, served, roleModelVariable);
    roles.push({ role, url, model: wanted });
  }
  return { url: client.url, models, model, ...(roles.length ? { roles } : {}) };
}
