// `ncfence refresh`: fresh views after routine updates, with nobody running
// ncfence (docs/install.md, "Updates").
//
//  - `refresh --config FILE [--out DIR]` is what the module runs when the
//    view it finds is not fresh (addon/rebuild.c): rebuild FILE's view from
//    the same upstream, policy and engine, in place or, with --out, into the
//    user's own directory.
//  - `refresh` (and `refresh --hook NAME`, what the Debian hooks run) goes
//    through this user's recorded installs (root: the system's) and
//    rebuilds every view that is no longer fresh, and puts this package's
//    module in place of an older copy it installed. Nothing else changes:
//    not the policy copy, not the upstream, not what is recorded as chosen.

import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { build } from '../compile/build.js';
import { readConfig, type ModuleConfig } from '../config.js';
import { EngineError } from '../engine/errors.js';
import { PACKAGE_CLI, PACKAGE_MODULE, copyPolicy, packageRebuild, placeModule, sha256File, type Manifest, type RebuildCommand } from './common.js';
import { specOf } from './targets.js';
import { isRoot, requireRootsFile, requireTreeOwnedByRoot } from './owner.js';
import { adoptLegacy } from './legacy.js';
import { listRecords, ownScope, saveRecord, systemRoot } from './registry.js';
import { viewFreshness } from './state.js';

/** The browser directory of a browser view: its libxul.so's. */
const browserDir = (c: ModuleConfig): string | undefined => (c.upstreamKind === 'browser' ? dirname(c.upstream) : undefined);

/**
 * Rebuilds the view a configuration describes, from the same upstream,
 * policy and engine; into `out` (the user's own directory: the
 * configuration stays as it is) or in place. Root rebuilds only from what
 * root alone can write: the configuration, the upstream it loads (or the
 * browser it starts), the policy. In place, for an install this user made
 * with this package, the package's module also replaces an older copy, so
 * the next start reads views as this package writes them.
 */
export async function refreshConfig(config: string, out?: string, rebuild?: RebuildCommand): Promise<{ view: string; rootsFenced: number }> {
  const file = resolve(config);
  if (isRoot()) requireRootsFile(file, 'the configuration');
  const c = readConfig(file);
  const browser = browserDir(c);
  if (isRoot()) {
    if (browser) requireTreeOwnedByRoot(browser, 'the browser directory');
    else requireRootsFile(c.upstream, 'the upstream module');
    requireRootsFile(c.policy, 'the policy');
  }
  const r = await build({
    upstream: c.upstream,
    upstreamParams: c.upstreamParams,
    ...(browser ? { browser } : {}),
    outDir: out ?? dirname(c.view),
    ...(out ? {} : { configFile: file }),
    policyFile: c.policy,
    engine: rebuild?.engine ?? c.engine ?? '',
    ...(rebuild ? { rebuildCommand: rebuild.cli, rebuildNode: rebuild.node } : {}),
    minRootsFenced: 1,
  });
  if (out === undefined && rebuild === undefined) placeNewerModule(file);
  return { view: r.view, rootsFenced: r.summary.rootsFenced };
}

/**
 * The package's module over an older copy in this user's recorded install
 * of a configuration, if this package made it (the module rebuilds in
 * place: addon/rebuild.c).
 */
function placeNewerModule(config: string, root = systemRoot()): void {
  const cli = existsSync(PACKAGE_CLI) ? realpathSync(PACKAGE_CLI) : undefined;
  const m = listRecords(ownScope(), root).find((r) => r.config === config && (r.rebuild === undefined || r.rebuild.cli === cli));
  if (!m || !existsSync(PACKAGE_MODULE) || !existsSync(m.module.path)) return;
  const installed = sha256File(m.module.path);
  if (installed !== m.module.sha256 || installed === sha256File(PACKAGE_MODULE)) return;
  m.module.sha256 = placeModule(m.module.path);
  saveRecord(m, root);
}

export interface RefreshResult {
  target: Manifest['target'];
  location: string;
  /** What was done: nothing (fresh), rebuilt, module replaced, or why not. */
  actions: string[];
  error?: string;
}

/**
 * Every recorded install of this user (root: the system's) made with this
 * package, brought up to date: the package's module over an older copy, the
 * package's policy for the target when the install took the package's (not
 * one named with --policy), the rebuild command this package records, and a
 * view rebuilt whenever it is no longer fresh. An install made with another
 * copy of ncfence is left to that copy.
 */
export async function refreshAll(o: { root?: string; progress?: (msg: string) => void } = {}): Promise<RefreshResult[]> {
  const root = systemRoot(o.root);
  adoptLegacy(root);
  const rebuild = packageRebuild();
  const packageModule = sha256File(PACKAGE_MODULE);
  const out: RefreshResult[] = [];
  for (const m of listRecords(ownScope(), root)) {
    const r: RefreshResult = { target: m.target, location: m.location, actions: [] };
    out.push(r);
    try {
      if (m.rebuild !== undefined && m.rebuild.cli !== rebuild.cli) {
        r.error = `installed with another copy of ncfence (${m.rebuild.cli}); run its \`ncfence refresh\`, or install again with this one`;
        continue;
      }
      if (!existsSync(m.module.path) || !existsSync(m.config)) {
        r.error = `${m.module.path} is gone (the directory was replaced or removed); \`ncfence doctor\` says what to do`;
        continue;
      }
      const installed = sha256File(m.module.path);
      if (installed !== m.module.sha256) {
        r.error = `${m.module.path} is not the module ncfence installed; not touching it (\`ncfence doctor\`)`;
        continue;
      }
      if (installed !== packageModule) {
        o.progress?.(`placing this package's module at ${m.module.path}`);
        m.module.sha256 = placeModule(m.module.path);
        r.actions.push('module replaced');
      }
      const cfg = readConfig(m.config);
      if (m.policySource === 'package' && sha256File(cfg.policy) !== sha256File(specOf(m).policy)) {
        copyPolicy(specOf(m).policy, cfg.policy);
        r.actions.push("the package's newer policy taken");
      }
      const adopt = m.rebuild === undefined || cfg.rebuild !== rebuild.cli || cfg.engine !== rebuild.engine;
      if (adopt || r.actions.length > 0 || viewFreshness(m.config).state !== 'fresh') {
        o.progress?.(`rebuilding the view of ${m.target} at ${m.location}`);
        const b = await refreshConfig(m.config, undefined, rebuild);
        m.rootsFenced = b.rootsFenced;
        m.rebuild = rebuild;
        r.actions.push(`view rebuilt (${b.rootsFenced} roots fenced)`);
      }
      if (r.actions.length > 0) saveRecord(m, root);
    } catch (e) {
      if (!(e instanceof EngineError)) throw e;
      r.error = e.message;
    }
  }
  return out;
}
