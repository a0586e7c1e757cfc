// The upstream fingerprint stored in the view and recomputed by the module
// (addon/stamp.c) at C_Initialize. It must change whenever upstream's objects
// can have changed: the library file, its parameters, and for p11-kit-trust
// every file it can read. Both sides build the same text, byte for byte.
//
//   ncfence-stamp-v2
//   lib=<real path>  size=<bytes>  mtime=<s.ns>   (one line each)
//   params=<upstream-params>
//   builtin-paths=<upstream-trust-paths>          (only when configured)
//   per trust path, in order, a walk of everything below it:
//     f <size> <s.ns> <path>    anything that is not a directory
//     d <s.ns> <path>           a directory, then its entries in byte order
//     - <path>                  stat() failed (missing, dangling symlink)
//     ! <path>                  a directory that cannot be listed
//   policy=<path>:<size>:<s.ns>
//
// Walk paths are escaped (%XX for bytes outside 0x21..0x7e and for '%'), so
// no file name can forge a line. Symbolic links are followed, as p11-kit
// does. The walk covers more than p11-kit reads (it reads a path, its
// entries and those of anchors/ and blocklist/), which only ever makes a
// view stale, never fresh. It is bounded (STAMP_LIMITS); past a bound there
// is no stamp at all: the build refuses and the module serves the closed view.

import { readdirSync, realpathSync, statSync, type BigIntStats } from 'node:fs';
import { userInfo } from 'node:os';
import { EngineError } from '../engine/errors.js';
import { VIEW_LIMITS } from './format.js';

export const STAMP_VERSION = 'ncfence-stamp-v2';
/** Depth below a trust path that is still listed, entries over all trust paths, and the text's size (the view's limit). */
export const STAMP_LIMITS = { depth: 8, entries: 4096, bytes: VIEW_LIMITS.stampBytes } as const;

/** Seconds and nanoseconds, with the nanoseconds non-negative as in a struct timespec. */
function timespec(s: BigIntStats): string {
  let sec = s.mtimeNs / 1_000_000_000n;
  let ns = s.mtimeNs % 1_000_000_000n;
  if (ns < 0n) {
    sec -= 1n;
    ns += 1_000_000_000n;
  }
  return `${sec}.${String(ns).padStart(9, '0')}`;
}

function mtime(path: string): string {
  try {
    return timespec(statSync(path, { bigint: true }));
  } catch {
    return '-';
  }
}

const SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

/**
 * The `paths` argument p11-kit-trust takes from its parameter string, or
 * undefined when none sets it (it then reads its built-in paths). Mirrors
 * p11_argv_parse (p11-kit common/argv.c: white space separates arguments
 * outside quotes, quotes and backslashes as there) and parse_argument
 * (trust/module.c: the key ends at ':' or '=', the last `paths` wins, a
 * `paths` without a value means the built-in ones).
 */
export function p11kitPathsArgument(params: string): string | undefined {
  let paths: string | undefined;
  const sink = (arg: string): void => {
    const cut = arg.search(/[:=]/);
    if ((cut < 0 ? arg : arg.slice(0, cut)) === 'paths') paths = cut < 0 ? undefined : arg.slice(cut + 1);
  };
  let quote = '';
  let arg = '';
  let started = false; // p11-kit hands over an argument at end of input only when it is not empty
  for (let i = 0; i < params.length; i++) {
    const ch = params[i]!;
    if (quote !== '' && ch === quote) {
      quote = '';
    } else if (quote !== '') {
      if (ch === '\\') {
        if (++i >= params.length) return paths;
        if (params[i] !== quote) arg += '\\';
      }
      arg += params[i]!;
      started = true;
    } else if (SPACE.has(ch.charCodeAt(0))) {
      sink(arg);
      arg = '';
      started = false;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === '\\') {
      if (++i >= params.length) return paths;
      arg += `\\${params[i]!}`;
      started = true;
    } else {
      arg += ch;
      started = true;
    }
  }
  if (started) sink(arg);
  return paths;
}

/** The trust paths (as written, before `~` expansion) whose files upstream reads. */
export function stampedTrustPaths(params: string, builtinTrustPaths: string): string[] {
  return (p11kitPathsArgument(params) ?? builtinTrustPaths).split(':').filter((p) => p.length > 0);
}

/** p11_path_build (p11-kit common/path.c): joins with '/', trimming separators at the joints. */
export function pathBuild(...parts: Buffer[]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  let last = -1;
  for (const part of parts) {
    let start = 0;
    let end = part.length;
    while (start < end && part[start] === 0x2f) {
      if (at === 0 && part[start + 1] !== 0x2f) break;
      start++;
    }
    const until = at > 0 ? start : start + 1;
    while (end > until && part[end - 1] === 0x2f) end--;
    if (at !== 0) {
      if (end === start) continue;
      if (last !== 0x2f) {
        out.push(Buffer.from('/'));
        at++;
      }
    }
    const piece = part.subarray(start, end);
    out.push(piece);
    at += piece.length;
    if (piece.length > 0) last = piece[piece.length - 1]!;
  }
  return Buffer.concat(out);
}

