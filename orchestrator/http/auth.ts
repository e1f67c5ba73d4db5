import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Who may do what over HTTP. One secret, CODEGOD_API_TOKEN (at least 16 characters; give it
 * as CODEGOD_API_TOKEN_FILE in deployments):
 *
 * - Mutating calls (any method but GET, HEAD, OPTIONS) always need it. Without a configured
 *   token they are refused with 403: a dashboard nobody secured must not start or stop builds.
 * - When it is set, every page and GET call needs it too. `/health` stays open.
 *
 * Credentials: `Authorization: Bearer <token>` (scripts, Prometheus, the CLI), or for a
 * browser, open any page once with `?token=<token>`: the answer sets an HttpOnly,
 * SameSite=Strict session cookie and redirects to the same page without the token, so it
 * stays out of the address bar, history and Referer headers. The cookie holds an HMAC of the
 * token, never the token, and stops working when the token changes. A mutating call carried
 * by the cookie must also come from the dashboard's own origin (Origin header), on top of
 * SameSite, so no other site can make a browser cancel a build.
 *
 * Comparisons are constant-time over SHA-256 digests, so neither the token's length nor its
 * content leaks through timing.
 */

export const SESSION_COOKIE = 'codegod_session';
const SESSION_MAX_AGE_S = 7 * 24 * 3_600;
const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** Constant-time equality of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** The session cookie's value for a token. */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('codegod dashboard session v1').digest('hex');
}

/** One cookie's value from a Cookie header, undefined when absent. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function bearer(req: Request): string | undefined {
  const header = req.get('authorization');
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m?.[1];
}

/** Whether a request's Origin header names this server (the Host it was sent to). */
function sameOrigin(req: Request): boolean {
  const origin = req.get('origin');
  const host = req.get('host');
  if (!origin || !host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

export type AuthFailure = { status: 401 | 403; code: 'UNAUTHORIZED' | 'FORBIDDEN'; message: string };

export interface Authenticator {
  /** Why `req` may not proceed, or undefined when it may. */
  check(req: Request): AuthFailure | undefined;
  /** Handles `?token=` on a page: sets the session cookie and redirects; false when not applicable. */
  acceptPageToken(req: Request, res: Response): boolean;
}

export function createAuthenticator(token: string | undefined): Authenticator {
  const session = token === undefined ? undefined : sessionValue(token);
  const credentials = (req: Request): 'bearer' | 'cookie' | undefined => {
    if (token === undefined || session === undefined) return undefined;
    const presented = bearer(req);
    if (presented !== undefined && safeEqual(presented, token)) return 'bearer';
    const cookie = readCookie(req.get('cookie'), SESSION_COOKIE);
    if (cookie !== undefined && safeEqual(cookie, session)) return 'cookie';
    return undefined;
  };

  return {
    check(req) {
      const mutating = !READ_METHODS.has(req.method);
      if (token === undefined) {
        if (!mutating) return undefined;
        return {
          status: 403,
          code: 'FORBIDDEN',
          message: 'mutating calls are disabled because no API token is configured; set CODEGOD_API_TOKEN (or CODEGOD_API_TOKEN_FILE) on the orchestrator',
        };
      }
      const how = credentials(req);
      if (how === undefined) {
        return { status: 401, code: 'UNAUTHORIZED', message: 'missing or wrong API token: send Authorization: Bearer <CODEGOD_API_TOKEN>' };
      }
      if (mutating && how === 'cookie' && !sameOrigin(req)) {
        return { status: 403, code: 'FORBIDDEN', message: 'cross-origin request refused: send Authorization: Bearer <CODEGOD_API_TOKEN>' };
      }
      return undefined;
    },

    acceptPageToken(req, res) {
      const offered = req.query.token;
      if (token === undefined || session === undefined || typeof offered !== 'string' || req.method !== 'GET') return false;
      if (!safeEqual(offered, token)) return false;
      const secure = req.secure ? '; Secure' : '';
      res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${session}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MAX_AGE_S}${secure}`);
      const url = new URL(req.originalUrl, 'http://codegod.invalid');
      url.searchParams.delete('token');
      // One leading slash: `//host` would be a redirect to another site.
      res.redirect(303, `${url.pathname.replace(/^\/+/, '/')}${url.search}`);
      return true;
    },
  };
}

/**
 * Middleware: lets through what `auth` allows; answers the rest with 401/403 through
 * `reject` (JSON for the API, a page for browsers).
 */
export function authMiddleware(auth: Authenticator, reject: (req: Request, res: Response, failure: AuthFailure) => void): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (auth.acceptPageToken(req, res)) return;
    const failure = auth.check(req);
    if (!failure) return next();
    if (failure.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="codegod"');
    reject(req, res, failure);
  };
}
