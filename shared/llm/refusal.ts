import { APIError } from 'openai';

/**
 * How OpenAI-compatible servers say no to a `response_format`. Each words it its own way and
 * some do not name the field at all, so codegod recognises a refusal by behaviour first: an
 * HTTP 400 (or 422) to a request carrying `response_format` that the same server accepts
 * once the field is left out (the client sends it again without the field to find out).
 * The phrasings below are the ones known, recognised without that extra request, and at any
 * status (Ollama and older llama.cpp servers answer some of them with a 500).
 */
const KNOWN_REFUSALS: readonly RegExp[] = [
  // vLLM: its xgrammar gate, and a schema xgrammar (or another backend) cannot compile.
  /not supported by xgrammar/i,
  /failed to (?:transform|convert) (?:the )?json schema/i,
  /(?:grammar|guided decoding|structured output)s? (?:is |are )?not supported/i,
  // llama.cpp server: its schema-to-grammar converter, and builds that know only json_object.
  /json schema conversion failed/i,
  /response_format type must be one of/i,
  /either "json_schema" or "grammar"/i,
  // Ollama.
  /invalid json schema in format/i,
  /invalid format: expected "json"/i,
  // Servers that name the field: OpenAI's own wording, LiteLLM, TGI.
  /(?:response_format|json_schema|json_object)\b[^\n]*\b(?:not supported|unsupported|is invalid|not allowed)/i,
];

/** Statuses that say nothing about the request's content. */
const UNRELATED_STATUSES = new Set([401, 403, 404, 408, 409, 429]);

/** The server's own message: the SDK keeps the body's `error` (an object with `message`, or a bare string). */
function serverMessage(err: APIError): string {
  const body = err.error as unknown;
  if (typeof body === 'string') return body;
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : err.message.replace(/^\d{3} /, '');
}

/** `HTTP <status>: <first line of the server's message>`, for logs and one-line errors. */
export function apiErrorDetail(err: APIError): string {
  const raw = serverMessage(err);
  const line = raw.split('\n').find((l) => l.trim() !== '') ?? raw;
  return `HTTP ${err.status}: ${line.trim().slice(0, 300)}`;
}

/** A refusal recognised from its wording (or from `param: response_format`), no further request needed. */
export function isKnownRefusal(err: unknown): err is APIError {
  if (!(err instanceof APIError) || err.status === undefined || UNRELATED_STATUSES.has(err.status)) return false;
  if (err.param === 'response_format') return true;
  const text = serverMessage(err);
  return KNOWN_REFUSALS.some((re) => re.test(text));
}

/** An answer that may be a refusal in words codegod does not know: worth asking again without `response_format`. */
export function mayBeRefusal(err: unknown): err is APIError {
  return err instanceof APIError && (err.status === 400 || err.status === 422);
}
