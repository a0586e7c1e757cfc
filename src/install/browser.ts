// Firefox, Thunderbird and Tor Browser: the module as `<install dir>/libnssckbi.so`,
// which these browsers load as their roots module in place of the roots
// compiled into libxul (Firefox security/manager/ssl/nsNSSComponent.cpp,
// LoadLoadableRoots: the GRE directory's file first), with ncfence.conf and
// the view beside it. The install is recorded outside the directory
// (registry.ts).
//
// By default the view is built from the browser's own roots, read from
// inside the browser (src/browser/probe.ts), and the module then loads no
// other module: it serves that record, fenced. After installing, the
// browser is started once more and the roots it uses are compared with its
// own (src/browser/compare.ts); any difference undoes the install.

import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CONFIG_FILE, VIEW_FILE, type BuildResult } from '../compile/build.js';
import { EngineError } from '../engine/errors.js';
import { BROWSER_NAME, findBrowserDir, resolveBrowserDir, type BrowserTarget } from '../browser/layout.js';
import { readBrowserRoots, type BrowserRoots } from '../browser/probe.js';
import { compareRootPrograms, summarize, totalDifferences } from '../browser/compare.js';
import { TARGET_POLICY } from '../policy.js';
import {
  backUp,
  buildForInstall,
  copyPolicy,
  looksLikePkcs11Module,
  newManifest,
  packageRebuild,
  placeModule,
  removeIfPresent,
  removeModule,
  requireWritable,
  restore,
  type Backup,
  type BrowserCheck,
  type InstallCommonOptions,
  type Manifest,
} from './common.js';
import { isRoot, requireOwnedByRoot, requireTreeOwnedByRoot } from './owner.js';
import { adoptLegacy } from './legacy.js';
import { findRecord, forgetRecord, listRecords, ownScope, saveRecord, systemRoot } from './registry.js';
import { checkHooks, ensureHooks, removeUnusedHooks } from './hooks.js';

/** The install's own copy of its policy (common.ts copyPolicy). */
export const POLICY_FILE = 'ncfence-policy.json';
/** Every file a browser install places in the browser directory, the module first (besides the backup of a module that was there). */
export const INSTALLED_NAMES: readonly string[] = ['libnssckbi.so', CONFIG_FILE, VIEW_FILE, POLICY_FILE];
export const ORIGINAL_SUFFIX = '.ncfence-orig';

/** The install directory for a target: the one named (a Tor Browser top directory is accepted too), or the first found. */
export function browserDir(target: BrowserTarget, dir: string | undefined): string {
  if (dir === undefined) return findBrowserDir(target);
  const gre = resolveBrowserDir(dir);
  if (!gre) throw new EngineError('USAGE', `${dir} does not look like a ${BROWSER_NAME[target]} install directory (it has no libxul.so)`);
  return gre;
}

/** The command that repairs an install, named in warnings and doctor. */
export function reinstallCommand(target: BrowserTarget, dir: string): string {
  return `ncfence install ${target} --dir ${dir}`;
}

/** Reads the browser's own roots and what it uses now, and compares them. */
export async function checkBrowser(target: BrowserTarget, dir: string, stock?: BrowserRoots): Promise<BrowserCheck & { loaded?: BrowserRoots }> {
  try {
    const own = stock ?? (await readBrowserRoots(dir, { stock: true }));
    const used = await readBrowserRoots(dir, { stock: false });
    const c = compareRootPrograms(own.objects, used.objects);
    return { roots: c.stockRoots, differences: totalDifferences(c), summary: summarize(c, BROWSER_NAME[target]), loaded: used };
  } catch (e) {
    if (!(e instanceof EngineError)) throw e;
    return { roots: 0, differences: -1, summary: `could not compare with ${BROWSER_NAME[target]}'s own roots: ${e.message}` };
  }
}

