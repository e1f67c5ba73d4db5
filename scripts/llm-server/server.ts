import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { CodegodError } from '../../shared/domain/errors.js';
import { jsonObjectRefusal, schemaRefusal, type Refusal } from './refusals.js';
import {
  estimateTokens,
  loadScenarioFile,
  malformed,
  parseScenario,
  replyText,
  schemaProblems,
  schemaViolation,
  selectRule,
  type Fallback,
  type Fault,
  type Rule,
  type Scenario,
  type ScenarioInput,
} from './scenario.js';
import { GrammarCompileError, JsonGrammar } from './xgrammar.js';
import { VLLM_XGRAMMAR_REFUSAL, xgrammarRefusals } from './xgrammar-gate.js';

/**
 * A scripted OpenAI-compatible server (`node:http` only) for tests and benchmarks: real HTTP,
 * so the real `openai` SDK and codegod's real LLM client run against it. It answers
 * `/v1/chat/completions` (plain and SSE-streamed) from a scenario, injects faults, and can
 * simulate a GPU's latency with batching.
 *
 * With the grammar check (on unless turned off) it is held to what a model under vLLM's
 * default engine, xgrammar, can say: a `json_schema` request is refused as vLLM refuses it
 * (HTTP 400 for a schema its xgrammar gate rejects or xgrammar cannot compile), and every
 * scripted reply to a `json_schema` or `json_object` request must be one the request's grammar
 * accepts (keys in schema order, no extra keys, escapes only where strings allow them).
 * A scripted reply no such model could have written is the scenario's bug: the server answers
 * HTTP 500 `scenario_grammar_mismatch` naming the byte the grammar stopped at, counts it in
 * `grammarRejections` and marks it in the request log. Deliberate faults (malformed JSON, a
 * schema violation) are not checked: they stand for servers without guided decoding.
 *
 * Control endpoints for out-of-process callers:
 * `GET /_log` (request log), `GET /_stats` (in-flight counters and time series, answers per
 * rule), `POST /_reset` (clears them; a JSON body, if any, replaces the scenario).
 */

/**
 * Simulated GPU latency: a response takes `ttftMs + tokens × perTokenMs × (1 + penalty ×
 * (inFlight − 1))`. The factor is re-read as the reply is produced, so a request slows while
 * others join its batch; with penalty < 1 a batch still beats running requests one by one.
 */
export interface LatencyModel {
  ttftMs: number;
  perTokenMs: number;
  concurrencyPenalty: number;
}

export interface ScriptedLlmServerOptions {
  scenario?: ScenarioInput;
  scenarioPath?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  latency?: Partial<LatencyModel>;
  /** Entries kept in the request log and in the in-flight series (oldest dropped first). */
  logLimit?: number;
  /**
   * Hold requests and scripted replies to xgrammar, as vLLM would (default true). Off, the
   * server stands for one without guided decoding, and only a light check of the reply's
   * top-level shape remains.
   */
  grammarCheck?: boolean;
}

export interface RequestLogEntry {
  id: number;
  /** Epoch ms at arrival. */
  at: number;
  method: string;
  path: string;
  role?: string | undefined;
  phase?: string | undefined;
  task?: string | undefined;
  /** The build the request is for (`x-codegod-build`). */
  build?: string | undefined;
  model?: string | undefined;
  messages?: unknown[] | undefined;
  /** `response_format.type` of the request (`json_schema`, `json_object`, `text`), if any. */
  responseFormat?: string | undefined;
  /** `max_completion_tokens` or `max_tokens` of the request, if any. */
  maxTokens?: number | undefined;
  /** The sampling temperature the request asked for, if any. */
  temperature?: number | undefined;
  stream: boolean;
  /** Index of the rule that answered, `fallback`, or null when nothing did. */
  rule: number | 'fallback' | null;
  fault: Fault | null;
  /** HTTP status sent; null while unanswered, and for ever for a request the client gave up on. */
  status: number | null;
  /** True when the client closed the connection before the answer was complete. */
  aborted: boolean;
  /** Milliseconds from arrival until the answer ended or the client went away. */
  ms: number | null;
  /** Why the grammar check refused the scripted reply, if it did. */
  grammarProblem?: string | undefined;
}

export interface InFlightSample {
  /** Ms since the server started or was last reset. */
  t: number;
  inFlight: number;
}

