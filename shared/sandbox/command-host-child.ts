import { spawnCommand, type SpawnRequest } from './command-runner.js';

/**
 * The command helper process (see command-host.ts). It only starts and watches commands, so
 * it stays small and its forks stay cheap. Messages: {type: 'run', id, request} and
 * {type: 'cancel', id} in; {type: 'done', id, outcome} or {type: 'error', id, message} out.
 */
type Message = { type: 'run'; id: number; request: SpawnRequest } | { type: 'cancel'; id: number };

const running = new Map<number, AbortController>();

process.on('message', (msg: Message) => {
  if (msg.type === 'cancel') {
    running.get(msg.id)?.abort('cancelled');
    return;
  }
  const controller = new AbortController();
  running.set(msg.id, controller);
  spawnCommand(msg.request, controller.signal)
    .then(
      (outcome) => process.send?.({ type: 'done', id: msg.id, outcome }),
      (err: unknown) => process.send?.({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) }),
    )
    .finally(() => running.delete(msg.id));
});

// The worker is gone (or let this helper go): exiting kills the groups of commands still
// running (command-runner's exit hook), so nothing outlives the worker.
process.on('disconnect', () => process.exit(0));