interface Chosen {
  upstream?: string;
  upstreamParams: string;
  /** Where the upstream came from: named with --upstream, the roots file the browser used before, or the browser's own roots. */
  source: NonNullable<Manifest['upstreamSource']>;
}

function chooseUpstream(o: InstallCommonOptions, previous: Manifest | undefined, backups: Backup[]): Chosen {
  if (o.upstream !== undefined) return { upstream: o.upstream, upstreamParams: o.upstreamParams ?? '', source: 'option' };
  // A reinstall keeps what was chosen before, except the first round's
  // silent default (the system's roots module), which was the defect.
  if (previous?.upstreamSource === 'option' || previous?.upstreamSource === 'backup') {
    return { upstream: previous.upstream, upstreamParams: o.upstreamParams ?? previous.upstreamParams, source: previous.upstreamSource };
  }
  const saved = backups[0]?.savedAs;
  if (saved) return { upstream: saved, upstreamParams: o.upstreamParams ?? '', source: 'backup' };
  return { upstreamParams: '', source: 'browser' };
}

export async function installBrowser(target: BrowserTarget, o: InstallCommonOptions): Promise<Manifest> {
  const dir = browserDir(target, o.dir);
  const name = BROWSER_NAME[target];
  const root = systemRoot(o.root);
  // Root starts this browser (to read its roots and to check the install)
  // and writes into its directory: every file there must be root's.
  requireTreeOwnedByRoot(dir, `the ${name} directory`);
  requireWritable(dir, `the ${name} directory`);
  const rebuild = packageRebuild();
  if (isRoot()) checkHooks(o.root);
  const moduleFile = join(dir, 'libnssckbi.so');
  adoptLegacy(root);
  const previous = findRecord(ownScope(), root, target, dir);
  const madeNow: Backup[] = [];
  if (!previous && existsSync(moduleFile)) {
    if (!looksLikePkcs11Module(moduleFile)) {
      throw new EngineError('USAGE', `${moduleFile} exists and is not a PKCS#11 module; ncfence will not replace a file it does not recognise: move it away first`);
    }
    o.progress?.(`keeping the existing ${moduleFile} as ${moduleFile}${ORIGINAL_SUFFIX}`);
    madeNow.push(backUp(moduleFile, `${moduleFile}${ORIGINAL_SUFFIX}`));
  }
  const backups = previous?.backups ?? madeNow;
  const chosen = chooseUpstream(o, previous, backups);
  const policyCopy = join(dir, POLICY_FILE);
  const hadPolicyCopy = existsSync(policyCopy);
  let result: BuildResult;
  try {
    copyPolicy(o.policyFile ?? TARGET_POLICY.browser, policyCopy);
    o.progress?.(chosen.upstream ? `building the fenced view of ${chosen.upstream}` : `reading ${name}'s own roots and building their fenced view`);
    result = await buildForInstall(o, rebuild, {
      upstream: chosen.upstream ?? '',
      upstreamParams: chosen.upstreamParams,
      ...(chosen.upstream ? {} : { browser: dir }),
      outDir: dir,
      policyFile: policyCopy,
      fix: reinstallCommand(target, dir),
    });
  } catch (e) {
    if (!hadPolicyCopy) removeIfPresent(policyCopy);
    for (const b of madeNow) restore(b);
    if (e instanceof EngineError && !chosen.upstream) {
      throw new EngineError(e.code, `cannot install into ${dir}: ${e.message}. Nothing was changed. ncfence fences ${name}'s own roots and will not fall back to another root list; to wrap another trust module instead, name it with --upstream (${name} then trusts that module's roots, not its own)`, { cause: e });
    }
    throw e;
  }
  o.progress?.(`installing the module as ${moduleFile}`);
  placeModule(moduleFile);
  const manifest = newManifest(target, dir, moduleFile, result, chosen.upstreamParams, {
    created: INSTALLED_NAMES.map((n) => join(dir, n)).filter((f) => !backups.some((b) => b.path === f)),
    backups,
    rebuild,
    policySource: o.policyFile === undefined ? 'package' : 'given',
  });
  manifest.upstreamSource = chosen.source;
  saveRecord(manifest, root);
  if (manifest.scope === 'system') ensureHooks(rebuild, o.root);
  o.progress?.(`starting ${name} to compare the roots it now uses with its own`);
  const check = await checkBrowser(target, dir, result.browser);
  manifest.browserCheck = { roots: check.roots, differences: check.differences, summary: check.summary };
  if (chosen.source === 'browser' && check.differences !== 0) {
    uninstallBrowser(target, dir, o.root);
    throw new EngineError('UPSTREAM', `installed into ${dir}, but ${name} then did not use exactly its own roots, fenced (${check.summary}); the install was undone`);
  }
  saveRecord(manifest, root);
  return manifest;
}

