import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Request, Response } from 'express';

/**
 * The dashboard's static files: the pages' scripts (ES modules, checked by TypeScript through
 * JSDoc) and their stylesheet, in assets/. They are read once, when this module loads, and
 * served from memory at `/assets/<version>/<file>`; nothing else under assets/ is reachable.
 *
 * The version is a hash of every file, so a page always loads the files of the server that
 * rendered it, relative imports between the modules stay within one version, and a browser
 * may keep them for good. A request for another version (a page rendered before an upgrade,
 * or by another replica) gets today's files, to be checked again next time.
 */
const DIR = new URL('./assets/', import.meta.url);
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

const files = new Map<string, { body: Buffer; type: string }>();
for (const name of readdirSync(DIR).sort()) {
  const type = CONTENT_TYPES[extname(name)];
  if (type) files.set(name, { body: readFileSync(new URL(name, DIR)), type });
}

const version = (() => {
  const hash = createHash('sha256');
  for (const [name, { body }] of files) hash.update(name).update('\0').update(body).update('\0');
  return hash.digest('hex').slice(0, 16);
})();

/** Where a page finds one of the files (a programming error names a file that does not exist). */
export function assetUrl(name: string): string {
  if (!files.has(name)) throw new Error(`no dashboard asset ${name}`);
  return `/assets/${version}/${name}`;
}

/** `GET /assets/:version/:name`. Needs no credentials: the files are the same for everyone and hold no data. */
export function serveAsset(req: Request<{ version: string; name: string }>, res: Response): void {
  const file = files.get(req.params.name);
  if (!file) {
    res.status(404).type('text/plain').send('not found');
    return;
  }
  res
    .status(200)
    .type(file.type)
    .setHeader('Cache-Control', req.params.version === version ? 'public, max-age=31536000, immutable' : 'no-cache')
    .send(file.body);
}
