import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { IServerAdapter } from '@bull-board/api/dist/types.js';
import { ExpressAdapter } from '@bull-board/express';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { BuildIdSchema } from '../../shared/domain/build.js';
import type { HttpOptions } from '../../shared/options.js';
import { CodegodError, errorMessage, NotFoundError } from '../../shared/domain/errors.js';
import type { Logger } from '../../shared/logger.js';
import { ALL_QUEUES } from '../../shared/engine/queues.js';
import { LoopStateStore } from '../../shared/memory/loop-state.js';
import { OrchestratorMetrics } from './metrics.js';
import type { Scheduler } from '../../shared/engine/scheduler.js';
import { apiRouter } from './api.js';
import { httpStatus, sendError } from './errors.js';
import { serveAsset } from './assets.js';
import { authMiddleware, createAuthenticator, type AuthFailure } from './auth.js';
import { hostGuard } from './host-guard.js';
import { agentsPage, buildPage, buildsPage, contentSecurityPolicy, messagePage, newNonce } from './pages.js';
import { withTimeout } from '../../shared/timeout.js';
import { EventStreams } from './sse.js';

/**
 * The orchestrator's HTTP face, on CODEGOD_HTTP_HOST:CODEGOD_HTTP_PORT (port 0 picks a free
 * one; the bound URL is returned):
 *
 * | path            | what                                                              |
 * |-----------------|-------------------------------------------------------------------|
 * | /               | builds with state, progress, age and goal; a form to start one    |
 * | /builds/:id     | the build's DAG, live over SSE, with a panel per task (its trace) |
 * | /agents         | every agent: role, state, current task, heartbeat age            |
 * | /queues         | Bull Board over the goals queue and every role queue              |
 * | /api/...        | REST API (api.ts)                                                 |
 * | /metrics        | Prometheus exposition (metrics.ts)                                |
 * | /assets/...     | the pages' scripts and stylesheet (assets.ts); needs no token     |
 * | /health         | Redis and queue reachability; 200 or 503; needs no token          |
 *
 * Who may call what is auth.ts's. The server holds no state of its own: every replica of the
 * orchestrator answers the same from Redis.
 */

export interface HttpServerDeps {
  options: HttpOptions;
  redis: Redis;
  scheduler: Scheduler;
  logger: Logger;
}

