import type { ChatMessage } from './client.js';

/**
 * codegod's token estimate, the one prompt budgets are held to and prompt sizes are recorded
 * in. It is tokenizer-free and conservative: code and JSON run at about 3–4 bytes a token
 * with the tokenizers of the models codegod targets, so counting 3.5 bytes a token rarely
 * underestimates. Each message adds a few tokens of chat-template framing.
 */
export const BYTES_PER_TOKEN = 3.5;
export const MESSAGE_OVERHEAD_TOKENS = 4;

export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / BYTES_PER_TOKEN);
}

export function estimateMessagesTokens(messages: readonly Pick<ChatMessage, 'content'>[]): number {
  return messages.reduce((sum, m) => sum + MESSAGE_OVERHEAD_TOKENS + estimateTokens(m.content), 0);
}