export interface ServerStats {
  inFlight: number;
  maxInFlight: number;
  requests: number;
  /** Answers given by each rule, by index. */
  ruleCounts: number[];
  fallbackCount: number;
  unmatched: number;
  /** Scripted replies the reply check refused (each one a scenario bug). */
  grammarRejections: number;
}

export interface ScriptedLlmServer {
  /** Base URL for an OpenAI client, ending in `/v1`. */
  readonly url: string;
  readonly port: number;
  readonly requests: readonly RequestLogEntry[];
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly inFlightSeries: readonly InFlightSample[];
  stats(): ServerStats;
  /** Clears the log, counters and series and restores every rule's `times` (for every build); optionally swaps the scenario. */
  reset(scenario?: ScenarioInput): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Characters per streamed delta (about four tokens), also the step of the latency schedule. */
const PIECE_CHARS = 16;

const MessageSchema = z.looseObject({
  role: z.string(),
  content: z
    .union([z.string(), z.null(), z.array(z.looseObject({ type: z.string(), text: z.string().optional() }))])
    .optional(),
});

const ChatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(MessageSchema).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  response_format: z
    .looseObject({
      type: z.string(),
      json_schema: z.looseObject({ schema: z.unknown().optional() }).optional(),
    })
    .nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().nullish(),
});
type ChatRequest = z.infer<typeof ChatRequestSchema>;

class HttpError extends Error {
  /** A body in another server's own shape, sent as is. */
  body?: unknown;

  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  static refusal(refusal: Refusal): HttpError {
    const err = new HttpError(refusal.status, 'refused', 'invalid_request_error', null);
    err.body = refusal.body;
    return err;
  }
}

function messageText(messages: ChatRequest['messages']): string {
  return messages
    .map((m) => {
      if (typeof m.content === 'string') return m.content;
      if (Array.isArray(m.content)) return m.content.map((p) => p.text ?? '').join('');
      return '';
    })
    .join('\n');
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, err.body ?? { error: { message: err.message, type: err.type, param: err.param, code: err.code } }, err.headers);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large', 'invalid_request_error', null);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON', 'invalid_request_error', null);
  }
}

/** Resolves normally when `signal` aborts (the client left or the server closes). */
function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

interface Answer {
  content: string;
  finishReason: 'stop' | 'length';
}

class ScriptedServer implements ScriptedLlmServer {
  readonly requests: RequestLogEntry[] = [];
  readonly inFlightSeries: InFlightSample[] = [];
  inFlight = 0;
  maxInFlight = 0;
  port = 0;
  /** Answers given by each rule, in all. */
  private used: number[] = [];
  /** Answers given by each rule per build (`x-codegod-build`; '' without one): what `times` limits. */
  private usedByBuild = new Map<string, number[]>();
  private fallbackCount = 0;
  private unmatched = 0;
  private grammarRejections = 0;
  private nextId = 1;
  private epoch = performance.now();
  /** Chat requests not yet closed: aborting one ends its wait; the promise settles when its socket has closed. */
  private readonly open = new Map<AbortController, Promise<void>>();
  private readonly http: Server;
  private readonly latency: LatencyModel;
  private readonly logLimit: number;