/** The home directory as p11-kit finds it: $HOME when set and not empty, else the password database. */
function homeDirectory(env: NodeJS.ProcessEnv): string {
  if (env.HOME) return env.HOME;
  return userInfo().homedir;
}

/**
 * A trust path as p11-kit-trust opens it (p11_path_expand): `~` and `~/...`
 * become the home directory, and `~/.config/...` $XDG_CONFIG_HOME when set.
 */
export function expandTrustPath(path: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  if (!(path === '~' || path.startsWith('~/'))) return Buffer.from(path, 'utf8');
  const rest = path.slice(1).replace(/^\/+/, '');
  if (env.XDG_CONFIG_HOME && (rest === '.config' || rest.startsWith('.config/'))) {
    return pathBuild(Buffer.from(env.XDG_CONFIG_HOME), Buffer.from(rest.slice(8)));
  }
  return pathBuild(Buffer.from(homeDirectory(env)), Buffer.from(rest));
}

function escapePath(p: Buffer): string {
  let s = '';
  for (const b of p) s += b > 0x20 && b < 0x7f && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return s;
}

function limitError(what: string): EngineError {
  return new EngineError('UPSTREAM', `cannot fingerprint upstream's trust files: ${what}; name fewer files in paths=`);
}

class TreeWalk {
  readonly lines: string[] = [];
  private entries = 0;
  private bytes = 0;

  private push(line: string): void {
    this.bytes += line.length + 1;
    if (this.bytes > STAMP_LIMITS.bytes) throw limitError(`the list of files is over ${STAMP_LIMITS.bytes} bytes`);
    this.lines.push(line);
  }

  /** Fails when n more entries would pass the bound; commit says whether they are counted now. */
  private count(n: number, where: Buffer, commit = true): void {
    if (this.entries + n > STAMP_LIMITS.entries) throw limitError(`more than ${STAMP_LIMITS.entries} entries (at ${escapePath(where)})`);
    if (commit) this.entries += n;
  }

  visit(path: Buffer, depth: number): void {
    this.count(1, path);
    let s: BigIntStats;
    try {
      s = statSync(path, { bigint: true });
    } catch {
      this.push(`- ${escapePath(path)}`);
      return;
    }
    if (!s.isDirectory()) {
      this.push(`f ${s.size} ${timespec(s)} ${escapePath(path)}`);
      return;
    }
    if (depth > STAMP_LIMITS.depth) throw limitError(`${escapePath(path)} is nested deeper than ${STAMP_LIMITS.depth} levels`);
    this.push(`d ${timespec(s)} ${escapePath(path)}`);
    let names: Buffer[];
    try {
      names = readdirSync(path, { encoding: 'buffer' });
    } catch {
      this.push(`! ${escapePath(path)}`);
      return;
    }
    this.count(names.length, path, false); // each is counted when visited
    names.sort(Buffer.compare);
    for (const name of names) this.visit(pathBuild(path, name), depth + 1);
  }
}

/** The library lines of the stamp: its real path, size and mtime. */
export function libraryStamp(library: string): string {
  const real = realpathSync(library);
  const s = statSync(real, { bigint: true });
  return `lib=${real}\nsize=${s.size}\nmtime=${timespec(s)}`;
}

/**
 * The policy file is part of the stamp (path, size, mtime), so editing the
 * policy makes the view stale just as an upstream change does.
 * `builtinTrustPaths` is the configuration's `upstream-trust-paths`: the
 * paths p11-kit-trust reads when the parameters name none. Throws past a
 * bound (STAMP_LIMITS), where the module has no stamp either.
 */
export function upstreamStamp(library: string, params: string, policy: string, builtinTrustPaths = '', env: NodeJS.ProcessEnv = process.env): string {
  const lines = [STAMP_VERSION, libraryStamp(library), `params=${params}`];
  if (builtinTrustPaths !== '') lines.push(`builtin-paths=${builtinTrustPaths}`);
  const walk = new TreeWalk();
  for (const p of stampedTrustPaths(params, builtinTrustPaths)) walk.visit(expandTrustPath(p, env), 0);
  lines.push(...walk.lines);
  let size = '-';
  try {
    size = String(statSync(policy).size);
  } catch {
    // a missing policy stamps as "-"
  }
  lines.push(`policy=${policy}:${size}:${mtime(policy)}`);
  const text = lines.join('\n');
  if (Buffer.byteLength(text) > STAMP_LIMITS.bytes) throw limitError(`the stamp is over ${STAMP_LIMITS.bytes} bytes`);
  return text;
}
