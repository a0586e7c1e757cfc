// The upstream fingerprint stored in the view and recomputed by the module
// (addon/stamp.c) at C_Initialize. It must change whenever upstream's objects
// can have changed: the library file, its parameters, and for p11-kit-trust
// the directories named by `paths=`. Both sides build the same text.

import { realpathSync, statSync } from 'node:fs';

function mtime(path: string): string {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.mtimeNs / 1_000_000_000n}.${String(s.mtimeNs % 1_000_000_000n).padStart(9, '0')}`;
  } catch {
    return '-';
  }
}

/** Directories p11-kit-trust reads, from a `paths=A:B` token of the parameters. */
export function trustPaths(params: string): string[] {
  const out: string[] = [];
  for (const token of params.split(/\s+/)) {
    if (token.startsWith('paths=')) out.push(...token.slice(6).split(':').filter((p) => p.length > 0));
  }
  return out;
}

/**
 * The policy file is part of the stamp (path, size, mtime), so editing the
 * policy makes the view stale just as an upstream change does.
 */
export function upstreamStamp(library: string, params: string, policy: string): string {
  const real = realpathSync(library);
  const s = statSync(real, { bigint: true });
  const lines = ['ncfence-stamp-v1', `lib=${real}`, `size=${s.size}`, `mtime=${mtime(real)}`, `params=${params}`];
  for (const dir of trustPaths(params)) {
    for (const p of [dir, `${dir}/anchors`, `${dir}/blocklist`]) lines.push(`dir=${p}:${mtime(p)}`);
  }
  let size = '-';
  try {
    size = String(statSync(policy).size);
  } catch {
    // a missing policy stamps as "-"
  }
  lines.push(`policy=${policy}:${size}:${mtime(policy)}`);
  return lines.join('\n');
}