export function uninstallBrowser(target: BrowserTarget, dirOption: string | undefined, rootOption?: string): Manifest {
  const root = systemRoot(rootOption);
  adoptLegacy(root);
  const dir = dirOption === undefined ? findInstalledDir(target, root) : (resolveBrowserDir(dirOption) ?? resolve(dirOption));
  if (existsSync(dir)) requireOwnedByRoot(dir, `the ${BROWSER_NAME[target]} directory`);
  const m = findRecord(ownScope(), root, target, dir);
  if (!m) throw new EngineError('USAGE', `ncfence has no record of a ${target} install in ${dir}${ownScope() === 'system' ? '' : ' made by this user'}; \`ncfence status\` lists the installs it knows`);
  checkRecordStaysInDir(m, dir);
  // A directory that is gone (replaced, removed) leaves only the record to
  // forget; one that is there is changed only as its owner.
  if (existsSync(dir)) {
    requireWritable(dir, `the ${BROWSER_NAME[target]} directory`);
    removeModule(m);
    for (const b of m.backups) restore(b);
    for (const f of [m.config, m.view, join(dir, POLICY_FILE)]) removeIfPresent(f);
    // Leftovers of an interrupted build (temp files) go too.
    for (const f of readdirSync(dir)) if (/\.(tmp-\d+|ncfence-tmp-\d+)$/.test(f)) removeIfPresent(join(dir, f));
  }
  forgetRecord(m, root);
  if (m.scope === 'system') removeUnusedHooks(rootOption);
  return m;
}

/**
 * Uninstall touches only what a browser install places: the install record
 * must name exactly the files install writes in that directory, and at most
 * the one backup it makes. A record naming anything else was not written by
 * ncfence (or was edited), and nothing is touched.
 */
function checkRecordStaysInDir(m: Manifest, dir: string): void {
  const moduleFile = join(dir, 'libnssckbi.so');
  const expected = new Set(INSTALLED_NAMES.map((n) => join(dir, n)));
  const backupOk = (b: Backup): boolean => b.path === moduleFile && b.savedAs === `${moduleFile}${ORIGINAL_SUFFIX}`;
  const odd = [
    ...[m.module.path, m.config, m.view, ...m.created].filter((f) => !expected.has(f)),
    ...m.backups.filter((b) => !backupOk(b)).map((b) => `${b.savedAs} -> ${b.path}`),
  ];
  if (m.module.path !== moduleFile || m.backups.length > 1 || odd.length > 0) {
    throw new EngineError('USAGE', `the install record of ${dir} names files that a ${m.target} install there does not place (${odd.join(', ') || m.module.path}); not touching anything`);
  }
}

/** The recorded install of the target (this user's, or root's), when there is exactly one; else the first candidate directory. */
function findInstalledDir(target: BrowserTarget, root: string): string {
  const mine = listRecords(ownScope(), root).filter((m) => m.target === target);
  if (mine.length === 1) return mine[0]!.location;
  if (mine.length > 1) throw new EngineError('USAGE', `there are ${mine.length} ${target} installs (${mine.map((m) => m.location).join(', ')}); name one with --dir DIR`);
  return findBrowserDir(target);
}
