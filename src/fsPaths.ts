// Directories made one component at a time, with a message a person reads
// when one cannot be made (shared by the build's --out and the service's
// socket directory).

import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EngineError } from './engine/errors.js';
import { describeCreateError, describePathError, errnoCode, ownerAndMode } from './systemError.js';

/**
 * mkdir -p, one component at a time. Node's recursive mkdirSync never
 * returns on some special file systems (under /proc it spun at 100% CPU:
 * `build --out /proc/x`, `serve --socket /proc/x/s`); this makes at most one
 * attempt per component and names the component that failed. Returns the
 * first directory it created, if any (for an undo).
 */
export function makeDirs(path: string, mode = 0o755): string | undefined {
  const parts = resolve(path).split('/').filter(Boolean);
  let at = '';
  let first: string | undefined;
  for (const part of parts) {
    at = `${at}/${part}`;
    let st;
    try {
      st = statSync(at);
    } catch {
      try {
        mkdirSync(at, { mode });
      } catch (cause) {
        throw new EngineError('VIEW', `cannot create directory ${at}: ${describeCreateError(cause, at)}`, { cause });
      }
      first ??= at;
      continue;
    }
    if (!st.isDirectory()) throw new EngineError('VIEW', `${at} exists and is not a directory`);
  }
  return first;
}

/**
 * Refuses, before any slow work, a directory that could not be created or
 * written: a part of the path that is a file, or no write permission on the
 * directory itself or on the nearest one that exists. `what` names the
 * option for the message (`--out`). The write itself still reports anything
 * this cannot foresee (a full disk).
 */
export function checkWritableDir(path: string, what: string): void {
  const want = resolve(path);
  for (let p = want; ; p = dirname(p)) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      if ((errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') && p !== dirname(p)) continue;
      throw new EngineError('USAGE', `${what} ${want}: ${describePathError(e, p)}`, { cause: e });
    }
    if (!st.isDirectory()) throw new EngineError('USAGE', `${what} ${want}: ${p} exists and is not a directory`);
    try {
      accessSync(p, constants.W_OK | constants.X_OK);
    } catch (e) {
      const who = ownerAndMode(p);
      throw new EngineError('USAGE', `${what} ${want}: ${p} is not writable by this user${errnoCode(e) === 'EROFS' ? ' (a read-only file system)' : who ? ` (${who})` : ''}`, { cause: e });
    }
    return;
  }
}

/**
 * Refuses, before any slow work, a file that could not be written: its
 * directory missing or not writable, or the path a directory or a file this
 * user may not write. `what` names the option (`--svg`).
 */
export function checkWritableFile(path: string, what: string): void {
  const file = resolve(path);
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw new EngineError('USAGE', `${what} ${describePathError(e, file)}`, { cause: e });
  }
  if (st?.isDirectory()) throw new EngineError('USAGE', `${what} ${file} is a directory; name a file in it`);
  const dir = dirname(file);
  let dirSt;
  try {
    dirSt = statSync(dir);
  } catch (e) {
    throw new EngineError('USAGE', `${what} ${file}: ${describePathError(e, dir)}; create it first or name another place`, { cause: e });
  }
  if (!dirSt.isDirectory()) throw new EngineError('USAGE', `${what} ${file}: ${dir} is not a directory`);
  try {
    accessSync(st ? file : dir, constants.W_OK | (st ? 0 : constants.X_OK));
  } catch (e) {
    const who = ownerAndMode(st ? file : dir);
    throw new EngineError('USAGE', `${what} ${file}: ${st ? file : dir} is not writable by this user${errnoCode(e) === 'EROFS' ? ' (a read-only file system)' : who ? ` (${who})` : ''}`, { cause: e });
  }
}
