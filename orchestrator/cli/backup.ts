import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { extract as tarExtract, list as tarList, type ReadEntry } from 'tar';
import { pack as tarPack, type Pack } from 'tar-stream';
import { z } from 'zod';
import { BUILD_ID_PATTERN } from '../../shared/domain/build.js';
import { CodegodError, errorMessage } from '../../shared/domain/errors.js';
import { MemoryStore } from '../../shared/memory/store.js';
import { exportMemories } from '../../shared/memory/transfer.js';
import { displayUrl } from '../../shared/redis/connection.js';
import { keysUnder, restoreSnapshot, SnapshotEntrySchema, takeSnapshot, type SnapshotEntry } from '../../shared/redis/snapshot.js';
import { SANDBOX_DIR } from '../../shared/sandbox/sandbox.js';
import { withSession, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { formatBytes, plural } from './format.js';

/**
 * `codegod backup` / `codegod restore`: one archive (tar.gz) holding a consistent snapshot of
 * every codegod key in Redis (builds, DAGs, streams, queues, agent memory and checkpoints),
 * the memories again as readable JSON (`memory import` takes it), and every build's
 * workspace. Restore needs an empty stack — no build and no agent memory under the prefix —
 * and checks the whole archive before it writes anything; a restore that fails half-way
 * takes back what it wrote.
 *
 * Layout: `codegod-backup.json` (manifest), `redis.jsonl` (one key per line: key, ttl, DUMP
 * payload), `memories.json`, `workspaces/<build>/…` (symlinks kept as symlinks; each build's
 * sandbox home and tmp, `.codegod/`, left out).
 */
export const MANIFEST = 'codegod-backup.json';
const REDIS_FILE = 'redis.jsonl';
const MEMORIES_FILE = 'memories.json';
const WORKSPACES = 'workspaces';

export const ManifestSchema = z.object({
  format: z.literal('codegod-backup'),
  version: z.literal(1),
  createdAt: z.string(),
  prefix: z.string().min(1),
  redis: z.object({ version: z.string(), keys: z.number().int().min(0), sha256: z.string().length(64), paused: z.boolean() }),
  builds: z.array(z.string()),
  memories: z.number().int().min(0),
  workspaces: z.array(z.string().regex(BUILD_ID_PATTERN)),
});
export type Manifest = z.infer<typeof ManifestSchema>;

function backupError(message: string, cause?: unknown): CodegodError {
  return new CodegodError('USAGE', message, { exitCode: EXIT.USAGE, ...(cause === undefined ? {} : { cause }) });
}

const memoriesText = (n: number) => `${n} agent ${n === 1 ? 'memory' : 'memories'}`;

function fsReason(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? errorMessage(err);
}

// --- backup -----------------------------------------------------------------------------------

function entry(pack: Pack, header: Parameters<Pack['entry']>[0], body?: Buffer | string): Promise<void> {
  return new Promise((done, fail) => {
    pack.entry(header, body ?? '', (err) => (err ? fail(err) : done()));
  });
}

/** Build directories of the workspace root (names that are build ids). */
async function workspaceBuilds(root: string): Promise<string[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  const out: string[] = [];
  for (const name of names.sort()) {
    if (BUILD_ID_PATTERN.test(name) && (await lstat(join(root, name)).catch(() => null))?.isDirectory()) out.push(name);
  }
  return out;
}

/** Adds a directory tree; symlinks stay symlinks, files are read whole (a file written meanwhile cannot tear an entry). */
async function addTree(pack: Pack, abs: string, name: string): Promise<number> {
  const s = await lstat(abs).catch(() => null);
  if (!s) return 0;
  const common = { name, mode: s.mode & 0o7777, mtime: s.mtime };
  if (s.isSymbolicLink()) {
    await entry(pack, { ...common, type: 'symlink', linkname: await readlink(abs) });
    return 0;
  }
  if (s.isFile()) {
    const data = await readFile(abs).catch(() => null);
    if (data) await entry(pack, { ...common, type: 'file', size: data.length }, data);
    return data?.length ?? 0;
  }
  if (!s.isDirectory()) return 0;
  await entry(pack, { ...common, type: 'directory' });
  let bytes = 0;
  for (const child of (await readdir(abs).catch(() => [] as string[])).sort()) bytes += await addTree(pack, join(abs, child), `${name}/${child}`);
  return bytes;
}

/** Opens where the archive goes: stdout for `-`, else `<file>.<id>.partial`, renamed when complete. */
async function archiveTarget(ctx: CliContext, file: string): Promise<{ stream: Writable; commit(): Promise<void>; abort(): Promise<void> }> {
  if (file === '-') {
    const out = ctx.io.stdout as unknown;
    if (!(out instanceof Writable)) throw backupError('cannot write the archive to this stdout; give a file');
    return { stream: out, commit: async () => undefined, abort: async () => undefined };
  }
  const target = resolve(ctx.io.cwd, file);
  if ((await stat(target).catch(() => null))?.isDirectory()) throw backupError(`cannot write the backup to ${file}: it is a directory; give a file name`);
  const partial = `${target}.${randomBytes(4).toString('hex')}.partial`;
  // Opened before anything is read: an unwritable target fails at once, having changed nothing.
  const handle = await open(partial, 'wx', 0o600).catch((err: unknown) => {
    throw backupError(`cannot write the backup to ${file} (${fsReason(err)})`, err);
  });
  const stream = handle.createWriteStream();
  return {
    stream,
    commit: () => rename(partial, target),
    abort: () => rm(partial, { force: true }),
  };
}

export async function backupCommand(ctx: CliContext, file: string, opts: { json?: boolean }): Promise<number> {
  const target = await archiveTarget(ctx, file);
  try {
    const summary = await withSession(ctx, async (session) => {
      const { keys, redis } = session;
      const memories = new MemoryStore(redis, keys, session.logger);
      const snapshot = await takeSnapshot(redis, keys.prefix, new Set([keys.agentsStatus]), async () => ({
        memories: await exportMemories(memories),
        builds: await redis.zrange(keys.builds, 0, -1),
      }));
      if (!snapshot.paused) ctx.err('codegod: warning: Redis refused CLIENT PAUSE; the snapshot was taken with writes going on (best taken while no build runs)');
      if (snapshot.pauseExpired) ctx.err('codegod: warning: the snapshot took longer than the write pause; builds running meanwhile may be copied mid-step');
      const info = await redis.info('server');
      const jsonl = snapshot.entries.map((e) => JSON.stringify(e)).join('\n') + (snapshot.entries.length ? '\n' : '');
      const root = resolve(ctx.io.cwd, session.config.CODEGOD_WORKSPACE_ROOT);
      const workspaces = await workspaceBuilds(root);
      const manifest: Manifest = {
        format: 'codegod-backup',
        version: 1,
        createdAt: new Date().toISOString(),
        prefix: keys.prefix,
        redis: { version: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown', keys: snapshot.entries.length, sha256: createHash('sha256').update(jsonl).digest('hex'), paused: snapshot.paused },
        builds: snapshot.extra.builds,
        memories: snapshot.extra.memories.agents.length,
        workspaces,
      };
      const pack = tarPack();
      const written = pipeline(pack, createGzip(), target.stream);
      const now = new Date();
      await entry(pack, { name: MANIFEST, mode: 0o600, mtime: now }, `${JSON.stringify(manifest, null, 2)}\n`);
      await entry(pack, { name: REDIS_FILE, mode: 0o600, mtime: now }, jsonl);
      await entry(pack, { name: MEMORIES_FILE, mode: 0o600, mtime: now }, `${JSON.stringify(snapshot.extra.memories, null, 2)}\n`);
      let bytes = 0;
      for (const id of workspaces) {
        await entry(pack, { name: `${WORKSPACES}/${id}`, type: 'directory', mode: 0o755, mtime: now });
        for (const child of (await readdir(join(root, id)).catch(() => [] as string[])).sort()) {
          if (child !== SANDBOX_DIR) bytes += await addTree(pack, join(root, id, child), `${WORKSPACES}/${id}/${child}`);
        }
      }
      pack.finalize();
      await written;
      return { manifest, bytes };
    });
    await target.commit();
    const m = summary.manifest;
    // With the archive on stdout, the summary goes to stderr.
    const say = (line: string) => (file === '-' ? ctx.err(line) : ctx.out(line));
    if (opts.json) say(JSON.stringify({ file, ...m }));
    else {
      say(
        `backed up ${plural(m.builds.length, 'build')}, ${memoriesText(m.memories)} and ${plural(m.redis.keys, 'Redis key')} (a consistent snapshot${m.redis.paused ? '' : ', taken without a write pause'}), and ${plural(m.workspaces.length, 'workspace')} (${formatBytes(summary.bytes)})${file === '-' ? '' : ` to ${file}`}`,
      );
    }
    return EXIT.OK;
  } catch (err) {
    await target.abort();
    if (err instanceof CodegodError) throw err;
    throw backupError(`backup to ${file} failed: ${errorMessage(err)}`, err);
  }
}

// --- restore ----------------------------------------------------------------------------------

interface Checked {
  manifest: Manifest;
  entries: SnapshotEntry[];
  /** Symlinks of the workspaces (path in the archive → target), made after the files are out. */
  links: Array<{ path: string; target: string }>;
}

function readAll(entry: ReadEntry): Promise<Buffer> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    entry.on('data', (c: Buffer) => chunks.push(c));
    entry.on('end', () => done(Buffer.concat(chunks)));
    entry.on('error', fail);
  });
}