  constructor(
    private scenario: Scenario,
    private readonly host: string,
    private readonly grammar: JsonGrammar | undefined,
    options: ScriptedLlmServerOptions,
  ) {
    this.latency = { ttftMs: 0, perTokenMs: 0, concurrencyPenalty: 0, ...options.latency };
    this.logLimit = options.logLimit ?? 10_000;
    this.used = scenario.rules.map(() => 0);
    this.http = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        const httpErr = err instanceof HttpError ? err : new HttpError(500, (err as Error).message, 'server_error', null);
        if (!res.headersSent && !res.destroyed) sendError(res, httpErr);
        else res.destroy();
      });
    });
  }

  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}/v1`;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, this.host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.port = (this.http.address() as AddressInfo).port;
  }

  stats(): ServerStats {
    return {
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      requests: this.requests.length,
      ruleCounts: [...this.used],
      fallbackCount: this.fallbackCount,
      unmatched: this.unmatched,
      grammarRejections: this.grammarRejections,
    };
  }

  reset(scenario?: ScenarioInput): void {
    if (scenario !== undefined) this.scenario = parseScenario(scenario);
    this.requests.length = 0;
    this.inFlightSeries.length = 0;
    this.used = this.scenario.rules.map(() => 0);
    this.usedByBuild.clear();
    this.fallbackCount = 0;
    this.unmatched = 0;
    this.grammarRejections = 0;
    this.maxInFlight = this.inFlight;
    this.epoch = performance.now();
  }

  async close(): Promise<void> {
    const pending = [...this.open.values()];
    for (const c of this.open.keys()) c.abort();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await Promise.all([closed, ...pending]);
    await this.grammar?.dispose();
  }

  private trim<T>(list: T[]): void {
    if (list.length > this.logLimit) list.splice(0, list.length - this.logLimit);
  }

  private sample(): void {
    this.inFlightSeries.push({ t: Math.round(performance.now() - this.epoch), inFlight: this.inFlight });
    this.trim(this.inFlightSeries);
  }

  private logEntry(req: IncomingMessage, path: string): RequestLogEntry {
    const entry: RequestLogEntry = {
      id: this.nextId++,
      at: Date.now(),
      method: req.method ?? 'GET',
      path,
      role: header(req, 'x-codegod-role'),
      phase: header(req, 'x-codegod-phase'),
      task: header(req, 'x-codegod-task'),
      build: header(req, 'x-codegod-build'),
      stream: false,
      rule: null,
      fault: null,
      status: null,
      aborted: false,
      ms: null,
    };
    this.requests.push(entry);
    this.trim(this.requests);
    return entry;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/_log') return sendJson(res, 200, this.requests);
    if (method === 'GET' && path === '/_stats') return sendJson(res, 200, { ...this.stats(), series: this.inFlightSeries });
    if (method === 'POST' && path === '/_reset') {
      const text = await readBody(req);
      try {
        this.reset(text.trim() === '' ? undefined : (parseJsonBody(text) as ScenarioInput));
      } catch (err) {
        if (err instanceof CodegodError) throw new HttpError(400, err.message, 'invalid_request_error', 'invalid_scenario');
        throw err;
      }
      return sendJson(res, 200, { ok: true });
    }
    if (!path.startsWith('/v1/')) throw new HttpError(404, `no route ${method} ${path}`, 'invalid_request_error', 'not_found');

    const entry = this.logEntry(req, path);
    const started = performance.now();
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
    res.on('close', () => {
      entry.aborted = !res.writableFinished;
      entry.ms = Math.round(performance.now() - started);
    });
    try {
      if (method === 'GET' && path === '/v1/models') return this.models(res);
      if (method === 'POST' && path === '/v1/chat/completions') return await this.chat(req, res, entry);
      throw new HttpError(404, `no route ${method} ${path}`, 'invalid_request_error', 'not_found');
    } catch (err) {
      if (err instanceof HttpError && !res.headersSent) return sendError(res, err);
      throw err;
    }
  }

  private models(res: ServerResponse): void {
    const created = Math.floor(Date.now() / 1000);
    sendJson(res, 200, {
      object: 'list',
      data: this.scenario.models.map((id) => ({ id, object: 'model', created, owned_by: 'codegod', root: id })),
    });
  }

  private async chat(req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry): Promise<void> {
    const parsed = ChatRequestSchema.safeParse(parseJsonBody(await readBody(req)));
    if (!parsed.success) {
      throw new HttpError(400, `invalid chat completion request: ${z.prettifyError(parsed.error)}`, 'invalid_request_error', null);
    }
    const body = parsed.data;
    entry.model = body.model;
    entry.messages = body.messages;
    entry.responseFormat = body.response_format?.type;
    entry.maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    entry.temperature = body.temperature ?? undefined;
    entry.stream = body.stream === true;
    if (!this.scenario.models.includes(body.model)) {
      throw new HttpError(404, `The model \`${body.model}\` does not exist.`, 'invalid_request_error', 'model_not_found', 'model');
    }
    if (this.grammar && body.response_format?.type === 'json_schema') await this.vllmSchemaGate(this.grammar, body.response_format.json_schema?.schema);

    const build = entry.build ?? '';
    let usedHere = this.usedByBuild.get(build);
    if (!usedHere) this.usedByBuild.set(build, (usedHere = this.scenario.rules.map(() => 0)));
    const index = selectRule(this.scenario.rules, usedHere, {
      role: entry.role,
      phase: entry.phase,
      task: entry.task,
      model: body.model,
      text: messageText(body.messages),
    });
    let action: Rule | Fallback;
    if (index !== undefined) {
      this.used[index] = (this.used[index] ?? 0) + 1;
      usedHere[index] = (usedHere[index] ?? 0) + 1;
      entry.rule = index;
      action = this.scenario.rules[index]!;
    } else if (this.scenario.fallback) {
      this.fallbackCount++;
      entry.rule = 'fallback';
      action = this.scenario.fallback;
    } else {
      this.unmatched++;
      throw new HttpError(
        400,
        `no scenario rule matches this request (role=${entry.role ?? '-'}, phase=${entry.phase ?? '-'}, model=${body.model})`,
        'invalid_request_error',
        'scenario_no_match',
      );
    }
    entry.fault = action.fault ?? null;

    const gone = new AbortController();
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.sample();
    this.open.set(
      gone,
      new Promise<void>((resolve) =>
        res.once('close', () => {
          gone.abort();
          this.open.delete(gone);
          this.inFlight--;
          this.sample();
          resolve();
        }),
      ),
    );
    try {
      if (action.delayMs) await sleep(action.delayMs, undefined, { signal: gone.signal });
      if (action.fault === 'hang') return await untilAborted(gone.signal);
      const answer = await this.answer(action, body, entry);
      const id = `chatcmpl-scripted-${entry.id}`;
      await (body.stream ? this.stream(res, id, body, answer, gone.signal) : this.plain(res, id, body, answer, gone.signal));
    } catch (err) {
      // The client went away (or the server is closing) mid-answer: nothing left to send.
      if (gone.signal.aborted) return;
      throw err;
    }
  }

  /** vLLM's checks of a `json_schema` request before it schedules it: its xgrammar gate, then compiling the grammar. */
  private async vllmSchemaGate(grammar: JsonGrammar, schema: unknown): Promise<void> {
    if (xgrammarRefusals(schema).length > 0) throw new HttpError(400, VLLM_XGRAMMAR_REFUSAL, 'BadRequestError', null);
    try {
      await grammar.compile(schema);
    } catch (err) {
      if (!(err instanceof GrammarCompileError)) throw err;
      throw new HttpError(400, `Failed to transform json schema into a grammar: ${err.message}`, 'BadRequestError', null);
    }
  }

  /** The content and finish reason of an answer, or an HttpError for the HTTP faults. */
  private async answer(action: Rule | Fallback, body: ChatRequest, entry: RequestLogEntry): Promise<Answer> {
    const format = body.response_format;
    const schema = format?.type === 'json_schema' ? format.json_schema?.schema : undefined;
    switch (action.fault) {
      case 'http400':
        throw new HttpError(
          400,
          "This model's maximum context length is 4096 tokens. However, you requested 8192 tokens in the messages. Please reduce the length of the messages.",
          'BadRequestError',
          null,
        );
      case 'http500':
        throw new HttpError(500, 'scripted fault: internal server error', 'server_error', null);
      case 'http429':
        throw new HttpError(429, 'scripted fault: rate limited', 'rate_limit_error', 'rate_limit_exceeded', null, {
          'retry-after-ms': '20',
          'retry-after': '1',
        });
      case 'reject_json_schema':
        if (format?.type === 'json_schema') throw HttpError.refusal(schemaRefusal(action.wording));
        break;
      case 'reject_response_format':
        if (format?.type === 'json_schema') throw HttpError.refusal(schemaRefusal(action.wording));
        if (format?.type === 'json_object') throw HttpError.refusal(jsonObjectRefusal(action.wording));
        break;
      case 'schema_violation':
        return { content: JSON.stringify(schemaViolation(schema)), finishReason: 'stop' };
      case 'malformed_json':
        return { content: malformed(replyText(action.reply)), finishReason: 'stop' };
      default:
        break;
    }
    const content = replyText(action.reply);
    await this.checkReply(content, format, entry);
    if (action.fault === 'length') return { content: content.slice(0, Math.ceil(content.length / 2)), finishReason: 'length' };
    const maxTokens = body.max_completion_tokens ?? body.max_tokens;
    if (maxTokens !== undefined && maxTokens !== null && estimateTokens(content) > maxTokens) {
      return { content: content.slice(0, maxTokens * 4), finishReason: 'length' };
    }
    return { content, finishReason: 'stop' };
  }

  /**
   * Holds a scripted reply to the request's response_format: with the grammar check, to the
   * grammar vLLM would have compiled for it (`{"type": "object"}` for json_object); without,
   * to the top-level shape of a json_schema.
   */
  private async checkReply(content: string, format: ChatRequest['response_format'], entry: RequestLogEntry): Promise<void> {
    if (format?.type !== 'json_schema' && format?.type !== 'json_object') return;
    const schema = format.type === 'json_schema' ? format.json_schema?.schema : { type: 'object' };
    let problem: string | undefined;
    if (this.grammar) {
      const verdict = await this.grammar.check(schema, content);
      if (!verdict.ok) problem = verdict.problem;
    } else if (format.type === 'json_schema') {
      let problems: string[];
      try {
        problems = schemaProblems(JSON.parse(content), schema);
      } catch {
        problems = ['the reply is not JSON'];
      }
      if (problems.length > 0) problem = problems.join('; ');
    }
    if (problem === undefined) return;
    this.grammarRejections++;
    entry.grammarProblem = problem;
    throw new HttpError(
      500,
      `scenario bug: no model held to this request's ${format.type} could have written the scripted reply for ${entry.role ?? '-'}/${entry.phase ?? '-'}: ${problem}`,
      'server_error',
      'scenario_grammar_mismatch',
    );
  }

  private usage(body: ChatRequest, content: string) {
    const prompt = estimateTokens(messageText(body.messages));
    const completion = estimateTokens(content);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }

  /**
   * Waits out the simulated latency, calling `emit` with each piece of the content as it is
   * "generated". Targets are absolute times, so timer overshoot does not accumulate.
   */
  private async generate(content: string, signal: AbortSignal, emit: (piece: string) => void): Promise<void> {
    const { ttftMs, perTokenMs, concurrencyPenalty } = this.latency;
    let target = performance.now() + ttftMs;
    const until = async () => {
      const wait = target - performance.now();
      if (wait > 0) await sleep(wait, undefined, { signal });
    };
    await until();
    for (let at = 0; at < content.length; at += PIECE_CHARS) {
      const piece = content.slice(at, at + PIECE_CHARS);
      if (perTokenMs > 0) {
        target += (piece.length / 4) * perTokenMs * (1 + concurrencyPenalty * Math.max(0, this.inFlight - 1));
        await until();
      }
      emit(piece);
    }
  }

  private async plain(res: ServerResponse, id: string, body: ChatRequest, answer: Answer, signal: AbortSignal): Promise<void> {
    await this.generate(answer.content, signal, () => undefined);
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: answer.content, refusal: null },
          logprobs: null,
          finish_reason: answer.finishReason,
        },
      ],
      usage: this.usage(body, answer.content),
    });
  }

  private async stream(res: ServerResponse, id: string, body: ChatRequest, answer: Answer, signal: AbortSignal): Promise<void> {
    const includeUsage = body.stream_options?.include_usage === true;
    const base = { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: body.model };
    const send = (choices: unknown[], usage?: unknown) =>
      res.write(`data: ${JSON.stringify({ ...base, choices, ...(includeUsage ? { usage: usage ?? null } : {}) })}\n\n`);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    send([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    await this.generate(answer.content, signal, (piece) =>
      send([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]),
    );
    send([{ index: 0, delta: {}, logprobs: null, finish_reason: answer.finishReason }]);
    if (includeUsage) send([], this.usage(body, answer.content));
    res.end('data: [DONE]\n\n');
  }
}

/**
 * Starts the scripted server on `host` (default 127.0.0.1) and `port` (default: a free one).
 * Give either `scenario` (the object a scenario file holds) or `scenarioPath`; with neither it
 * serves the default model and answers nothing (every chat request is `scenario_no_match`).
 */
export async function startScriptedLlmServer(options: ScriptedLlmServerOptions = {}): Promise<ScriptedLlmServer> {
  const scenario = options.scenarioPath
    ? await loadScenarioFile(options.scenarioPath)
    : parseScenario(options.scenario ?? {});
  const grammar = options.grammarCheck === false ? undefined : await JsonGrammar.create();
  const server = new ScriptedServer(scenario, options.host ?? '127.0.0.1', grammar, options);
  await server.listen(options.port ?? 0);
  return server;
}
