import { isIP } from 'node:net';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * DNS rebinding: a web page from a name the attacker controls, re-pointed at 127.0.0.1, can
 * read a dashboard that answers without a token as if it were its own origin. The browser
 * still sends the attacker's name in `Host`, so a dashboard without a token answers only
 * requests addressed to a loopback name or address, the address it is bound to, or a name
 * listed in CODEGOD_HTTP_ALLOWED_HOSTS. With a token the token is the guard (a rebinding
 * page never holds it), so any Host is served.
 *
 * Only the name is compared, not the port: port forwards (`ssh -L`, `kubectl
 * port-forward`, a published container port) change the port a browser addresses, never
 * what a rebinding page can send as its name.
 */

/** `localhost`, any name under `.localhost` (browsers resolve those to loopback themselves), 127/8 and ::1. */
function isLoopback(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && host === '::1';
}

/** The name part of a Host header, lower case, without brackets or port; undefined when malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const value = header.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/.exec(value);
  if (bracketed) return bracketed[1];
  const plain = /^([a-z0-9._-]+)(?::\d+)?$/.exec(value);
  return plain?.[1]?.replace(/\.$/, '');
}

/** Whether a request's Host may reach a dashboard without a token. */
export function hostAllowed(header: string | undefined, boundHost: string, allowed: readonly string[]): boolean {
  const name = hostName(header);
  if (name === undefined) return false;
  return isLoopback(name) || name === boundHost.toLowerCase() || allowed.some((a) => a.toLowerCase() === name);
}

/**
 * Middleware in front of every route: without a token, a request whose Host is not allowed
 * gets 421 and one JSON line naming the setting that would allow it.
 */
export function hostGuard(opts: { token: string | undefined; boundHost: string; allowedHosts: readonly string[] }): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (opts.token !== undefined || hostAllowed(req.get('host'), opts.boundHost, opts.allowedHosts)) return next();
    const shown = (req.get('host') ?? '').slice(0, 100);
    res.status(421).json({
      error: {
        code: 'MISDIRECTED',
        message: `without an API token this dashboard answers only requests addressed to localhost, a loopback address or CODEGOD_HTTP_HOST, not '${shown}'; add the name to CODEGOD_HTTP_ALLOWED_HOSTS or set CODEGOD_API_TOKEN`,
      },
    });
  };
}
