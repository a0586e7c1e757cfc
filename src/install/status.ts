// `ncfence status` and `ncfence doctor`: what is installed where, and checks
// a user would otherwise run by hand, each with the fix when it fails.

import { execFile } from 'node:child_process';
import { createConnection } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { readConfig } from '../config.js';
import { FRAME_HEADER_LENGTH, decodeResponse, encodeRequest, readFrameHeader } from '../service/protocol.js';
import { decodeView } from '../view/format.js';
import { upstreamStamp } from '../view/stamp.js';
import { CKA } from '../pkcs11/constants.js';
import { CKO } from '../pkcs11/constants.js';
import { BROWSER_NAME, BROWSER_TARGETS, resolveBrowserDir, type BrowserTarget } from '../browser/layout.js';
import { PACKAGE_MODULE, readManifest, sha256File, type BrowserCheck, type Manifest } from './common.js';
import { TARGET_POLICY } from '../policy.js';
import { MANIFEST_FILE, allBrowserCandidates, checkBrowser, reinstallCommand } from './browser.js';
import { STATE_DIR } from './nss.js';
import { p11kitPaths } from './p11kit.js';

export interface InstallStatus {
  target: Manifest['target'];
  location: string;
  module: string;
  upstream: string;
  view: string;
  viewState: 'fresh' | 'stale' | 'missing' | 'corrupt';
  rootsFenced: number;
  anchors: number;
  /** The live .bit service named in the configuration: whether something answers on its socket. */
  service: 'not configured' | 'reachable' | 'unreachable';
  /** Browser targets: where the roots come from, and how they compared with the browser's own at install. */
  roots?: { source: NonNullable<Manifest['upstreamSource']>; check?: BrowserCheck };
  /** What this package would install differently (a newer module or policy); empty when the install is current. */
  upgrade: string[];
}

/** The policy this package gives a target, for the upgrade check. */
function packagePolicyFor(target: Manifest['target']): string {
  return isBrowser(target) ? TARGET_POLICY.browser : target === 'nss' ? TARGET_POLICY.nss : TARGET_POLICY['p11-kit'];
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
    const own = packagePolicyFor(m.target);
    if (m.upstreamSource !== 'option' && existsSync(cfg.policy) && existsSync(own) && sha256File(cfg.policy) !== sha256File(own)) out.push('a newer policy');
  } catch {
    // an unreadable install is reported by the view state
  }
  return out;
}

const isBrowser = (t: Manifest['target']): t is BrowserTarget => (BROWSER_TARGETS as readonly string[]).includes(t);

/** Every install ncfence can find: Firefox directories (candidates and `extraDirs`), system NSS, p11-kit. */
export function findInstalls(extraDirs: string[] = [], root = '/'): { location: string; manifest: Manifest }[] {
  const out: { location: string; manifest: Manifest }[] = [];
  const seen = new Set<string>();
  const add = (location: string, file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const m = readManifest(file);
    if (m) out.push({ location, manifest: m });
  };
  for (const d of [...extraDirs.map((x) => resolveBrowserDir(x) ?? x), ...allBrowserCandidates()]) add(d, join(d, MANIFEST_FILE));
  add(root, join(root, STATE_DIR, 'install.json'));
  for (const user of [false, true]) add(p11kitPaths(user).libDir, join(p11kitPaths(user).libDir, 'install.json'));
  return out;
}

export function viewState(m: Manifest): { state: InstallStatus['viewState']; anchors: number } {
  if (!existsSync(m.view)) return { state: 'missing', anchors: 0 };
  try {
    const view = decodeView(readFileSync(m.view));
    const anchors = view.objects.filter((o) => {
      const label = o.attrs.find(([t]) => t === CKA.LABEL)?.[1];
      const cls = o.attrs.find(([t]) => t === CKA.CLASS)?.[1];
      return cls && Buffer.from(cls).readBigUInt64LE() === BigInt(CKO.CERTIFICATE) && label && new TextDecoder().decode(label).startsWith('ncfence anchor for ');
    }).length;
    const cfg = readConfig(m.config);
    let fresh = false;
    try {
      fresh = view.stamp === upstreamStamp(cfg.upstream, cfg.upstreamParams, cfg.policy, cfg.upstreamTrustPaths);
    } catch {
      // no stamp (upstream gone, trust files past the stamp's bounds): never fresh, as in the module
    }
    return { state: fresh ? 'fresh' : 'stale', anchors };
  } catch {
    return { state: 'corrupt', anchors: 0 };
  }
}

/**
 * A test lookup over the service's socket, as the module makes one: a
 * request for a name no Namecoin chain uses, which a working service answers
 * "not found" (docs/service-protocol.md). Resolves with what went wrong, or
 * undefined when a well-formed answer came back within the timeout.
 */
