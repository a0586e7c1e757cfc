// Node's system errors (ENOENT, EACCES, ...) in the words a person reads:
// what is wrong with the path they named, and for a permission, whose file
// it is and what its mode is. Node's own text ("EACCES: permission denied,
// open '/x'") names the system call and the errno, which is no help to
// someone who only typed a path.

import { statSync } from 'node:fs';
import { dirname } from 'node:path';

/** The errno name of a Node system error (`ENOENT`), or undefined for anything else. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** What each errno says about a path, as the end of a sentence that starts with the path. */
const PATH_WORDS: Record<string, string> = {
  ENOENT: 'does not exist',
  ENOTDIR: 'is not reachable: a part of it is not a directory',
  EISDIR: 'is a directory',
  EACCES: 'is not accessible to this user (permission denied)',
  EPERM: 'is not accessible to this user (operation not permitted)',
  EROFS: 'is on a read-only file system',
  ENOSPC: 'is on a file system with no space left',
  EDQUOT: 'is on a file system where this user\'s quota is used up',
  EEXIST: 'already exists',
  ELOOP: 'goes through a loop of symbolic links',
  ENAMETOOLONG: 'is too long a name',
  EMFILE: 'cannot be opened: this process has too many files open',
  ENFILE: 'cannot be opened: the system has too many files open',
  EBUSY: 'is busy',
  ETXTBSY: 'is busy (a running program)',
  ENOTEMPTY: 'is a directory that is not empty',
  EXDEV: 'is on another file system',
  ENXIO: 'is a device or socket with nothing behind it',
  EIO: 'could not be read or written (input/output error)',
  ENODEV: 'is on a device that does not support this',
  EINVAL: 'cannot be used that way (invalid argument)',
  EADDRINUSE: 'is already in use',
  EADDRNOTAVAIL: 'is not an address of this machine',
  ECONNREFUSED: 'refused the connection: nothing listens there',
  ECONNRESET: 'closed the connection',
  ETIMEDOUT: 'did not answer in time',
  EHOSTUNREACH: 'cannot be reached (no route to the host)',
  ENETUNREACH: 'cannot be reached (no route to the network)',
  ENOTSOCK: 'is not a socket',
  EPIPE: 'closed the connection',
};

/** What a system error says about the thing it happened to, without naming it: `refused the connection: nothing listens there`. */
export function systemErrorWords(e: unknown): string | undefined {
  const code = errnoCode(e);
  return code ? (PATH_WORDS[code] ?? `system error ${code}`) : undefined;
}

/** Who owns a path and its mode, for a permission error: `owned by uid 0, mode 0600; this is uid 1000`. */
export function ownerAndMode(path: string): string | undefined {
  for (let p = path; ; p = dirname(p)) {
    try {
      const st = statSync(p);
      const me = process.getuid?.();
      const where = p === path ? '' : ` (${p}, the nearest part that exists)`;
      return `owned by uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}${where}${me === undefined ? '' : `; this is uid ${me}`}`;
    } catch {
      if (p === dirname(p)) return undefined;
    }
  }
}

/**
 * One clause about a path: `/x/y does not exist`, `/x is not accessible to
 * this user (permission denied; owned by uid 0, mode 0600; this is uid 1000)`.
 * Anything that is not a system error gives its own message (that is then a
 * message ncfence wrote, or a library's that the caller chose to show).
 */
export function describePathError(e: unknown, path: string): string {
  const code = errnoCode(e);
  const words = code ? PATH_WORDS[code] : undefined;
  if (!words) return `${path}: ${code ? `system error ${code}` : (e as Error).message}`;
  if (code === 'EACCES' || code === 'EPERM') {
    const who = ownerAndMode(path);
    return `${path} ${who ? words.replace(/\)$/, `; ${who})`) : words}`;
  }
  return `${path} ${words}`;
}

/** The same for a system error whose path (if any) Node recorded on it; for the CLI's last-resort handler. */
export function describeSystemError(e: unknown): string | undefined {
  const code = errnoCode(e);
  if (!code) return undefined;
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  const path = err.path ?? (err.address !== undefined ? `${err.address}${err.port !== undefined ? `:${err.port}` : ''}` : undefined);
  if (path !== undefined) return describePathError(e, path);
  const words = PATH_WORDS[code];
  return words ? `a file or connection ${words}` : `system error ${code}`;
}

/**
 * Why a file or directory could not be created at `path`: for a permission,
 * the directory it goes in, whose it is and its mode; for a file system that
 * refuses new entries (/proc, /sys), that.
 */
export function describeCreateError(e: unknown, path: string): string {
  const code = errnoCode(e);
  const dir = dirname(path);
  if (code === 'EACCES' || code === 'EPERM') {
    const who = ownerAndMode(dir);
    return `${dir} is not writable by this user${who ? ` (${who})` : ''}`;
  }
  if (code === 'ENOENT' && statIsDirectory(dir)) return `the file system at ${dir} does not allow creating it`;
  return describePathError(e, path);
}

function statIsDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
