// `ncfence build`: upstream -> engine -> compiled view + ncfence.conf, both
// written atomically (temp file, fsync, rename).

import { accessSync, closeSync, constants, existsSync, fsyncSync, openSync, realpathSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { checkWritableDir, makeDirs } from '../fsPaths.js';
import { describePathError } from '../systemError.js';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { defaultEngineDeps, type EngineDeps } from '../engine/crossSign.js';
import { EngineError } from '../engine/errors.js';
import { formatConfig, readConfig, type ModuleConfig } from '../config.js';
import { loadPolicy, policyForUpstream } from '../policy.js';
import { encodeView } from '../view/format.js';
import { libraryStamp, p11kitPathsArgument, upstreamStamp } from '../view/stamp.js';
import { planView, type PlanSummary } from './plan.js';
import { builtinTrustPaths, checkUpstreamFile, readUpstream, type UpstreamSnapshot } from './upstream.js';
import type { BrowserRoots } from '../browser/probe.js';
import { resolveBrowserDir } from '../browser/layout.js';

export const DEFAULT_UPSTREAM = '/usr/lib/x86_64-linux-gnu/libnssckbi.so';
export const VIEW_FILE = 'view.ncfv';
export const CONFIG_FILE = 'ncfence.conf';

export interface BuildOptions {
  upstream: string;
  upstreamParams: string;
  /**
   * A browser's install directory: read its own roots from inside it
   * (src/browser/probe.ts) instead of loading `upstream`, and record them in
   * the view; `upstream` and `upstreamParams` are then ignored.
   */
  browser?: string;
  /** The command that repairs this install, for the module's warnings (ncfence.conf `fix`). */
  fix?: string;
  /**
   * Refuse, writing nothing, a view that fences fewer roots (the CLI and
   * installs ask for 1 unless --allow-empty: an upstream that trusts nothing
   * is usually a wrong paths= or an empty trust directory).
   */
  minRootsFenced?: number;
  outDir: string;
  /** Where to write ncfence.conf (default: in outDir). */
  configFile?: string;
  /** Default: the policy for what reads the upstream (policy.ts policyForUpstream). */
  policyFile?: string;
  /** Command the module may run to regenerate a stale view (written to ncfence.conf). */
  rebuildCommand?: string;
  /** The interpreter that runs it (ncfence.conf `rebuild-node`). */
  rebuildNode?: string;
  /** The package's engine-id file, stamped (ncfence.conf `engine`): an update of ncfence then makes the view stale. */
  engine?: string;
  rebuildTimeoutMs?: number;
  /** Socket of the live .bit service, written to ncfence.conf. */
  service?: string;
  /** Command line the module may run to start that service on demand. */
  serviceCommand?: string;
  deps?: EngineDeps;
}

export interface BuildResult {
  upstream: string;
  upstreamParams: string;
  /** Browser builds: the browser's roots as read from inside it (the view's snapshot). */
  browser?: BrowserRoots;
  view: string;
  config: string;
  policy: string;
  summary: PlanSummary;
  millis: number;
}

/** The upstream's real path, what policyForUpstream judges (Fedora's libnssckbi.so is a link to p11-kit-trust.so); as given when it cannot be resolved (the read then says why). */
export function realUpstream(upstream: string): string {
  try {
    return realpathSync(resolve(upstream));
  } catch {
    return upstream;
  }
}

/** rebuild, service and their settings from an existing configuration file (none if it is absent or unreadable). */
function moduleOnlyKeys(file: string): Pick<ModuleConfig, 'rebuild' | 'rebuildNode' | 'engine' | 'rebuildTimeoutMs' | 'service' | 'serviceTimeoutMs' | 'serviceCommand' | 'fix'> {
  if (!existsSync(file)) return {};
  try {
    const c = readConfig(file);
    return { rebuild: c.rebuild, rebuildNode: c.rebuildNode, engine: c.engine, rebuildTimeoutMs: c.rebuildTimeoutMs, service: c.service, serviceTimeoutMs: c.serviceTimeoutMs, serviceCommand: c.serviceCommand, fix: c.fix };
  } catch {
    return {}; // a file we cannot read is replaced, as before
  }
}

// makeDirs lives in ../fsPaths.ts (the service makes its socket directory with it too).
export { makeDirs } from '../fsPaths.js';

/**
 * Temp file, fsync, rename. The temp file is created exclusively and never
 * through a symbolic link (O_EXCL | O_NOFOLLOW): a file or link planted at
 * its name makes the write fail instead of writing wherever it points.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new EngineError('VIEW', `${tmp} already exists (left by a crash, or planted); ncfence creates its temporary files itself and will not write through one: remove it after checking what it is`, { cause });
    }
    throw cause;
  }
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  // process.hrtime, not performance.now(): the performance global loads perf_hooks, nine modules.
  const started = process.hrtime.bigint();
  if (opts.rebuildTimeoutMs !== undefined && !(Number.isInteger(opts.rebuildTimeoutMs) && opts.rebuildTimeoutMs > 0 && opts.rebuildTimeoutMs <= 120_000)) {
    throw new EngineError('USAGE', `--rebuild-timeout-ms must be a whole number of milliseconds from 1 to 120000, got ${opts.rebuildTimeoutMs}`);
  }
  if (opts.rebuildCommand !== undefined) {
    if (!isAbsolute(opts.rebuildCommand)) throw new EngineError('USAGE', `--rebuild-command must be an absolute path, got ${opts.rebuildCommand}`);
    // The module would find out only at a stale start-up, and serve the closed view.
    try {
      accessSync(opts.rebuildCommand, constants.X_OK);
    } catch (cause) {
      const why = existsSync(opts.rebuildCommand) ? `${opts.rebuildCommand} is not executable` : describePathError(cause, opts.rebuildCommand);
      throw new EngineError('USAGE', `--rebuild-command: ${why}`, { cause });
    }
  }
  const outDir = resolve(opts.outDir);
  // Cheap checks first: a wrong --out must not cost a browser start or a read of upstream.
  checkWritableDir(outDir, '--out');
  if (opts.configFile) checkWritableDir(dirname(resolve(opts.configFile)), 'the configuration\'s directory');
  if (opts.browser !== undefined && !existsSync(opts.browser)) throw new EngineError('USAGE', `--browser ${opts.browser} does not exist`);
  const config = opts.configFile ? resolve(opts.configFile) : `${outDir}/${CONFIG_FILE}`;
  // The keys only the module uses are kept from an existing ncfence.conf
  // unless given again: a rebuild the module runs itself (`CMD refresh
  // --config FILE`, addon/rebuild.c) passes none of them.
  const kept = moduleOnlyKeys(config);
  const engine = opts.engine ?? kept.engine ?? '';
  const policy = loadPolicy(opts.policyFile ? resolve(opts.policyFile) : policyForUpstream(realUpstream(opts.upstream), opts.browser !== undefined));
  const deps = opts.deps ?? (await defaultEngineDeps(policy.anchorKey));
  const read = opts.browser !== undefined ? await readBrowser(resolve(opts.browser), policy.file, engine) : readModule(resolve(opts.upstream), opts.upstreamParams, policy.file, engine);
  const upstream = read.upstream;
  const upstreamParams = read.browser ? '' : opts.upstreamParams;
  const { stamp, upstreamTrustPaths, snapshot } = read;
  const plan = planView(snapshot, policy, deps, { mirrorTrustKinds: read.browser !== undefined });
  if (opts.minRootsFenced !== undefined && plan.summary.rootsFenced < opts.minRootsFenced) {
    throw new EngineError(
      'UPSTREAM',
      `${upstream}${upstreamParams ? ` (${upstreamParams})` : ''} gave ${plan.summary.rootsFenced} roots to fence (${snapshot.objects.length} objects read): the view would trust no public root. Check the upstream and its paths=; pass --allow-empty if that is what you want. Nothing was written`,
    );
  }
  const view = `${outDir}/${VIEW_FILE}`;
  makeDirs(outDir);
  makeDirs(dirname(config));
  try {
    writeFileAtomic(view, encodeView({ stamp, policyDigest: policy.digest, objects: plan.objects, ...(read.browser?.snapshot ? { snapshot: read.browser.snapshot } : {}) }));
    writeFileAtomic(
      config,
      formatConfig({
        upstream,
        upstreamParams,
        upstreamTrustPaths: upstreamTrustPaths || undefined,
        upstreamKind: read.browser ? 'browser' : undefined,
        view,
        policy: policy.file,
        rebuild: opts.rebuildCommand ?? kept.rebuild,
        rebuildNode: opts.rebuildCommand !== undefined ? opts.rebuildNode : (opts.rebuildNode ?? kept.rebuildNode),
        engine: engine || undefined,
        rebuildTimeoutMs: opts.rebuildTimeoutMs ?? kept.rebuildTimeoutMs,
        service: opts.service ?? kept.service,
        serviceTimeoutMs: kept.serviceTimeoutMs,
        serviceCommand: opts.serviceCommand ?? kept.serviceCommand,
        fix: opts.fix ?? kept.fix,
      }),
    );
  } catch (cause) {
    if (cause instanceof EngineError) throw cause;
    throw new EngineError('VIEW', `cannot write into ${outDir}: ${describePathError(cause, (cause as NodeJS.ErrnoException).path ?? outDir)}`, { cause });
  }
  return {
    upstream,
    upstreamParams,
    ...(read.browser ? { browser: read.browser } : {}),
    view,
    config,
    policy: policy.file,
    summary: plan.summary,
    millis: Math.round(Number(process.hrtime.bigint() - started) / 1e6),
  };
}

interface ReadResult {
  upstream: string;
  stamp: string;
  upstreamTrustPaths: string;
  snapshot: Pick<UpstreamSnapshot, 'objects'>;
  browser?: BrowserRoots;
}

/** A browser's own roots, read from inside it; stamped by its libxul.so (the browser's build). */
async function readBrowser(dir: string, policyFile: string, engine: string): Promise<ReadResult> {
  const gre = resolveBrowserDir(dir);
  if (!gre) throw new EngineError('USAGE', `${dir} is not a browser install directory (it has no libxul.so)`);
  const libxul = join(gre, 'libxul.so');
  const before = libraryStamp(libxul);
  const stamp = upstreamStamp(libxul, '', policyFile, '', engine);
  // Loaded here, not at the top: only browser builds start a browser (child_process).
  const { readBrowserRoots } = await import('../browser/probe.js');
  const browser = await readBrowserRoots(gre, { stock: true });
  if (libraryStamp(libxul) !== before) throw new EngineError('UPSTREAM', `${libxul} changed while its roots were being read (a browser update?); run the build again`);
  if (!browser.snapshot) throw new EngineError('UPSTREAM', `the roots read from ${gre} lack the token's description; cannot record them`);
  return { upstream: libxul, stamp, upstreamTrustPaths: '', snapshot: browser, browser };
}

function readModule(upstream: string, upstreamParams: string, policyFile: string, engine: string): ReadResult {
  // The stamp is taken before any object is read, so a concurrent change to
  // a trust file makes the view stale, not wrong. It needs upstream loaded
  // (for p11-kit-trust's built-in paths), so the library must still be the
  // one that was loaded.
  checkUpstreamFile(upstream);
  let library: string;
  try {
    library = libraryStamp(upstream);
  } catch (cause) {
    throw new EngineError('UPSTREAM', `cannot load the upstream module: ${describePathError(cause, upstream)}`, { cause });
  }
  let stamp = '';
  let upstreamTrustPaths = '';
  const snapshot = readUpstream(upstream, upstreamParams, (probe) => {
    if (p11kitPathsArgument(upstreamParams) === undefined) upstreamTrustPaths = builtinTrustPaths(upstream, probe);
    stamp = upstreamStamp(upstream, upstreamParams, policyFile, upstreamTrustPaths, engine);
    if (libraryStamp(upstream) !== library) throw new EngineError('UPSTREAM', `${upstream} changed while it was being read; run the build again`);
  });
  return { upstream, stamp, upstreamTrustPaths, snapshot };
}