export function askService(path: string, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    let got = Buffer.alloc(0);
    let settled = false;
    const done = (why: string | undefined): void => {
      if (settled) return;
      settled = true;
      s.destroy();
      resolve(why);
    };
    s.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    s.once('connect', () => s.write(encodeRequest({ name: new TextEncoder().encode('ncfence doctor test lookup') })));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      try {
        const len = readFrameHeader(got, 'response');
        if (len === undefined || got.length < FRAME_HEADER_LENGTH + len) return;
        decodeResponse(got.subarray(0, FRAME_HEADER_LENGTH + len));
        done(undefined);
      } catch (e) {
        done(`a malformed answer: ${(e as Error).message}`);
      }
    });
    s.once('error', (e) => done((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? `nothing listens on ${path} (${(e as NodeJS.ErrnoException).code})` : e.message));
    s.once('close', () => done('the service closed the connection without an answer (another user\'s service refuses us)'));
  });
}

/** Whether the service answers on the configured socket (the same test lookup doctor makes, so both agree). */
async function probeService(path: string): Promise<'reachable' | 'unreachable'> {
  return (await askService(path)) === undefined ? 'reachable' : 'unreachable';
}

function serviceOf(m: Manifest): string | undefined {
  try {
    return readConfig(m.config).service || undefined;
  } catch {
    return undefined;
  }
}

async function serviceState(m: Manifest): Promise<InstallStatus['service']> {
  try {
    const cfg = readConfig(m.config);
    return cfg.service ? await probeService(cfg.service) : 'not configured';
  } catch {
    return 'not configured';
  }
}

export async function status(extraDirs: string[] = [], root = '/'): Promise<InstallStatus[]> {
  const rows: InstallStatus[] = [];
  const packageModuleSha = existsSync(PACKAGE_MODULE) ? sha256File(PACKAGE_MODULE) : undefined; // once, not per install
  for (const { location, manifest: m } of findInstalls(extraDirs, root)) {
    const v = viewState(m);
    rows.push({
      target: m.target,
      location,
      module: m.module.path,
      upstream: m.upstream,
      view: m.view,
      viewState: v.state,
      rootsFenced: m.rootsFenced,
      anchors: v.anchors,
      service: await serviceState(m),
      ...(isBrowser(m.target) ? { roots: { source: m.upstreamSource ?? 'option', ...(m.browserCheck ? { check: m.browserCheck } : {}) } } : {}),
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

export async function doctor(extraDirs: string[] = [], opts: { firefox?: boolean; root?: string } = {}): Promise<{ location: string; target: string; checks: Check[] }[]> {
  const installs = findInstalls(extraDirs, opts.root);
  const reports = [];
  for (const { location, manifest: m } of installs) {
    const checks: Check[] = [];
    const reinstall = isBrowser(m.target) ? reinstallCommand(m.target, location) : `ncfence install ${m.target}`;
    const moduleOk = existsSync(m.module.path) && sha256File(m.module.path) === m.module.sha256;
    checks.push({ name: 'module file', ok: moduleOk, detail: moduleOk ? m.module.path : `${m.module.path} is missing or not the file ncfence installed`, fix: reinstall });
    const v = viewState(m);
    checks.push({ name: 'view fresh', ok: v.state === 'fresh', detail: `${m.view}: ${v.state}`, fix: `${reinstall} (rebuilds the view)` });
    const load = await loadModule(m);
    checks.push({ name: 'module loads', ok: load.ok, detail: load.detail, fix: 'see docs/troubleshooting.md for the warning above' });
    const service = serviceOf(m);
    if (service) {
      const why = await askService(service);
      checks.push({
        name: '.bit service',
        ok: why === undefined,
        detail: why === undefined ? `${service} answered a test lookup` : `${service}: ${why}; .bit sites fail until it answers`,
        fix: `start it (systemctl --user start ncfence.socket, or ncfence serve --socket ${service} with your sources; docs/namecoin.md), or stop asking it: ${reinstall} --service ""`,
      });
    }
    if (isBrowser(m.target) && opts.firefox !== false) checks.push(...(await browserChecks(m.target, location, m)));
    reports.push({ location, target: m.target, checks });
  }
  return reports;
}

/**
 * Starts the browser as installed and as it is on its own: it must load
 * ncfence, and the roots it then uses must be its own, fenced. With roots
 * named by --upstream the difference is reported, not failed: it was chosen.
 */
async function browserChecks(target: BrowserTarget, location: string, m: Manifest): Promise<Check[]> {
  const name = BROWSER_NAME[target];
  const check = await checkBrowser(target, location);
  const loaded = check.loaded;
  const ours = loaded !== undefined && loaded.dll === m.module.path && loaded.manufacturer === 'ncfence';
  const out: Check[] = [
    {
      name: `${name} loads ncfence`,
      ok: ours,
      detail: loaded ? `its roots module is ${loaded.dll ?? loaded.functionsIn} (${loaded.manufacturer})` : check.summary,
      fix: `${name} did not take its roots from ${m.module.path}: check that this is the ${name} you run, and that no enterprise policy or sandbox blocks the file`,
    },
  ];
  const chosen = m.upstreamSource === 'option';
  out.push({
    name: `${name}'s own roots`,
    ok: check.differences === 0 || (chosen && check.differences > 0),
    detail: chosen && check.differences > 0 ? `${check.summary} (the roots come from ${m.upstream}, named with --upstream)` : check.summary,
    fix: check.differences < 0 ? `see the reason above; then ${reinstallCommand(target, location)}` : `${reinstallCommand(target, location)}${chosen ? ' without --upstream, to fence its own roots' : ''}`,
  });
  return out;
}
