import { Command, InvalidArgumentError } from 'commander';
import { CodegodError, errorMessage } from '../../shared/domain/errors.js';
import { startScriptedLlmServer, type LatencyModel } from './server.js';

/**
 * `npm run llm-server -- --scenario s.yaml --port 8000 [--latency ttft=200,tpot=20,penalty=0.05]
 * [--no-grammar-check]` runs the scripted OpenAI-compatible server until SIGINT/SIGTERM. It prints its base URL
 * (for VLLM_API_URL) as the one line on stdout once it listens.
 */

const LATENCY_KEYS: Record<string, keyof LatencyModel> = {
  ttft: 'ttftMs',
  tpot: 'perTokenMs',
  penalty: 'concurrencyPenalty',
};

function parseLatency(value: string): Partial<LatencyModel> {
  const out: Partial<LatencyModel> = {};
  for (const part of value.split(',')) {
    const [name, raw] = part.split('=').map((s) => s.trim());
    const key = name === undefined ? undefined : LATENCY_KEYS[name];
    const num = Number(raw);
    if (!key || raw === undefined || raw === '' || !Number.isFinite(num) || num < 0) {
      throw new InvalidArgumentError(`expected ttft=<ms>,tpot=<ms>,penalty=<factor> (non-negative numbers), got '${part}'`);
    }
    out[key] = num;
  }
  return out;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InvalidArgumentError(`not a port: '${value}'`);
  return port;
}

async function main(): Promise<void> {
  const opts = new Command('llm-server')
    .description('scripted OpenAI-compatible server for codegod tests and benchmarks')
    .requiredOption('--scenario <path>', 'scenario file (JSON or YAML)')
    .option('--port <n>', 'port to listen on (0 picks a free one)', parsePort, 8000)
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--latency <spec>', 'simulated GPU latency: ttft=<ms>,tpot=<ms per token>,penalty=<per extra request>', parseLatency)
    .option('--no-grammar-check', 'do not hold requests and replies to xgrammar (a server without guided decoding)')
    .parse()
    .opts<{ scenario: string; port: number; host: string; latency?: Partial<LatencyModel>; grammarCheck: boolean }>();

  const server = await startScriptedLlmServer({
    scenarioPath: opts.scenario,
    port: opts.port,
    host: opts.host,
    grammarCheck: opts.grammarCheck,
    ...(opts.latency ? { latency: opts.latency } : {}),
  });
  process.stdout.write(`${server.url}\n`);
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`llm-server: ${errorMessage(err)}\n`);
  process.exit(err instanceof CodegodError ? err.exitCode : 1);
});