export interface HttpServer {
  /** Where the server answers, e.g. http://127.0.0.1:8080 (a wildcard host shows as loopback). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** How long /health waits for Redis and each queue before calling them unreachable. */
const HEALTH_TIMEOUT_MS = 2_000;
/** A scrape gives up after this long (Redis down): Prometheus then records the target as down. */
const METRICS_TIMEOUT_MS = 10_000;
/** Open connections get this long to finish on close before they are cut. */
const CLOSE_GRACE_MS = 1_000;

function unanswered(what: string, ms: number): CodegodError {
  return new CodegodError('UNAVAILABLE', `${what}: no answer within ${ms} ms`);
}

function displayHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Browsers get pages; API clients, scrapers and Bull Board's own calls get JSON. */
function wantsJson(req: Request): boolean {
  return req.path.startsWith('/api/') || req.path === '/metrics' || req.path.startsWith('/queues/api/') || req.accepts(['html', 'json']) === 'json';
}

export async function startHttpServer(deps: HttpServerDeps): Promise<HttpServer> {
  const { options, redis, scheduler } = deps;
  const logger = deps.logger.child({ component: 'http' });
  const { keys, dag } = scheduler;
  const streams = new EventStreams(redis, keys, dag, logger);
  const metrics = new OrchestratorMetrics(redis, keys, scheduler.queues, options.heartbeatMs);
  const traces = new LoopStateStore(redis, keys, logger);
  const auth = createAuthenticator(options.apiToken);
  const host = options.host;

  const page = (res: Response, status: number, render: (nonce: string) => string) => {
    const nonce = newNonce();
    res.status(status).setHeader('Content-Security-Policy', contentSecurityPolicy(nonce)).type('html').send(render(nonce));
  };
  const reject = (req: Request, res: Response, failure: AuthFailure) => {
    if (wantsJson(req)) {
      res.status(failure.status).json({ error: { code: failure.code, message: failure.message } });
      return;
    }
    const lines =
      failure.status === 401
        ? [
            'This dashboard needs the API token (CODEGOD_API_TOKEN; start-agents.sh keeps it in secrets/api_token).',
            'Open this page once with ?token=<the token> added to its address: a session cookie then keeps you signed in and the token leaves the address bar.',
          ]
        : [failure.message];
    page(res, failure.status, (nonce) => messagePage(nonce, failure.status === 401 ? 'Sign in' : 'Not allowed', lines));
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(hostGuard({ token: options.apiToken, boundHost: host, allowedHosts: options.allowedHosts }));
  app.use((_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  app.get('/health', async (_req, res) => {
    const probe = async <T>(p: () => Promise<T>, what: string) => {
      const started = Date.now();
      try {
        const value = await withTimeout(p(), HEALTH_TIMEOUT_MS, () => unanswered(what, HEALTH_TIMEOUT_MS));
        return { ok: true as const, ms: Date.now() - started, value };
      } catch (err) {
        return { ok: false as const, ms: Date.now() - started, error: errorMessage(err) };
      }
    };
    const [ping, ...queues] = await Promise.all([
      probe(() => redis.ping(), 'redis'),
      ...ALL_QUEUES.map((name) => probe(() => scheduler.queues.get(name).getJobCounts('waiting', 'active'), `queue ${name}`)),
    ]);
    const ok = ping.ok && queues.every((q) => q.ok);
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'unavailable',
      redis: ping.ok ? { ok: true, latencyMs: ping.ms } : { ok: false, error: ping.error },
      queues: Object.fromEntries(
        ALL_QUEUES.map((name, i) => {
          const q = queues[i]!;
          return [name, q.ok ? { ok: true, waiting: q.value.waiting ?? 0, active: q.value.active ?? 0 } : { ok: false, error: q.error }];
        }),
      ),
    });
  });

  // Before the credentials check: the sign-in page needs its stylesheet, and the files hold no data.
  app.get('/assets/:version/:name', serveAsset);

  app.use(authMiddleware(auth, reject));

  app.get('/metrics', async (_req, res) => {
    const text = await withTimeout(metrics.render(), METRICS_TIMEOUT_MS, () => unanswered('metrics', METRICS_TIMEOUT_MS));
    res.type(metrics.contentType).send(text);
  });

  const board = new ExpressAdapter();
  board.setBasePath('/queues');
  createBullBoard({
    // Without a token nothing may change state, Bull Board's buttons included.
    queues: ALL_QUEUES.map((name) => new BullMQAdapter(scheduler.queues.get(name), { readOnlyMode: options.apiToken === undefined })),
    // @bull-board/express pins its own patch release of @bull-board/api, whose private
    // fields make the two declarations of the same interface incompatible to the compiler only.
    serverAdapter: board as unknown as IServerAdapter,
    options: { uiConfig: { boardTitle: 'codegod queues' } },
  });
  app.use('/queues', board.getRouter());

  // Room for the longest goal allowed, at four bytes a character.
  const bodyLimit = `${Math.ceil((options.maxGoalChars * 4) / 1024) + 16}kb`;
  app.use('/api', express.json({ limit: bodyLimit }), apiRouter({ options, redis, scheduler, traces, streams, logger }));

  app.get('/', (_req, res) => page(res, 200, buildsPage));
  app.get('/agents', (_req, res) => page(res, 200, agentsPage));
  app.get('/builds/:id', async (req, res) => {
    const id = BuildIdSchema.safeParse(req.params.id);
    if (!id.success) throw new NotFoundError('build', String(req.params.id).slice(0, 60));
    await dag.getBuild(id.data);
    page(res, 200, (nonce) => buildPage(nonce, id.data));
  });

  app.use((req) => {
    throw new CodegodError('NOT_FOUND', `nothing at ${req.path.slice(0, 200)}`);
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (wantsJson(req) || res.headersSent) {
      sendError(res, err, logger);
      return;
    }
    const known = err instanceof CodegodError;
    if (!known) logger.error({ err }, 'unexpected error serving a page');
    const status = known ? httpStatus(err.code) : 500;
    page(res, status, (nonce) => messagePage(nonce, status === 404 ? 'Not found' : 'Something went wrong', [known ? err.message : 'The orchestrator log has the details.']));
  });

  const server = createServer(app);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
    throw new CodegodError(
      'HTTP_LISTEN',
      `cannot serve the dashboard on ${host}:${options.port} (${code}); set CODEGOD_HTTP_PORT to a free port (0 picks one) or CODEGOD_HTTP_HOST to an address of this machine`,
      { exitCode: 2 },
    );
  }
  server.on('error', (err) => logger.warn({ err: errorMessage(err) }, 'HTTP server error'));
  const port = (server.address() as AddressInfo).port;
  const url = `http://${displayHost(host)}:${port}`;
  // A deliberate setting (a local run needs no token to watch), so it is information, not a warning.
  if (options.apiToken === undefined) {
    logger.info({ url }, 'dashboard is read-only: no CODEGOD_API_TOKEN, so the API refuses every mutating call');
  }
  logger.info({ url }, 'dashboard and API listening');

  return {
    url,
    port,
    close: async () => {
      streams.closeAll();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
