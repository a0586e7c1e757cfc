// What every install target shares: the module shipped with this package,
// the install manifest that makes uninstall exact, and careful file moves.

import { createHash } from 'node:crypto';
import { accessSync, constants, copyFileSync, existsSync, lstatSync, readFileSync, realpathSync, renameSync, rmSync, statSync, chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError } from '../engine/errors.js';
import { writeFileAtomic } from '../compile/build.js';
import { loadPolicy } from '../policy.js';

export const PACKAGE_MODULE = fileURLToPath(new URL('../../build/Release/libncfence.so', import.meta.url));
export const SYSTEM_CKBI = '/usr/lib/x86_64-linux-gnu/libnssckbi.so';
export const P11KIT_TRUST = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so';
export const MANIFEST_VERSION = 1;

export type Target = 'firefox' | 'thunderbird' | 'tor-browser' | 'nss' | 'p11-kit';

/** A browser's roots as it uses them, compared with its own (src/browser/compare.ts). */
export interface BrowserCheck {
  /** Roots the browser trusts on its own. */
  roots: number;
  /** Differences from them apart from the fence; -1 when the comparison could not be made. */
  differences: number;
  /** One line for a person. */
  summary: string;
}

/** A file the install replaced: where the original now lives and its hash, so uninstall restores it exactly. */
export interface Backup {
  path: string;
  savedAs: string;
  sha256: string;
}

export interface Manifest {
  version: number;
  target: Target;
  installedAt: string;
  /** The module file ncfence put in place, with its hash (uninstall refuses to delete a file it did not put there). */
  module: { path: string; sha256: string };
  config: string;
  view: string;
  upstream: string;
  upstreamParams: string;
  /** Files created that did not exist before (removed by uninstall). */
  created: string[];
  backups: Backup[];
  /** Diversion made with dpkg-divert (nss target). */
  diversion?: { root: string; path: string; divertTo: string };
  rootsFenced: number;
  /**
   * Browser targets: where the roots came from. `browser`: the browser's
   * own, read from inside it; `backup`: the roots module file the browser
   * loaded before; `option`: named with --upstream.
   */
  upstreamSource?: 'browser' | 'backup' | 'option';
  /** Browser targets: the roots the browser used right after install, compared with its own. */
  browserCheck?: BrowserCheck;
}

/** The manifest of an install that placed `modulePath` and built `result`'s view. */
export function newManifest(
  target: Target,
  modulePath: string,
  result: { config: string; view: string; upstream: string; summary: { rootsFenced: number } },
  upstreamParams: string,
  rest: Pick<Manifest, 'created' | 'backups'> & Partial<Pick<Manifest, 'diversion'>>,
): Manifest {
  return {
    version: MANIFEST_VERSION,
    target,
    installedAt: new Date().toISOString(),
    module: { path: modulePath, sha256: sha256File(modulePath) },
    config: result.config,
    view: result.view,
    upstream: result.upstream,
    upstreamParams,
    rootsFenced: result.summary.rootsFenced,
    ...rest,
  };
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function readManifest(path: string): Manifest | undefined {
  if (!existsSync(path)) return undefined;
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (cause) {
    throw new EngineError('USAGE', `install record ${path} is not valid JSON; remove it only after checking what it describes`, { cause });
  }
  if (m.version !== MANIFEST_VERSION) throw new EngineError('USAGE', `install record ${path} has version ${m.version}; this ncfence reads ${MANIFEST_VERSION}`);
  return m;
}

export function writeManifest(path: string, m: Manifest): void {
  writeFileAtomic(path, `${JSON.stringify(m, null, 2)}\n`);
}

export function requireWritable(dir: string, what: string): void {
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new EngineError('USAGE', `${what} ${dir} is not writable by this user: run ncfence as its owner (e.g. with sudo) or choose another directory`);
  }
}

/**
 * Root acts only on directories root controls. Run as root, ncfence refuses
 * a directory (or any directory above it) that another user owns or that
 * others may write: its owner could plant a module there that root would
 * load (install wraps an existing libnssckbi.so, and starts the browser
 * found there), links where root writes, or an install record that makes
 * root delete or rename files elsewhere. Such an install is done by the
 * owner, as the owner. Other users act on what they may write anyway.
 */
