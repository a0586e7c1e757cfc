// What every install target shares: the module shipped with this package,
// the install manifest that makes uninstall exact, and careful file moves.

import { createHash } from 'node:crypto';
import { accessSync, constants, copyFileSync, existsSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, chmodSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError } from '../engine/errors.js';
import { build, writeFileAtomic, type BuildOptions, type BuildResult } from '../compile/build.js';
import { loadPolicy } from '../policy.js';
import { requireRootsFile, requireTreeOwnedByRoot } from './owner.js';

export const PACKAGE_MODULE = fileURLToPath(new URL('../../build/Release/libncfence.so', import.meta.url));
export const P11KIT_TRUST = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so';
/** The compiled CLI the module runs to rebuild a view (addon/rebuild.c), and the package's engine-id (scripts/engine-id.mjs). */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const PACKAGE_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const ENGINE_ID = fileURLToPath(new URL('../../dist/engine-id', import.meta.url));
/** Version 2: records live in a registry outside the install (registry.ts); version 1 lived beside it. */
export const MANIFEST_VERSION = 2;

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
  /** Where the install is: the browser directory, the filesystem root (nss), the module directory (p11-kit). */
  location: string;
  /** system: made by root, recorded in the system registry; user: in the user's own. */
  scope: 'system' | 'user';
  /** What the module runs to rebuild a view that is not fresh (ncfence.conf rebuild, rebuild-node, engine). */
  rebuild?: RebuildCommand;
  /**
   * package: the install took this package's policy for its target, so
   * `refresh` takes a newer one when the package brings it (a fence
   * extended to another name form); given: named with --policy, kept as is.
   * Absent in records of the first rounds: kept as is.
   */
  policySource?: 'package' | 'given';
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

export interface RebuildCommand {
  cli: string;
  node: string;
  engine: string;
}

/** What every target's install takes (the CLI's install options); a target reads the options that apply to it. */
export interface InstallCommonOptions {
  /** A browser's install directory (absent: the first found). */
  dir?: string;
  /** Filesystem root of the system registry and hooks (registry.ts systemRoot). */
  root?: string;
  upstream?: string;
  upstreamParams?: string;
  policyFile?: string;
  /** Socket of the live .bit service, for Namecoin anchors. */
  service?: string;
  /** Accept a view that fences no root (otherwise the install refuses). */
  allowEmpty?: boolean;
  progress?: (msg: string) => void;
}

/** The keys of build()'s options that make a view rebuild itself with this package (ncfence.conf `rebuild`, `rebuild-node`, `engine`). */
export function rebuildKeys(r: RebuildCommand): { rebuildCommand: string; rebuildNode: string; engine: string } {
  return { rebuildCommand: r.cli, rebuildNode: r.node, engine: r.engine };
}

/** build() as every install runs it: the service given, this package's rebuild command, and no view that fences nothing unless allowed. */
export function buildForInstall(o: InstallCommonOptions, rebuild: RebuildCommand, b: Omit<BuildOptions, 'service' | 'rebuildCommand' | 'rebuildNode' | 'engine' | 'minRootsFenced'>): Promise<BuildResult> {
  return build({ ...b, service: o.service, ...rebuildKeys(rebuild), minRootsFenced: o.allowEmpty ? undefined : 1 });
}

/**
 * This package's compiled CLI, as the command the module (and, for root,
 * the update hooks) run to rebuild a view. Root records it only when the
 * interpreter and the whole package are root's alone: every user's
 * consumer, and root's hooks, would run it.
 */
export function packageRebuild(): RebuildCommand {
  if (!existsSync(PACKAGE_CLI) || !existsSync(ENGINE_ID)) {
    throw new EngineError('USAGE', `the compiled command ${PACKAGE_CLI} or ${ENGINE_ID} is missing: run npm ci (or npm run build) in the ncfence package`);
  }
  const node = realpathSync(process.execPath);
  const cli = realpathSync(PACKAGE_CLI);
  requireRootsFile(node, 'the Node.js interpreter');
  requireTreeOwnedByRoot(PACKAGE_ROOT, 'the ncfence package');
  return { cli, node, engine: realpathSync(ENGINE_ID) };
}

/** The manifest of an install that placed `modulePath` and built `result`'s view. */
export function newManifest(
  target: Target,
  location: string,
  modulePath: string,
  result: { config: string; view: string; upstream: string; summary: { rootsFenced: number } },
  upstreamParams: string,
  rest: Pick<Manifest, 'created' | 'backups'> & Partial<Pick<Manifest, 'diversion' | 'rebuild' | 'policySource'>>,
): Manifest {
  return {
    version: MANIFEST_VERSION,
    target,
    installedAt: new Date().toISOString(),
    location,
    scope: process.geteuid?.() === 0 ? 'system' : 'user',
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

export function requireWritable(dir: string, what: string): void {
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new EngineError('USAGE', `${what} ${dir} is not writable by this user: run ncfence as its owner (e.g. with sudo) or choose another directory`);
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

/** Removes each directory that is empty, deepest first: anything else living there stays. */
export function removeEmptyDirs(dirs: string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      // not empty, or gone
    }
  }
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
