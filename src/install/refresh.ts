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
import { PACKAGE_CLI, PACKAGE_MODULE, placeModule, sha256File, type Manifest } from './common.js';
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
 * browser it starts), the policy.
 */
export async function refreshConfig(config: string, out?: string): Promise<{ view: string; rootsFenced: number }> {
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
    engine: c.engine ?? '',
    minRootsFenced: 1,
  });
  return { view: r.view, rootsFenced: r.summary.rootsFenced };
}

export interface RefreshResult {
  target: Manifest['target'];
  location: string;
  /** What was done: nothing (fresh), rebuilt, module replaced, or why not. */
  actions: string[];
  error?: string;
}

/** Every recorded install of this user (root: the system's), brought up to date. */
export async function refreshAll(o: { root?: string; progress?: (msg: string) => void } = {}): Promise<RefreshResult[]> {
  const root = systemRoot(o.root);
  adoptLegacy(root);
  const packageModule = existsSync(PACKAGE_MODULE) ? sha256File(PACKAGE_MODULE) : undefined;
  const thisCli = existsSync(PACKAGE_CLI) ? realpathSync(PACKAGE_CLI) : undefined;
  const out: RefreshResult[] = [];
  for (const m of listRecords(ownScope(), root)) {
    const r: RefreshResult = { target: m.target, location: m.location, actions: [] };
    out.push(r);
    try {
      if (!existsSync(m.module.path) || !existsSync(m.config)) {
        r.error = `${m.module.path} is gone (the directory was replaced or removed); \`ncfence doctor\` says what to do`;
        continue;
      }
      const installed = sha256File(m.module.path);
      if (installed !== m.module.sha256) {
        r.error = `${m.module.path} is not the module ncfence installed; not touching it (\`ncfence doctor\`)`;
        continue;
      }
      // An install this package made gets this package's module: the
      // package was updated, and its views are rebuilt by it too.
      if (packageModule !== undefined && packageModule !== installed && m.rebuild?.cli === thisCli) {
        o.progress?.(`placing this package's module at ${m.module.path}`);
        m.module.sha256 = placeModule(m.module.path);
        r.actions.push('module replaced');
      }
      if (viewFreshness(m.config).state !== 'fresh') {
        o.progress?.(`rebuilding the view of ${m.target} at ${m.location}`);
        const b = await refreshConfig(m.config);
        m.rootsFenced = b.rootsFenced;
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
