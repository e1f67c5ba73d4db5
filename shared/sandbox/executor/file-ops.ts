/**
 * File actions of a task, as fixed scripts run inside the task's mount namespace (paths are
 * arguments, never part of the script). There only the workspace is writable, other builds'
 * workspaces and codegod's secrets are not there at all, and /proc shows only the task's
 * holder: a symlink, or a directory swapped for one between a check and the write, resolves
 * inside that view, so it cannot lead to anything a command of the task could not reach.
 */

export interface OpOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` with `args` in the namespace; stdin gets `input`; stdout is kept up to `capBytes`. */
export type OpRunner = (script: string, args: string[], options?: { input?: string; capBytes?: number }) => Promise<OpOutcome>;

/** Exit codes the scripts use for the refusals the caller words. */
export const OP_EXIT = {
  missing: 3,
  symlink: 4,
  notFile: 5,
  noDir: 6,
  hardLink: 7,
  writeFailed: 8,
} as const;

export type NsFileType = 'file' | 'dir' | 'symlink' | 'other';

export interface NsStat {
  type: NsFileType;
  size: number;
  mtimeMs: number;
  nlink: number;
}

function typeOf(findType: string): NsFileType {
  return findType === 'f' ? 'file' : findType === 'd' ? 'dir' : findType === 'l' ? 'symlink' : 'other';
}

const STAT = `[ -e "$1" ] || [ -L "$1" ] || exit ${OP_EXIT.missing}
exec find "$1" -maxdepth 0 -printf '%y|%s|%T@|%n'`;

export async function statOp(run: OpRunner, abs: string): Promise<NsStat | null> {
  const out = await run(STAT, [abs]);
  if (out.exitCode === OP_EXIT.missing) return null;
  const m = /^(\w)\|(\d+)\|([\d.]+)\|(\d+)$/.exec(out.stdout.trim());
  if (out.exitCode !== 0 || !m) throw new Error(out.stderr.trim() || `stat failed (exit ${out.exitCode})`);
  return { type: typeOf(m[1]!), size: Number(m[2]), mtimeMs: Math.round(Number(m[3]) * 1000), nlink: Number(m[4]) };
}

const READ = `[ -L "$1" ] && exit ${OP_EXIT.symlink}
[ -e "$1" ] || exit ${OP_EXIT.missing}
[ -f "$1" ] || exit ${OP_EXIT.notFile}
exec 3< "$1" || exit ${OP_EXIT.missing}
find "$1" -maxdepth 0 -printf '%s\\n'
exec head -c "$2" <&3`;

/** The first `maxBytes` of a regular file (never through a final symlink) and its size. */
export async function readOp(run: OpRunner, abs: string, maxBytes: number): Promise<{ text: string; size: number } | { refused: number; stderr: string }> {
  const out = await run(READ, [abs, String(maxBytes)], { capBytes: maxBytes + 64 });
  if (out.exitCode !== 0) return { refused: out.exitCode ?? -1, stderr: out.stderr };
  const nl = out.stdout.indexOf('\n');
  return { size: Number(out.stdout.slice(0, nl)), text: out.stdout.slice(nl + 1) };
}

// The content arrives base64 on stdin (any bytes survive); noclobber makes the partial file
// O_EXCL; the rename replaces the target whole, so a reader sees the old file or the new one.
const WRITE = `dir=$1 name=$2 part=$3 mode=
mkdir -p -- "$dir" 2>/dev/null; cd -P -- "$dir" || exit ${OP_EXIT.noDir}
[ -L "$name" ] && exit ${OP_EXIT.symlink}
if [ -e "$name" ]; then
  [ -f "$name" ] || exit ${OP_EXIT.notFile}
  [ "$(find "$name" -maxdepth 0 -printf %n)" = 1 ] || exit ${OP_EXIT.hardLink}
  mode=$(find "$name" -maxdepth 0 -printf %m)
fi
set -C
if ! base64 -d > "$part"; then rm -f -- "$part"; exit ${OP_EXIT.writeFailed}; fi
[ -z "$mode" ] || chmod "$mode" -- "$part"
if ! mv -f -T -- "$part" "$name"; then rm -f -- "$part"; exit ${OP_EXIT.writeFailed}; fi
pwd -P`;

/** Writes `data` as `dir/name`; answers the directory's real path, or the refusal's exit code. */
export async function writeOp(run: OpRunner, dir: string, name: string, part: string, data: Buffer): Promise<{ realDir: string } | { refused: number; stderr: string }> {
  const out = await run(WRITE, [dir, name, part], { input: data.toString('base64') });
  if (out.exitCode !== 0) return { refused: out.exitCode ?? -1, stderr: out.stderr };
  return { realDir: out.stdout.trim() };
}

const LIST = `cd -P -- "$1" || exit ${OP_EXIT.noDir}
shift; depth=$1; shift
if [ "$#" -gt 0 ]; then
  exec find . -mindepth 1 -maxdepth "$depth" -type d "(" "$@" ")" -printf '%y\\t%s\\t%P\\0' -prune -o -printf '%y\\t%s\\t%P\\0'
fi
exec find . -mindepth 1 -maxdepth "$depth" -printf '%y\\t%s\\t%P\\0'`;

export interface NsEntry {
  /** Relative to the listed directory, `/`-separated. */
  path: string;
  name: string;
  type: NsFileType;
  size: number;
}

// A repository a command made (or any .git beside the workspace's own, read-only one) would
// run its config and hooks for whoever later runs git there; at the task's end each is
// renamed out of git's sight, or removed when even that fails.
const DISARM = `find "$1" -path "$2" -prune -o -name .git -prune -exec sh -c 'mv -f -T -- "$1" "$1.disabled-by-codegod" 2>/dev/null || rm -rf -- "$1"' sh {} \\; -print0`;

/** Disarms every `.git` below `root` except `keep`; returns the paths it disarmed. */
export async function disarmRepositoriesOp(run: OpRunner, root: string, keep: string | null): Promise<string[]> {
  const out = await run(DISARM, [root, keep ?? '']);
  return out.stdout.split('\0').filter((p) => p !== '');
}

/** Entries below `abs` to `depth` levels, depth first in name order; `prune` names are listed, not entered. */
export async function listOp(run: OpRunner, abs: string, depth: number, prune: readonly string[], capBytes: number): Promise<NsEntry[] | { refused: number; stderr: string }> {
  const names = prune.flatMap((n, i) => (i === 0 ? ['-name', n] : ['-o', '-name', n]));
  const out = await run(LIST, [abs, String(depth), ...names], { capBytes });
  if (out.exitCode !== 0) return { refused: out.exitCode ?? -1, stderr: out.stderr };
  const entries: NsEntry[] = [];
  for (const record of out.stdout.split('\0')) {
    const m = /^(\w)\t(\d+)\t(.+)$/s.exec(record);
    if (!m) continue;
    const path = m[3]!;
    entries.push({ path, name: path.slice(path.lastIndexOf('/') + 1), type: typeOf(m[1]!), size: Number(m[2]) });
  }
  const key = (p: string) => p.split('/');
  entries.sort((a, b) => {
    const ka = key(a.path);
    const kb = key(b.path);
    for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
      if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
    }
    return ka.length - kb.length;
  });
  return entries;
}
