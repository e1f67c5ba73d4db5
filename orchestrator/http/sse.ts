import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { TERMINAL_BUILD_STATES } from '../../shared/domain/build.js';
import type { DagStore } from '../../shared/engine/dag-store.js';
import { CodegodError, errorMessage } from '../../shared/domain/errors.js';
import { followEvents, readEvents, type BuildEvent } from '../../shared/engine/events.js';
import type { Keys } from '../../shared/redis/keys.js';
import type { Logger } from '../../shared/logger.js';

/**
 * A build's event stream over Server-Sent Events. Each message carries one stream entry:
 * `id:` is the Redis Stream id and `data:` the event as JSON, so a browser's EventSource
 * resumes after a reconnect by itself (it sends `Last-Event-ID`); other clients pass
 * `?from=<id>`. The entries after that id are replayed, then new ones follow as they are
 * written. Once the build has ended (`build.finished` or `build.cancelled`) an `end` event
 * with the final state closes the stream; a client that connects to an ended build gets the
 * replay and the `end` at once.
 *
 * Following blocks a Redis connection (XREAD BLOCK), so each stream gets a connection of its
 * own, and their number is capped.
 */

const STREAM_ID = /^(0|\d{1,20}-\d{1,20})$/;
const REPLAY_PAGE = 1_000;

export interface EventStreamOptions {
  /** Streams open at once; more are refused with 503. */
  maxStreams: number;
  /** Comment lines sent this often keep proxies from closing an idle stream. */
  keepAliveMs: number;
  /** How long one XREAD blocks (bounds how late a closed client is noticed). */
  blockMs: number;
}

const DEFAULT_STREAM_OPTIONS: EventStreamOptions = { maxStreams: 200, keepAliveMs: 15_000, blockMs: 5_000 };

/** The position to resume after: Last-Event-ID (a reconnecting EventSource) wins over `?from=`. */
function resumeFrom(req: Request): string {
  const header = req.get('last-event-id');
  const query = typeof req.query.from === 'string' ? req.query.from : undefined;
  const from = (header ?? query ?? '0').trim() || '0';
  if (!STREAM_ID.test(from)) throw new CodegodError('REQUEST_INVALID', `'${from.slice(0, 40)}' is not an event id (expected <ms>-<seq> or 0)`);
  return from;
}

export class EventStreams {
  private readonly open = new Set<{ abort: AbortController; conn: Redis }>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly dag: DagStore,
    private readonly logger: Logger,
    private readonly opts: EventStreamOptions = DEFAULT_STREAM_OPTIONS,
  ) {}

  /** Serves the stream of `buildId` (already validated) until the build ends or the client leaves. */
  async serve(buildId: string, req: Request, res: Response): Promise<void> {
    const from = resumeFrom(req);
    await this.dag.getBuild(buildId);
    if (this.open.size >= this.opts.maxStreams) {
      throw new CodegodError('UNAVAILABLE', `too many event streams open (${this.opts.maxStreams}); try again later`);
    }
    const conn = this.redis.duplicate();
    conn.on('error', (err) => this.logger.debug({ err: errorMessage(err) }, 'event stream connection error'));
    const entry = { abort: new AbortController(), conn };
    this.open.add(entry);
    const { signal } = entry.abort;
    const stop = () => {
      entry.abort.abort();
      conn.disconnect();
    };
    res.on('close', stop);

    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    // Reverse proxies (nginx) would otherwise buffer the stream.
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write('retry: 2000\n\n');
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), this.opts.keepAliveMs);

    let last = from;
    const send = (event: BuildEvent) => {
      last = event.id;
      res.write(`id: ${event.id}\ndata: ${JSON.stringify(event)}\n\n`);
    };
    const replay = async () => {
      for (;;) {
        const page = await readEvents(conn, this.keys, buildId, last, REPLAY_PAGE);
        page.forEach(send);
        if (page.length === 0) return;
      }
    };
    try {
      await replay();
      let state: string = (await this.dag.getBuild(buildId)).state;
      // An ended build may have written its last events while the first replay ran.
      if (TERMINAL_BUILD_STATES.has(state)) await replay();
      else {
        for await (const event of followEvents(conn, this.keys, buildId, { afterId: last, signal, untilFinished: true, blockMs: this.opts.blockMs })) {
          send(event);
          if ((event.type === 'build.finished' || event.type === 'build.cancelled') && event.state) state = event.state;
        }
      }
      if (!signal.aborted) res.write(`event: end\ndata: ${JSON.stringify({ state, lastEventId: last })}\n\n`);
    } catch (err) {
      if (!signal.aborted) this.logger.warn({ buildId, err: errorMessage(err) }, 'event stream ended by an error');
    } finally {
      clearInterval(keepAlive);
      res.off('close', stop);
      this.open.delete(entry);
      conn.disconnect();
      res.end();
    }
  }

  /** Ends every open stream (server shutdown). */
  closeAll(): void {
    for (const { abort, conn } of this.open) {
      abort.abort();
      conn.disconnect();
    }
  }
}
