// `ncfence status` and `ncfence doctor`: what is installed where, and checks
// a user would otherwise run by hand, each with the fix when it fails.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { readConfig } from '../config.js';
import { EngineError } from '../engine/errors.js';
import { askServiceFor } from '../service/client.js';
import { BROWSER_NAME, resolveBrowserDir, type BrowserTarget } from '../browser/layout.js';
import { PACKAGE_MODULE, sha256File, type BrowserCheck, type Manifest } from './common.js';
import { checkBrowser, reinstallCommand } from './browser.js';
import { adoptLegacy } from './legacy.js';
import { isRoot, requireTreeOwnedByRoot } from './owner.js';
import { listRecords, systemRoot } from './registry.js';
import { commandFor, specOf } from './targets.js';
import { installState, type InstallState, type ViewState } from './state.js';

export interface InstallStatus {
  target: Manifest['target'];
  location: string;
  /** system: root's install; user: this user's. */
  scope: Manifest['scope'];
  module: string;
  upstream: string;
  view: string;
  /** ok, stale, closed, tampered or gone (state.ts); anything but ok makes `status` exit 1. */
  state: InstallState['state'];
  viewState: ViewState;
  /** This user's own view, when the module built one because the installed view was stale. */
  ownView?: ViewState;
  detail: string;
  rootsFenced: number;
  anchors: number;
  /** The live .bit service named in the configuration: whether something answers on its socket. */
  service: 'not configured' | 'reachable' | 'unreachable';
  /** Browser targets: where the roots come from, and how they compared with the browser's own at install. */
  roots?: { source: NonNullable<Manifest['upstreamSource']>; check?: BrowserCheck };
  /** What this package would install differently (a newer module or policy); empty when the install is current. */
  upgrade: string[];
}

/**
 * What a reinstall with this package would change: its module differs from
 * the installed one, or its policy for the target from the install's copy.
 * Never applied by itself: an install changes only when it is run again.
 */
function upgradeOffers(m: Manifest, packageModuleSha: string | undefined): string[] {
  const out: string[] = [];
  try {
    if (packageModuleSha !== undefined && packageModuleSha !== m.module.sha256) out.push('a newer module');
    const cfg = readConfig(m.config);
    const own = specOf(m).policy;
    if (m.upstreamSource !== 'option' && existsSync(cfg.policy) && existsSync(own) && sha256File(cfg.policy) !== sha256File(own)) out.push('a newer policy');
  } catch {
    // an unreadable install is reported by its state
  }
  return out;
}

export interface Where {
  /** Only the install at this location (a browser directory, or Tor Browser's top directory). */
  dir?: string;
  /** Filesystem root of the system registry (registry.ts systemRoot). */
  root?: string;
}

/**
 * Every install this user can see: root's (the system registry) and, for a
 * user other than root, the user's own. Root reads nothing another user
 * can write: not their records, and no directory of theirs named by --dir.
 */
export function findInstalls(w: Where = {}): Manifest[] {
  const root = systemRoot(w.root);
  const dir = w.dir === undefined ? undefined : (resolveBrowserDir(resolve(w.dir)) ?? resolve(w.dir));
  if (dir !== undefined && isRoot() && existsSync(dir)) requireTreeOwnedByRoot(dir, 'the directory');
  adoptLegacy(root, dir ? [dir] : []);
  const all = [...listRecords('system', root), ...(isRoot() ? [] : listRecords('user', root))];
  if (dir === undefined) return all;
  const at = all.filter((m) => m.location === dir);
  if (at.length === 0) throw new EngineError('USAGE', `ncfence has no record of an install in ${dir}; \`ncfence status\` without --dir lists the installs it knows`);
  return at;
}

/**
 * A test lookup over the service's socket, as the module makes one: a
 * request for a name no Namecoin chain uses, which a working service answers
 * "not found" (docs/service-protocol.md). Resolves with what went wrong, or
 * undefined when a well-formed answer came back within the timeout.
 */
export async function askService(path: string, timeoutMs = 2000): Promise<string | undefined> {
  try {
    await askServiceFor(path, new TextEncoder().encode('ncfence doctor test lookup'), timeoutMs);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ECONNREFUSED' ? `nothing listens on ${path} (${code})` : (e as Error).message;
  }
}

function serviceOf(m: Manifest): string | undefined {
  try {
    return readConfig(m.config).service || undefined;
  } catch {
    return undefined;
  }
}

/** Whether the service answers on the configured socket (the same test lookup doctor makes, so both agree). */
async function serviceState(m: Manifest): Promise<InstallStatus['service']> {
  const service = serviceOf(m);
  if (!service) return 'not configured';
  return (await askService(service)) === undefined ? 'reachable' : 'unreachable';
}

