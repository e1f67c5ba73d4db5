/**
 * The dashboard's access rules (orchestrator/http/auth.ts) over real HTTP: a bare express app
 * with the middleware in front of one read route and one mutating route.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { authMiddleware, createAuthenticator, readCookie, safeEqual, SESSION_COOKIE, sessionValue } from '../../orchestrator/http/auth.js';

const TOKEN = 'unit-test-token-0123456789';
let server: Server | undefined;

async function serve(token: string | undefined): Promise<string> {
  const app = express();
  app.use(
    authMiddleware(createAuthenticator(token), (_req, res, failure) => {
      res.status(failure.status).json({ error: { code: failure.code, message: failure.message } });
    }),
  );
  app.get('/page', (_req, res) => res.send('page'));
  app.get('/page/deep', (_req, res) => res.send('deep'));
  app.post('/api/change', (_req, res) => res.json({ changed: true }));
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('without a configured token', () => {
  it('lets reads through and refuses every mutating call with 403 naming CODEGOD_API_TOKEN', async () => {
    const url = await serve(undefined);
    expect((await fetch(`${url}/page`)).status).toBe(200);
    for (const headers of [{}, { Authorization: `Bearer ${TOKEN}` }] as Array<Record<string, string>>) {
      const res = await fetch(`${url}/api/change`, { method: 'POST', headers });
      expect(res.status).toBe(403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('FORBIDDEN');
      expect(body.error.message).toContain('CODEGOD_API_TOKEN');
    }
  });
});

describe('with a token', () => {
  it('needs it for reads and writes, as a bearer token', async () => {
    const url = await serve(TOKEN);
    const anonymous = await fetch(`${url}/page`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="codegod"');
    expect((await fetch(`${url}/page`, { headers: { Authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await fetch(`${url}/page`, { headers: { Authorization: `Basic ${TOKEN}` } })).status).toBe(401);
    expect((await fetch(`${url}/page`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${url}/api/change`, { method: 'POST' })).status).toBe(401);
    const ok = await fetch(`${url}/api/change`, { method: 'POST', headers: { Authorization: `bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ changed: true });
  });

  it('turns ?token= into an HttpOnly SameSite=Strict cookie and a redirect without the token', async () => {
    const url = await serve(TOKEN);
    const res = await fetch(`${url}/page/deep?x=1&token=${TOKEN}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/page/deep?x=1');
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const pair = cookie.split(';')[0]!;
    expect(pair).toBe(`${SESSION_COOKIE}=${sessionValue(TOKEN)}`);
    expect((await fetch(`${url}/page/deep`, { headers: { cookie: pair } })).status).toBe(200);
    // A wrong ?token= sets nothing.
    const wrong = await fetch(`${url}/page?token=nope-nope-nope-nope`, { redirect: 'manual' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
  });

  it('accepts the cookie for a mutating call only from its own origin', async () => {
    const url = await serve(TOKEN);
    const cookie = `${SESSION_COOKIE}=${sessionValue(TOKEN)}`;
    expect((await fetch(`${url}/api/change`, { method: 'POST', headers: { cookie } })).status).toBe(403);
    expect((await fetch(`${url}/api/change`, { method: 'POST', headers: { cookie, origin: 'http://evil.example' } })).status).toBe(403);
    expect((await fetch(`${url}/api/change`, { method: 'POST', headers: { cookie, origin: url } })).status).toBe(200);
    expect((await fetch(`${url}/api/change`, { method: 'POST', headers: { cookie: `${SESSION_COOKIE}=${sessionValue('another-token-xyz')}`, origin: url } })).status).toBe(401);
  });

  it('never redirects to another site', async () => {
    const url = await serve(TOKEN);
    const res = await fetch(`${url}//evil.example/?token=${TOKEN}`, { redirect: 'manual' });
    const location = res.headers.get('location') ?? '';
    expect(location.startsWith('/')).toBe(true);
    expect(location.startsWith('//')).toBe(false);
  });
});

describe('helpers', () => {
  it('safeEqual compares strings of any length', () => {
    expect(safeEqual(TOKEN, TOKEN)).toBe(true);
    expect(safeEqual(TOKEN, `${TOKEN}0`)).toBe(false);
    expect(safeEqual('', TOKEN)).toBe(false);
  });

  it('readCookie finds one cookie among several', () => {
    expect(readCookie('a=1; codegod_session=abc; b=2', SESSION_COOKIE)).toBe('abc');
    expect(readCookie('a=1', SESSION_COOKIE)).toBeUndefined();
    expect(readCookie(undefined, SESSION_COOKIE)).toBeUndefined();
  });
});
