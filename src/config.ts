// ncfence.conf: the file the module reads to find its upstream and its view.
// Format (docs/configuration.md): one `key = value` per line, `#` comments.

import { readFileSync } from 'node:fs';
import { EngineError } from './engine/errors.js';

export interface ModuleConfig {
  upstream: string;
  upstreamParams: string;
  /**
   * The trust paths p11-kit-trust reads when upstreamParams names none (its
   * built-in ones, as upstream reported them to the build); part of the
   * staleness stamp. Absent for other upstreams.
   */
  upstreamTrustPaths?: string;
  /**
   * `browser`: upstream is a browser's libxul.so, whose roots the build read
   * from inside the browser and recorded in the view; the module loads no
   * library and serves that record (addon/snapshot.c). Absent: `module`.
   */
  upstreamKind?: 'module' | 'browser';
  view: string;
  /** The policy the view was built with; part of the staleness stamp. */
  policy: string;
  /**
   * The package's command the module runs (`CMD refresh --config FILE
   * [--out DIR]`, addon/rebuild.c) to regenerate a view that is not fresh.
   */
  rebuild?: string;
  /** The interpreter that runs `rebuild` (absent: `rebuild` is run itself). */
  rebuildNode?: string;
  /** The package's engine-id file; its content is part of the stamp, so updating ncfence makes the view stale. */
  engine?: string;
  /** Time limit for that run, 1..120000 ms (module default 15000). */
  rebuildTimeoutMs?: number;
  /** Socket of the live .bit service (`ncfence serve`); absent: no Namecoin anchors. */
  service?: string;
  /** Bound on one lookup, 1..120000 ms (module default 1500). */
  serviceTimeoutMs?: number;
  /** Command line (split on spaces) the module runs to start the service when nothing answers. */
  serviceCommand?: string;
  /** The command that repairs this install, named in the module's warnings. */
  fix?: string;
}

export function formatConfig(c: ModuleConfig): string {
  for (const [k, v] of Object.entries(c)) {
    if (/[\r\n\0]/.test(String(v))) throw new EngineError('USAGE', `${k} must not contain a newline or NUL`);
  }
  const lines = [
    '# ncfence module configuration, written by `ncfence build` (docs/configuration.md).',
    `upstream = ${c.upstream}`,
    `upstream-params = ${c.upstreamParams}`,
    ...(c.upstreamTrustPaths ? [`upstream-trust-paths = ${c.upstreamTrustPaths}`] : []),
    ...(c.upstreamKind === 'browser' ? ['upstream-kind = browser'] : []),
    `view = ${c.view}`,
    `policy = ${c.policy}`,
  ];
  if (c.rebuild) lines.push(`rebuild = ${c.rebuild}`);
  if (c.rebuildNode) lines.push(`rebuild-node = ${c.rebuildNode}`);
  if (c.engine) lines.push(`engine = ${c.engine}`);
  if (c.rebuildTimeoutMs !== undefined) lines.push(`rebuild-timeout-ms = ${c.rebuildTimeoutMs}`);
  if (c.service) lines.push(`service = ${c.service}`);
  if (c.serviceTimeoutMs !== undefined) lines.push(`service-timeout-ms = ${c.serviceTimeoutMs}`);
  if (c.serviceCommand) lines.push(`service-command = ${c.serviceCommand}`);
  if (c.fix) lines.push(`fix = ${c.fix}`);
  return `${lines.join('\n')}\n`;
}

export function readConfig(file: string): ModuleConfig {
  const out: Partial<ModuleConfig> = { upstreamParams: '' };
  const keys: Record<string, keyof ModuleConfig> = {
    upstream: 'upstream',
    'upstream-params': 'upstreamParams',
    'upstream-trust-paths': 'upstreamTrustPaths',
    'upstream-kind': 'upstreamKind',
    view: 'view',
    policy: 'policy',
    rebuild: 'rebuild',
    'rebuild-node': 'rebuildNode',
    engine: 'engine',
    'rebuild-timeout-ms': 'rebuildTimeoutMs',
    service: 'service',
    'service-timeout-ms': 'serviceTimeoutMs',
    'service-command': 'serviceCommand',
    fix: 'fix',
  };
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) return;
      const m = /^([a-z-]+)\s*=\s*(.*)$/.exec(t);
      const key = m && keys[m[1]!];
      if (!m || !key) throw new EngineError('USAGE', `${file}:${i + 1}: unknown line (keys: ${Object.keys(keys).join(', ')})`);
      if (key === 'rebuildTimeoutMs' || key === 'serviceTimeoutMs') out[key] = Number(m[2]);
      else if (key === 'upstreamKind') {
        if (m[2] !== 'module' && m[2] !== 'browser') throw new EngineError('USAGE', `${file}:${i + 1}: upstream-kind is module or browser, not ${m[2]}`);
        out.upstreamKind = m[2];
      } else out[key] = m[2]!;
    });
  if (!out.upstream || !out.view || !out.policy) throw new EngineError('USAGE', `${file}: needs upstream, view and policy`);
  return out as ModuleConfig;
}
