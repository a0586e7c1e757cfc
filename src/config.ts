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

/** Each key of the file and its field, in the order formatConfig writes them. */
const KEYS: Record<string, keyof ModuleConfig> = {
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
const ALWAYS_WRITTEN = new Set<keyof ModuleConfig>(['upstream', 'upstreamParams', 'view', 'policy']);

export function formatConfig(c: ModuleConfig): string {
  for (const [k, v] of Object.entries(c)) {
    if (/[\r\n\0]/.test(String(v))) throw new EngineError('USAGE', `${k} must not contain a newline or NUL`);
  }
  const lines = ['# ncfence module configuration, written by `ncfence build` (docs/configuration.md).'];
  for (const [key, field] of Object.entries(KEYS)) {
    const v = c[field];
    // upstream-kind only when not the default (module); the other optional keys when set and not empty.
    if (ALWAYS_WRITTEN.has(field) || (field === 'upstreamKind' ? v === 'browser' : v !== undefined && v !== '')) lines.push(`${key} = ${v}`);
  }
  return `${lines.join('\n')}\n`;
}

export function readConfig(file: string): ModuleConfig {
  const out: Partial<ModuleConfig> = { upstreamParams: '' };
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) return;
      const m = /^([a-z-]+)\s*=\s*(.*)$/.exec(t);
      const key = m && KEYS[m[1]!];
      if (!m || !key) throw new EngineError('USAGE', `${file}:${i + 1}: unknown line (keys: ${Object.keys(KEYS).join(', ')})`);
      if (key === 'rebuildTimeoutMs' || key === 'serviceTimeoutMs') out[key] = Number(m[2]);
      else if (key === 'upstreamKind') {
        if (m[2] !== 'module' && m[2] !== 'browser') throw new EngineError('USAGE', `${file}:${i + 1}: upstream-kind is module or browser, not ${m[2]}`);
        out.upstreamKind = m[2];
      } else out[key] = m[2]!;
    });
  if (!out.upstream || !out.view || !out.policy) throw new EngineError('USAGE', `${file}: needs upstream, view and policy`);
  return out as ModuleConfig;
}