export function requireOwnedByRoot(dir: string, what: string): void {
  if (process.geteuid?.() !== 0) return;
  // The real path: its components are what the kernel walks (a link such
  // as /lib -> usr/lib is root's, in a directory root owns, so following
  // it is safe exactly when its target passes).
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (cause) {
    throw new EngineError('USAGE', `cannot resolve ${dir}: ${(cause as Error).message}`, { cause });
  }
  let d = real;
  for (;;) {
    let st;
    try {
      st = lstatSync(d);
    } catch (cause) {
      throw new EngineError('USAGE', `cannot inspect ${d}: ${(cause as Error).message}`, { cause });
    }
    const sticky = (st.mode & 0o1000) !== 0;
    const bad = st.isSymbolicLink()
      ? `${d} is a symbolic link`
      : st.uid !== 0
        ? `${d} belongs to uid ${st.uid}`
        : (st.mode & 0o022) !== 0 && !(sticky && d !== real)
          ? `${d} is writable by group or others`
          : undefined;
    if (bad) {
      throw new EngineError('USAGE', `${what} ${dir}: ${bad}; ncfence run as root will not act on a directory another user controls. Run it as that directory's owner instead (e.g. sudo -u OWNER ncfence ...)`);
    }
    const up = dirname(d);
    if (up === d) return;
    d = up;
  }
}

/**
 * An install's own copy of its policy (checked first, so a bad file is named
 * as the user gave it). The view's stamp covers the policy file, so an
 * install that named the package's rules/ would go stale, closing the
 * roots, whenever the package or a clone changed them; with its own copy a
 * package upgrade changes nothing until the install is run again.
 */
export function copyPolicy(source: string, dest: string): string {
  const policy = loadPolicy(source);
  const text = readFileSync(policy.file);
  if (!(existsSync(dest) && readFileSync(dest).equals(text))) writeFileAtomic(dest, text);
  return dest;
}

/** Whether a file looks like a PKCS#11 module: an ELF shared object naming C_GetFunctionList. */
export function looksLikePkcs11Module(path: string): boolean {
  const b = readFileSync(path);
  return b.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])) && b.includes('C_GetFunctionList');
}

/** Copies the module into place (temp file + rename, mode 0755) and returns its hash. */
export function placeModule(dest: string, source = PACKAGE_MODULE): string {
  if (!existsSync(source)) throw new EngineError('USAGE', `the built module ${source} is missing: run npm ci (or npm run build) in the ncfence package`);
  const tmp = `${dest}.ncfence-tmp-${process.pid}`;
  try {
    // COPYFILE_EXCL opens the destination O_CREAT | O_EXCL: a planted file or link fails the copy.
    copyFileSync(source, tmp, constants.COPYFILE_EXCL);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') throw new EngineError('USAGE', `${tmp} already exists (left by a crash, or planted); remove it after checking what it is`, { cause });
    throw cause;
  }
  chmodSync(tmp, 0o755);
  renameSync(tmp, dest);
  return sha256File(dest);
}

/** Moves `path` aside to `savedAs` and records it. */
export function backUp(path: string, savedAs: string): Backup {
  if (existsSync(savedAs)) throw new EngineError('USAGE', `${savedAs} already exists and no install record explains it; move it away first`);
  const sha256 = sha256File(path);
  renameSync(path, savedAs);
  return { path, savedAs, sha256 };
}

/** Puts a backup back, checking it is byte for byte what was saved. */
export function restore(b: Backup): void {
  if (!existsSync(b.savedAs)) throw new EngineError('USAGE', `the saved original ${b.savedAs} is missing; cannot restore ${b.path}`);
  const now = sha256File(b.savedAs);
  if (now !== b.sha256) throw new EngineError('USAGE', `the saved original ${b.savedAs} changed since install (sha256 ${now}, recorded ${b.sha256}); not restoring it`);
  renameSync(b.savedAs, b.path);
}

/** Removes the module ncfence placed, refusing when someone replaced it since. */
export function removeModule(m: Manifest): void {
  if (!existsSync(m.module.path)) return;
  const now = sha256File(m.module.path);
  if (now !== m.module.sha256) {
    throw new EngineError('USAGE', `${m.module.path} is not the module ncfence installed (sha256 ${now}); leaving it, and the rest of the install, in place`);
  }
  rmSync(m.module.path);
}

export function removeIfPresent(path: string): void {
  rmSync(path, { force: true });
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export { dirname };