/** Reads the whole archive once and proves it is a complete codegod backup; nothing is written. */
async function checkArchive(path: string, shown: string): Promise<Checked> {
  const files = new Map<string, Promise<Buffer>>();
  const problems: string[] = [];
  const workspaceIds = new Set<string>();
  const links: Checked['links'] = [];
  const head = Buffer.alloc(2);
  const fd = await open(path, 'r');
  try {
    await fd.read(head, 0, 2, 0);
  } finally {
    await fd.close();
  }
  // Every backup is gzip'd: anything else is not one, whatever a tar reader makes of it.
  if (head[0] !== 0x1f || head[1] !== 0x8b) throw backupError(`${shown} is not a codegod backup (not a tar.gz archive)`);
  try {
    await tarList({
      file: path,
      strict: true,
      onReadEntry: (e: ReadEntry) => {
        const p = e.path.replace(/\/+$/, '');
        if (p === MANIFEST || p === REDIS_FILE || p === MEMORIES_FILE) files.set(p, readAll(e));
        else if (p === WORKSPACES || p.startsWith(`${WORKSPACES}/`)) {
          const id = p.split('/')[1] ?? '';
          if (!BUILD_ID_PATTERN.test(id) || p.split('/').includes('..')) problems.push(`unexpected entry ${p}`);
          else if (!['File', 'OldFile', 'Directory', 'SymbolicLink'].includes(e.type)) problems.push(`entry ${p} is a ${e.type}`);
          else {
            workspaceIds.add(id);
            if (e.type === 'SymbolicLink') links.push({ path: p, target: e.linkpath ?? '' });
          }
          e.resume();
        } else {
          problems.push(`unexpected entry ${p}`);
          e.resume();
        }
      },
    });
  } catch (err) {
    const msg = errorMessage(err);
    const notArchive = /TAR_BAD_ARCHIVE|Unrecognized archive format|incorrect header check/i.test(msg) || (err as { code?: string }).code === 'TAR_BAD_ARCHIVE';
    throw backupError(notArchive ? `${shown} is not a codegod backup (not a tar.gz archive)` : `${shown} is damaged: ${msg}`, err);
  }
  if (!files.has(MANIFEST)) throw backupError(`${shown} is not a codegod backup (no ${MANIFEST} in it)`);
  let manifest: Manifest;
  try {
    const parsed = ManifestSchema.safeParse(JSON.parse((await files.get(MANIFEST)!).toString('utf8')));
    if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || 'manifest'}: ${i.message}`).join('; '));
    manifest = parsed.data;
  } catch (err) {
    throw backupError(`${shown} is not a codegod backup this version reads (${MANIFEST}: ${errorMessage(err)})`, err);
  }
  if (problems.length) throw backupError(`${shown} is damaged: ${problems.slice(0, 3).join('; ')}`);
  if (!files.has(REDIS_FILE)) throw backupError(`${shown} is damaged: no ${REDIS_FILE} in it`);
  const jsonl = await files.get(REDIS_FILE)!;
  if (createHash('sha256').update(jsonl).digest('hex') !== manifest.redis.sha256) throw backupError(`${shown} is damaged: ${REDIS_FILE} does not match its checksum`);
  const entries: SnapshotEntry[] = [];
  for (const line of jsonl.toString('utf8').split('\n')) {
    if (line === '') continue;
    const parsed = SnapshotEntrySchema.safeParse(JSON.parse(line));
    if (!parsed.success || !parsed.data.key.startsWith(`${manifest.prefix}:`)) throw backupError(`${shown} is damaged: a key entry of ${REDIS_FILE} is malformed`);
    entries.push(parsed.data);
  }
  if (entries.length !== manifest.redis.keys) throw backupError(`${shown} is damaged: ${entries.length} of ${manifest.redis.keys} keys`);
  const missing = manifest.workspaces.filter((id) => !workspaceIds.has(id));
  if (missing.length) throw backupError(`${shown} is damaged: workspace ${missing[0]} is missing`);
  return { manifest, entries, links };
}

/**
 * Makes the workspaces' symlinks as they were (a venv's interpreter points at an absolute
 * path outside the workspace), after every file is out, and never through another link: an
 * archive cannot use one of its own links to write outside the staging directory.
 */
async function makeLinks(staging: string, links: Checked['links']): Promise<void> {
  for (const { path, target } of links) {
    const parts = path.split('/');
    let dir = staging;
    for (const part of parts.slice(0, -1)) {
      dir = join(dir, part);
      const s = await lstat(dir).catch(() => null);
      if (s === null) await mkdir(dir);
      else if (!s.isDirectory()) throw backupError(`the archive is damaged: ${path} would be made through a link`);
    }
    await symlink(target, join(staging, path));
  }
}

/** A local copy of the archive, to read twice (check, then restore): stdin is spooled to `dir`. */
async function archiveSource(ctx: CliContext, file: string, dir: string): Promise<{ path: string; shown: string }> {
  if (file !== '-') {
    const path = resolve(ctx.io.cwd, file);
    const s = await stat(path).catch((err: unknown) => {
      throw backupError(`cannot read ${file} (${fsReason(err)})`, err);
    });
    if (!s.isFile()) throw backupError(`cannot read ${file}: not a file`);
    return { path, shown: file };
  }
  const path = join(dir, 'archive.tar.gz');
  await pipeline(ctx.io.stdin as Readable, createWriteStream(path, { mode: 0o600 }));
  return { path, shown: 'the archive on stdin' };
}

export async function restoreBackupCommand(ctx: CliContext, file: string, opts: { json?: boolean }): Promise<number> {
  const root = resolve(ctx.io.cwd, ctx.config.CODEGOD_WORKSPACE_ROOT);
  // Staged on the workspace volume: restored workspaces then move into place with a rename.
  const staging = join(root, `.codegod-restore-${randomBytes(4).toString('hex')}`);
  await mkdir(staging, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw backupError(`cannot use the workspace root ${root} (${fsReason(err)})`, err);
  });
  try {
    const source = await archiveSource(ctx, file, staging);
    const { manifest, entries, links } = await checkArchive(source.path, source.shown);
    if (manifest.prefix !== ctx.config.CODEGOD_PREFIX) {
      throw backupError(`${source.shown} holds the keys of prefix ${manifest.prefix}; restore it with CODEGOD_PREFIX=${manifest.prefix}`);
    }
    const taken = [];
    for (const id of manifest.workspaces) if (await stat(join(root, id)).catch(() => null)) taken.push(id);
    if (taken.length) throw backupError(`the workspace of ${taken[0]} already exists in ${root}; restore into an empty stack`);

    const restored = await withSession(ctx, async (session) => {
      const { redis, keys } = session;
      const present = await keysUnder(redis, keys.prefix);
      const data = present.filter((k) => k === keys.builds || k.startsWith(`${keys.prefix}:build:`) || k.startsWith(`${keys.prefix}:agent:`) || k === keys.agentsKnown);
      if (data.length) {
        throw backupError(
          `Redis at ${displayUrl(session.config.REDIS_URL)} already holds codegod data under ${keys.prefix} (${plural(data.length, 'key')}, e.g. ${data[0]}); restore needs an empty stack`,
        );
      }
      await tarExtract({
        file: source.path,
        cwd: staging,
        strict: true,
        preserveOwner: false,
        filter: (p: string, e: unknown) => (p === WORKSPACES || p.startsWith(`${WORKSPACES}/`)) && (e as ReadEntry).type !== 'SymbolicLink',
      });
      await makeLinks(staging, links);
      // What makes work visible comes last and at once: queues (workers would take their jobs)
      // and the build indexes (the reconciler scans them), after every key they point at.
      const last = (k: string) => k.startsWith(`${keys.queuePrefix}:`) || k === keys.builds || k === keys.activeBuilds;
      return restoreSnapshot(redis, [{ entries: entries.filter((e) => !last(e.key)) }, { entries: entries.filter((e) => last(e.key)), atomic: true }]).catch((err: unknown) => {
        throw backupError(`restore failed, nothing was kept: Redis refused a key (${errorMessage(err)}); a backup restores into the same Redis version (${manifest.redis.version}) or a newer one`, err);
      });
    });
    for (const id of manifest.workspaces) await rename(join(staging, WORKSPACES, id), join(root, id));
    if (opts.json) ctx.json({ file, restoredKeys: restored, builds: manifest.builds, memories: manifest.memories, workspaces: manifest.workspaces, createdAt: manifest.createdAt });
    else ctx.out(`restored ${plural(manifest.builds.length, 'build')}, ${memoriesText(manifest.memories)} and ${plural(restored, 'Redis key')}, and ${plural(manifest.workspaces.length, 'workspace')} from the backup of ${manifest.createdAt}`);
    return EXIT.OK;
  } finally {
    await rm(staging, { recursive: true, force: true, maxRetries: 3 });
  }
}