export async function status(w: Where = {}): Promise<InstallStatus[]> {
  const rows: InstallStatus[] = [];
  const packageModuleSha = existsSync(PACKAGE_MODULE) ? sha256File(PACKAGE_MODULE) : undefined; // once, not per install
  for (const m of findInstalls(w)) {
    const st = installState(m);
    rows.push({
      target: m.target,
      location: m.location,
      scope: m.scope,
      module: m.module.path,
      upstream: m.upstream,
      view: m.view,
      state: st.state,
      viewState: st.view,
      ...(st.own ? { ownView: st.own } : {}),
      detail: st.detail,
      rootsFenced: m.rootsFenced,
      anchors: st.anchors,
      service: st.state === 'gone' ? 'not configured' : await serviceState(m),
      ...(specOf(m).browser ? { roots: { source: m.upstreamSource ?? 'option', ...(m.browserCheck ? { check: m.browserCheck } : {}) } } : {}),
      upgrade: upgradeOffers(m, packageModuleSha),
    });
  }
  return rows;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** Loads the module in a child process, as a host would, and reports its warnings and slots. */
function loadModule(m: Manifest): Promise<{ ok: boolean; detail: string }> {
  const pkcs11js = createRequire(import.meta.url).resolve('pkcs11js');
  const script = `
    const p = new (require(process.env.NCFENCE_DOCTOR_PKCS11JS).PKCS11)();
    p.load(process.env.NCFENCE_DOCTOR_MODULE);
    p.C_Initialize({ flags: 2 });
    const slots = p.C_GetSlotList(true);
    process.stdout.write(JSON.stringify({ slots: slots.length }));
    p.C_Finalize();`;
  const env: NodeJS.ProcessEnv = { ...process.env, NCFENCE_DOCTOR_PKCS11JS: pkcs11js, NCFENCE_DOCTOR_MODULE: m.module.path };
  // Hosts find the configuration beside the module (Firefox, p11-kit) or at the system path (nss).
  delete env.NCFENCE_CONFIG;
  // A check looks, it does not repair: the module must not rebuild a stale view here.
  env.NCFENCE_REBUILDING = '1';
  if (m.target === 'nss') env.NCFENCE_CONFIG = m.config;
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', script], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      const warnings = stderr.split('\n').filter((l) => /\(ncfence:\d+\) WARNING/.test(l));
      if (err) return resolve({ ok: false, detail: `the module did not load: ${stderr.trim() || err.message}` });
      const slots = (JSON.parse(stdout || '{"slots":0}') as { slots: number }).slots;
      if (warnings.length > 0) return resolve({ ok: false, detail: warnings.join('; ') });
      resolve({ ok: slots > 0, detail: `initialized; ${slots} slot(s), no warnings` });
    });
  });
}

export async function doctor(w: Where & { firefox?: boolean } = {}): Promise<{ location: string; target: string; checks: Check[] }[]> {
  const reports = [];
  for (const m of findInstalls(w)) {
    const checks: Check[] = [];
    const st = installState(m);
    const spec = specOf(m);
    const fix = commandFor('install', m);
    if (st.state === 'gone') {
      checks.push({
        name: 'module file',
        ok: false,
        detail: st.detail,
        fix: `\`${fix}\` to fence it again, or \`${commandFor('uninstall', m)}\` if ncfence should forget it`,
      });
      reports.push({ location: m.location, target: m.target, checks });
      continue;
    }
    checks.push({ name: 'module file', ok: st.state !== 'tampered', detail: st.state === 'tampered' ? st.detail : m.module.path, fix });
    const refresh = m.scope === 'system' ? 'sudo ncfence refresh' : 'ncfence refresh';
    checks.push({
      name: 'view fresh',
      ok: st.view === 'fresh',
      detail: `${m.view}: ${st.view === 'fresh' ? 'fresh' : st.detail}`,
      fix: st.view === 'corrupt' || st.view === 'missing' ? `${fix} (rebuilds the view)` : `${refresh} (rebuilds the view; or ${fix})`,
    });
    const load = await loadModule(m);
    checks.push({ name: 'module loads', ok: load.ok, detail: load.detail, fix: 'see docs/troubleshooting.md for the warning above' });
    const service = serviceOf(m);
    if (service) {
      const why = await askService(service);
      checks.push({
        name: '.bit service',
        ok: why === undefined,
        detail: why === undefined ? `${service} answered a test lookup` : `${service}: ${why}; .bit sites fail until it answers`,
        fix: `start it (systemctl --user start ncfence.socket, or ncfence serve --socket ${service} with your sources; docs/namecoin.md), or stop asking it: ${fix} --service ""`,
      });
    }
    if (spec.checks && w.firefox !== false) checks.push(...(await spec.checks(m)));
    reports.push({ location: m.location, target: m.target, checks });
  }
  return reports;
}

/**
 * Starts the browser as installed and as it is on its own: it must load
 * ncfence, and the roots it then uses must be its own, fenced. With roots
 * named by --upstream the difference is reported, not failed: it was chosen.
 */
export async function browserChecks(target: BrowserTarget, location: string, m: Manifest): Promise<Check[]> {
  const name = BROWSER_NAME[target];
  const check = await checkBrowser(target, location);
  const loaded = check.loaded;
  const ours = loaded !== undefined && loaded.dll === m.module.path && loaded.manufacturer === 'ncfence';
  const chosen = m.upstreamSource === 'option';
  return [
    {
      name: `${name} loads ncfence`,
      ok: ours,
      detail: loaded ? `its roots module is ${loaded.dll ?? loaded.functionsIn} (${loaded.manufacturer})` : check.summary,
      fix: `${name} did not take its roots from ${m.module.path}: check that this is the ${name} you run, and that no enterprise policy or sandbox blocks the file`,
    },
    {
      name: `${name}'s own roots`,
      ok: check.differences === 0 || (chosen && check.differences > 0),
      detail: chosen && check.differences > 0 ? `${check.summary} (the roots come from ${m.upstream}, named with --upstream)` : check.summary,
      fix: check.differences < 0 ? `see the reason above; then ${reinstallCommand(target, location)}` : `${reinstallCommand(target, location)}${chosen ? ' without --upstream, to fence its own roots' : ''}`,
    },
  ];
}
