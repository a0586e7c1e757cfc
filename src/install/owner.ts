// Root never reads, loads or runs anything another user can write: not a
// directory it acts on, not anything under it, not a link's target, not
// $TMPDIR, not the command a rebuild runs. Each check here refuses with one
// line naming the path and what to do instead. Users other than root act
// on what they may write anyway, so the checks are root's only.

import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { EngineError } from '../engine/errors.js';

export const isRoot = (): boolean => process.geteuid?.() === 0;

/** At most this many entries are walked under one directory tree (the Firefox ESR 153 install holds about 200). */
const TREE_LIMIT = 50_000;

const RUN_AS_OWNER = "ncfence run as root will not act on what another user controls. Run it as that directory's owner instead (e.g. sudo -u OWNER ncfence ...)";

/** Why an entry is not root's alone, or undefined when it is. */
function notRoots(path: string, st: Stats, top: boolean): string | undefined {
  if (st.uid !== 0) return `${path} belongs to uid ${st.uid}`;
  // A sticky directory above the one acted on (/tmp) lets others create
  // entries, but not rename or remove root's.
  const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0 && !top;
  if (!st.isSymbolicLink() && (st.mode & 0o022) !== 0 && !sticky) return `${path} is writable by group or others`;
  return undefined;
}

function refuse(what: string, dir: string, bad: string): never {
  throw new EngineError('USAGE', `${what} ${dir}: ${bad}; ${RUN_AS_OWNER}`);
}

/**
 * The directory and every directory above it (real path: the components the
 * kernel walks) are root's, and none is writable by others unless sticky.
 * Otherwise its owner could plant a module root would load, links where
 * root writes, or records that make root delete or rename files elsewhere.
 */
export function requireOwnedByRoot(dir: string, what: string): void {
  if (!isRoot()) return;
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (cause) {
    throw new EngineError('USAGE', `${what} ${dir} does not exist (${(cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : 'cannot be resolved'}); name an existing directory`, { cause });
  }
  for (let d = real; ; d = dirname(d)) {
    let st: Stats;
    try {
      st = lstatSync(d);
    } catch (cause) {
      throw new EngineError('USAGE', `cannot inspect ${d} (${(cause as Error).message})`, { cause });
    }
    const bad = st.isSymbolicLink() ? `${d} is a symbolic link` : notRoots(d, st, d === real);
    if (bad) refuse(what, dir, bad);
    if (dirname(d) === d) return;
  }
}

/**
 * Everything under a directory root will run from (a browser it starts, a
 * package whose code it runs): every entry is root's and not writable by
 * others, and every symbolic link leads to something that is too, walked in
 * turn. A tarball unpacked with its owners kept, or one library a user
 * replaced, would otherwise run as root.
 */
export function requireTreeOwnedByRoot(dir: string, what: string): void {
  if (!isRoot()) return;
  requireOwnedByRoot(dir, what);
  const seen = new Set<string>();
  const todo = [realpathSync(dir)];
  let entries = 0;
  while (todo.length > 0) {
    const d = todo.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    let names: string[];
    try {
      names = readdirSync(d);
    } catch (cause) {
      throw new EngineError('USAGE', `${what} ${dir}: cannot list ${d} (${(cause as Error).message})`, { cause });
    }
    for (const name of names) {
      if (++entries > TREE_LIMIT) throw new EngineError('USAGE', `${what} ${dir} holds more than ${TREE_LIMIT} entries; ncfence run as root will not vouch for that many`);
      const p = join(d, name);
      const st = lstatSync(p);
      const bad = notRoots(p, st, true);
      if (bad) refuse(what, dir, bad);
      if (st.isDirectory()) todo.push(p);
      else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(p);
        } catch {
          continue; // dangling: nothing to load through it
        }
        requireOwnedByRoot(dirname(target), `${what} ${dir} links ${p} into`);
        const tst = statSync(target);
        const tbad = notRoots(target, tst, true);
        if (tbad) refuse(what, dir, tbad);
        if (tst.isDirectory()) todo.push(target);
      }
    }
  }
}

/** A file root will run or read: its real path is root's, in directories only root can write. */
export function requireRootsFile(file: string, what: string): void {
  if (!isRoot()) return;
  let real: string;
  try {
    real = realpathSync(file);
  } catch (cause) {
    throw new EngineError('USAGE', `${what} ${file} does not exist`, { cause });
  }
  const bad = notRoots(real, statSync(real), true);
  if (bad) refuse(what, file, bad);
  requireOwnedByRoot(dirname(real), what);
}

/**
 * Where temporary directories go. Root ignores $TMPDIR (under `sudo -E` or
 * `su` without `-` it is the user's, who could then swap what root writes
 * there): it uses /tmp, whose sticky bit keeps others from renaming root's
 * entries, and refuses if /tmp is not root's.
 */
export function safeTempBase(): string {
  if (!isRoot()) return tmpdir();
  const st = lstatSync('/tmp');
  if (st.isDirectory() && st.uid === 0 && ((st.mode & 0o022) === 0 || (st.mode & 0o1000) !== 0)) return '/tmp';
  throw new EngineError('USAGE', '/tmp is not root\'s, or is writable by others without the sticky bit; ncfence run as root needs a safe temporary directory');
}
