// What state an install is in, as the consumers that load it would find
// it: the module ncfence placed, the view and its stamp, and this user's own
// view (the one the module builds when the installed view is stale and it
// may not rewrite it: addon/rebuild.c). `status`, `doctor` and `refresh`
// all judge by this.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readConfig } from '../config.js';
import { isAnchor } from '../pkcs11/objects.js';
import { decodeView } from '../view/format.js';
import { upstreamStamp } from '../view/stamp.js';
import { VIEW_FILE } from '../compile/build.js';
import { sha256File, type Manifest } from './common.js';

export type ViewState = 'fresh' | 'stale' | 'missing' | 'corrupt';

/** FNV-1a 64 of a string, as addon/rebuild.c names a configuration's per-user directory. */
function fnv1a(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

/** This user's own view of a configuration, where the module builds it (addon/rebuild.c). */
export function userViewDir(config: string): string {
  const cache = process.env.XDG_CACHE_HOME?.startsWith('/') ? process.env.XDG_CACHE_HOME : join(process.env.HOME?.startsWith('/') ? process.env.HOME : homedir(), '.cache');
  return join(cache, 'ncfence/views', fnv1a(config));
}

/**
 * Whether a view is what the module would serve for a configuration now:
 * its stamp equals the stamp of what upstream, policy and engine are now
 * (computed by the module's own code). `view` defaults to the configured one.
 */
export function viewFreshness(config: string, view?: string): { state: ViewState; anchors: number } {
  let file = view;
  let c;
  try {
    c = readConfig(config);
    file ??= c.view;
  } catch {
    return { state: 'corrupt', anchors: 0 };
  }
  if (!existsSync(file)) return { state: 'missing', anchors: 0 };
  try {
    const v = decodeView(readFileSync(file));
    let fresh = false;
    try {
      fresh = v.stamp === upstreamStamp(c.upstream, c.upstreamParams, c.policy, c.upstreamTrustPaths ?? '', c.engine ?? '');
    } catch {
      // no stamp (upstream gone, trust files past the stamp's bounds): never fresh, as in the module
    }
    return { state: fresh ? 'fresh' : 'stale', anchors: v.objects.filter((o) => isAnchor(o.attrs)).length };
  } catch {
    return { state: 'corrupt', anchors: 0 };
  }
}

export interface InstallState {
  /**
   * ok: the installed view is fresh. stale: it is not, and the module will
   * rebuild it at the next start (or has, for this user: see `own`).
   * closed: consumers get no trusted root (no usable view, nothing to
   * rebuild with). tampered: the module file is not the one installed.
   * gone: the module file is missing (the directory was replaced or removed).
   */
  state: 'ok' | 'stale' | 'closed' | 'tampered' | 'gone';
  view: ViewState;
  anchors: number;
  /** This user's own view, when the module built one. */
  own?: ViewState;
  /** One line for a person. */
  detail: string;
}

export function installState(m: Manifest): InstallState {
  if (!existsSync(m.module.path)) {
    return { state: 'gone', view: 'missing', anchors: 0, detail: `${m.module.path} is gone: the ${m.target} there is not fenced (replaced, reinstalled or removed)` };
  }
  if (sha256File(m.module.path) !== m.module.sha256) {
    return { state: 'tampered', view: 'missing', anchors: 0, detail: `${m.module.path} is not the module ncfence installed` };
  }
  const v = viewFreshness(m.config);
  if (v.state === 'fresh') return { state: 'ok', view: v.state, anchors: v.anchors, detail: 'fresh' };
  const ownDir = userViewDir(m.config);
  const own = existsSync(join(ownDir, VIEW_FILE)) ? viewFreshness(m.config, join(ownDir, VIEW_FILE)).state : undefined;
  let rebuilds = false;
  try {
    rebuilds = readConfig(m.config).rebuild !== undefined;
  } catch {
    // unreadable: closed
  }
  const stateOf = v.state === 'corrupt' || !rebuilds ? 'closed' : 'stale';
  const detail =
    own === 'fresh'
      ? `the installed view is ${v.state}; this user's programs use their own fresh view (${ownDir})`
      : stateOf === 'stale'
        ? `the installed view is ${v.state}; the next program to start rebuilds it (about a second, once)`
        : `the installed view is ${v.state} and nothing rebuilds it: no root is trusted`;
  return { state: stateOf, view: v.state, anchors: v.anchors, ...(own ? { own } : {}), detail };
}
