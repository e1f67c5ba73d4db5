import type { Wording } from './scenario.js';
import { VLLM_XGRAMMAR_REFUSAL } from './xgrammar-gate.js';

/**
 * How real OpenAI-compatible servers answer a `response_format` they refuse, so codegod's
 * client is tested against their words and statuses rather than one phrase of our own.
 */
export interface Refusal {
  status: number;
  /** The whole JSON body, in the server's own shape. */
  body: unknown;
}

const openAiShape = (message: string, type: string, param: string | null = null, code: unknown = null) => ({
  error: { message, type, param, code },
});

/** A refusal of the request's JSON schema. */
export function schemaRefusal(wording: Wording = 'generic'): Refusal {
  switch (wording) {
    case 'vllm':
      return { status: 400, body: openAiShape(VLLM_XGRAMMAR_REFUSAL, 'BadRequestError', null, 400) };
    case 'ollama':
      // Ollama reports a schema it cannot turn into a grammar as a server error.
      return { status: 500, body: openAiShape('invalid JSON schema in format', 'api_error') };
    case 'llamacpp':
      return {
        status: 400,
        body: { error: { code: 400, message: 'JSON schema conversion failed:\nUnrecognized schema: {"type":"object"}', type: 'invalid_request_error' } },
      };
    case 'opaque':
      return { status: 400, body: openAiShape('Bad Request', 'invalid_request_error') };
    case 'generic':
      return { status: 400, body: openAiShape("response_format type 'json_schema' is not supported by this server", 'invalid_request_error', 'response_format') };
  }
}

/** A refusal of `json_object`, in the words of a server that knows only plain text. */
export function jsonObjectRefusal(wording: Wording = 'generic'): Refusal {
  return wording === 'opaque'
    ? schemaRefusal('opaque')
    : { status: 400, body: openAiShape("response_format type 'json_object' is not supported by this server", 'invalid_request_error', 'response_format') };
}
