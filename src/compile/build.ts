// `ncfence build`: upstream -> engine -> compiled view + ncfence.conf, both
// written atomically (temp file, fsync, rename).

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { defaultEngineDeps, type EngineDeps } from '../engine/crossSign.js';
import { EngineError } from '../engine/errors.js';
import { formatConfig, readConfig, type ModuleConfig } from '../config.js';
import { loadPolicy } from '../policy.js';
import { encodeView } from '../view/format.js';
import { libraryStamp, p11kitPathsArgument, upstreamStamp } from '../view/stamp.js';
import { planView, type PlanSummary } from './plan.js';
import { builtinTrustPaths, readUpstream } from './upstream.js';

export const DEFAULT_UPSTREAM = '/usr/lib/x86_64-linux-gnu/libnssckbi.so';
export const VIEW_FILE = 'view.ncfv';
export const CONFIG_FILE = 'ncfence.conf';

export interface BuildOptions {
  upstream: string;
  upstreamParams: string;
  outDir: string;
  /** Where to write ncfence.conf (default: in outDir). */
  configFile?: string;
  policyFile?: string;
  /** Command the module may run to regenerate a stale view (written to ncfence.conf). */
  rebuildCommand?: string;
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
  view: string;
  config: string;
  policy: string;
  summary: PlanSummary;
  millis: number;
}

/** rebuild, service and their settings from an existing configuration file (none if it is absent or unreadable). */
function moduleOnlyKeys(file: string): Pick<ModuleConfig, 'rebuild' | 'rebuildTimeoutMs' | 'service' | 'serviceTimeoutMs' | 'serviceCommand'> {
  if (!existsSync(file)) return {};
  try {
    const c = readConfig(file);
    return { rebuild: c.rebuild, rebuildTimeoutMs: c.rebuildTimeoutMs, service: c.service, serviceTimeoutMs: c.serviceTimeoutMs, serviceCommand: c.serviceCommand };
  } catch {
    return {}; // a file we cannot read is replaced, as before
  }
}

export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
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
  const started = performance.now();
  if (opts.rebuildTimeoutMs !== undefined && !(Number.isInteger(opts.rebuildTimeoutMs) && opts.rebuildTimeoutMs > 0 && opts.rebuildTimeoutMs <= 120_000)) {
    throw new EngineError('USAGE', `--rebuild-timeout-ms must be a whole number of milliseconds from 1 to 120000, got ${opts.rebuildTimeoutMs}`);
  }
  if (opts.rebuildCommand !== undefined && !isAbsolute(opts.rebuildCommand)) {
    throw new EngineError('USAGE', `--rebuild-command must be an absolute path, got ${opts.rebuildCommand}`);
  }
  const outDir = resolve(opts.outDir);
  const upstream = resolve(opts.upstream);
  const policy = loadPolicy(opts.policyFile ? resolve(opts.policyFile) : undefined);
  const deps = opts.deps ?? (await defaultEngineDeps(policy.anchorKey));
  // The stamp is taken before any object is read, so a concurrent change to
  // a trust file makes the view stale, not wrong. It needs upstream loaded
  // (for p11-kit-trust's built-in paths), so the library must still be the
  // one that was loaded.
  let library: string;
  try {
    library = libraryStamp(upstream);
  } catch (cause) {
    throw new EngineError('UPSTREAM', `cannot load upstream module ${upstream}: ${(cause as Error).message}`, { cause });
  }
  let stamp = '';
  let upstreamTrustPaths = '';
  const snapshot = readUpstream(upstream, opts.upstreamParams, (probe) => {
    if (p11kitPathsArgument(opts.upstreamParams) === undefined) upstreamTrustPaths = builtinTrustPaths(upstream, probe);
    stamp = upstreamStamp(upstream, opts.upstreamParams, policy.file, upstreamTrustPaths);
    if (libraryStamp(upstream) !== library) throw new EngineError('UPSTREAM', `${upstream} changed while it was being read; run the build again`);
  });
  const plan = planView(snapshot, policy, deps);
  const view = `${outDir}/${VIEW_FILE}`;
  const config = opts.configFile ? resolve(opts.configFile) : `${outDir}/${CONFIG_FILE}`;
  try {
    mkdirSync(outDir, { recursive: true });
    mkdirSync(dirname(config), { recursive: true });
  } catch (cause) {
    throw new EngineError('VIEW', `cannot create output directory ${outDir}: ${(cause as Error).message}`, { cause });
  }
  // The keys only the module uses are kept from an existing ncfence.conf
  // unless given again: a rebuild the module runs itself (`CMD build --out
  // DIR ...`, addon/rebuild.c) passes none of them, and used to drop them.
  const kept = moduleOnlyKeys(config);
  try {
    writeFileAtomic(view, encodeView({ stamp, policyDigest: policy.digest, objects: plan.objects }));
    writeFileAtomic(
      config,
      formatConfig({
        upstream,
        upstreamParams: opts.upstreamParams,
        upstreamTrustPaths: upstreamTrustPaths || undefined,
        view,
        policy: policy.file,
        rebuild: opts.rebuildCommand ?? kept.rebuild,
        rebuildTimeoutMs: opts.rebuildTimeoutMs ?? kept.rebuildTimeoutMs,
        service: opts.service ?? kept.service,
        serviceTimeoutMs: kept.serviceTimeoutMs,
        serviceCommand: opts.serviceCommand ?? kept.serviceCommand,
      }),
    );
  } catch (cause) {
    if (cause instanceof EngineError) throw cause;
    throw new EngineError('VIEW', `cannot write into ${outDir}: ${(cause as Error).message}`, { cause });
  }
  return {
    upstream,
    upstreamParams: opts.upstreamParams,
    view,
    config,
    policy: policy.file,
    summary: plan.summary,
    millis: Math.round(performance.now() - started),
  };
}
