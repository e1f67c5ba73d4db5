import { z } from 'zod';
import type { FileEntry, FileStat, Sandbox } from '../../shared/sandbox/sandbox.js';
import { ContentParam, PathParam, type ActionDef } from './action.js';
import { defineSandboxAction, sandboxRefusal } from './command.js';

/**
 * The file actions every role has, and the small file probes roles build their Observe
 * step from. All of it goes through the sandbox, which confines paths to the workspace.
 */

/** Most entries list_files shows; a larger tree is summarised as truncated. */
const LIST_MAX_ENTRIES = 300;

/** The file's stat, or null when it does not exist; a path the sandbox refuses (an escape) throws SANDBOX_PATH. */
export function statPath(sandbox: Sandbox, rel: string): Promise<FileStat | null> {
  return sandbox.lookup(rel);
}

/** For probes: the file's stat, or null when it does not exist or the path is refused. */
export async function statOrNull(sandbox: Sandbox, rel: string): Promise<FileStat | null> {
  try {
    return await statPath(sandbox, rel);
  } catch (err) {
    if (sandboxRefusal(err) !== null) return null;
    throw err;
  }
}

/** Whether `rel` exists inside the workspace; a path the sandbox refuses counts as absent. */
export async function pathExists(sandbox: Sandbox, rel: string): Promise<boolean> {
  return (await statOrNull(sandbox, rel)) !== null;
}

/** A file's text, or null when it is missing, not a regular file or refused. */
export async function readTextOrNull(sandbox: Sandbox, rel: string, maxBytes?: number): Promise<string | null> {
  const s = await statOrNull(sandbox, rel);
  if (s?.type !== 'file') return null;
  try {
    return await sandbox.readFile(rel, maxBytes === undefined ? {} : { maxBytes });
  } catch (err) {
    if (sandboxRefusal(err) !== null) return null;
    throw err;
  }
}

/**
 * Regular files below `dir` (node_modules, .git and virtualenvs are not entered), for probes
 * that look for tests, sources or config files. Bounded by `depth` and `max` entries walked.
 */
export async function findFiles(
  sandbox: Sandbox,
  match: (path: string) => boolean,
  options: { dir?: string; depth?: number; max?: number } = {},
): Promise<{ files: string[]; truncated: boolean }> {
  const dir = options.dir ?? '.';
  if ((await statOrNull(sandbox, dir))?.type !== 'dir') return { files: [], truncated: false };
  const { entries, truncated } = await sandbox.listFiles(dir, { depth: options.depth ?? 5, max: options.max ?? 3_000 });
  return { files: entries.filter((e) => e.type === 'file' && match(e.path)).map((e) => e.path), truncated };
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function describeEntry(e: FileEntry): string {
  if (e.type === 'dir') return `${e.path}/${e.collapsed ? '  (not expanded)' : ''}`;
  if (e.type === 'symlink') return `${e.path} -> (symlink)`;
  return `${e.path}  ${e.size} B`;
}

export const readFileAction = defineSandboxAction({
  name: 'read_file',
  description: 'Read a text file of the workspace (long files are clipped).',
  params: z.object({ path: PathParam }),
  async run({ path }, ctx) {
    const s = await statPath(ctx.sandbox, path);
    if (!s) return { ok: false, output: `${path}: no such file` };
    if (s.type === 'dir') return { ok: false, output: `${path} is a directory; use list_files` };
    return { ok: true, output: await ctx.sandbox.readFile(path) };
  },
});

export const writeFileAction = defineSandboxAction({
  name: 'write_file',
  description: 'Create or overwrite a file with the given content (parent directories are created).',
  params: z.object({ path: PathParam, content: ContentParam }),
  async run({ path, content }, ctx) {
    const written = await ctx.sandbox.writeFile(path, content);
    return { ok: true, output: `wrote ${written.bytes} bytes to ${written.path}` };
  },
});

export const listFilesAction = defineSandboxAction({
  name: 'list_files',
  description: 'List files and directories below a path (default the workspace root), a few levels deep.',
  params: z.object({ path: PathParam.default('.'), depth: z.number().int().min(1).max(8).optional() }),
  async run({ path, depth }, ctx) {
    const s = await statPath(ctx.sandbox, path);
    if (!s) return { ok: false, output: `${path}: no such directory` };
    if (s.type !== 'dir') return { ok: false, output: `${path} is not a directory` };
    const { entries, truncated } = await ctx.sandbox.listFiles(path, { depth: depth ?? 3, max: LIST_MAX_ENTRIES });
    const lines = entries.map(describeEntry);
    if (lines.length === 0) lines.push('(empty)');
    if (truncated) lines.push(`… more entries not shown (first ${LIST_MAX_ENTRIES}); list a subdirectory or use a smaller depth`);
    return { ok: true, output: lines.join('\n') };
  },
});

export const checkFileExistsAction = defineSandboxAction({
  name: 'check_file_exists',
  description: 'Check whether a file or directory exists; succeeds only when it does.',
  params: z.object({ path: PathParam }),
  async run({ path }, ctx) {
    const s = await statPath(ctx.sandbox, path);
    if (!s) return { ok: false, output: `${path}: does not exist` };
    const what = s.type === 'dir' ? 'directory' : s.type === 'file' ? `file, ${s.size} bytes` : s.type;
    return { ok: true, output: `${s.path}: exists (${what})` };
  },
});

/** The file actions every role has. */
export const FILE_ACTIONS: readonly ActionDef[] = [readFileAction, writeFileAction, listFilesAction, checkFileExistsAction];
