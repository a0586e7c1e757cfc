// Debian's own hook points, so that root's views follow a routine update
// right away, before any consumer starts (docs/install.md, "Updates"):
//
//  - APT runs every DPkg::Post-Invoke command after each dpkg run it makes
//    (apt.conf(5)): a firefox-esr, thunderbird or libnss3 upgrade;
//  - update-ca-certificates runs every program in
//    /etc/ca-certificates/update.d after it rewrites the CA store
//    (update-ca-certificates(8)): a ca-certificates upgrade, or a local CA
//    added.
//
// Both run `ncfence refresh --hook`, which rebuilds the system installs
// whose view is no longer fresh and otherwise does nothing; they never fail
// the command that ran them. They exist while root has an install
// (the first install writes them, the last uninstall removes them), and
// only ever run the package's own command and interpreter, which install
// checked are root's alone (owner.ts).

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { EngineError } from '../engine/errors.js';
import { writeFileAtomic } from '../compile/build.js';
import { listRecords, systemRoot, under } from './registry.js';
import type { RebuildCommand } from './common.js';

export const APT_HOOK = '/etc/apt/apt.conf.d/80ncfence';
export const CA_HOOK = '/etc/ca-certificates/update.d/ncfence';
const MARK = 'Written by ncfence';

function quote(s: string): string {
  if (/['"\n\r\0]/.test(s)) throw new EngineError('USAGE', `${s}: a path with a quote or a line break cannot go into a hook`);
  return `'${s}'`;
}

function command(r: RebuildCommand, root: string, hook: string): string {
  return `${quote(r.node)} ${quote(r.cli)} refresh --hook ${hook}${root === '/' ? '' : ` --root ${quote(root)}`}`;
}

function aptHook(r: RebuildCommand, root: string): string {
  // apt.conf strings end at the next double quote; the command has none.
  return [
    `// ${MARK} (docs/install.md, "Updates"): after dpkg changes packages, rebuild`,
    '// the fenced views of what changed (a browser, libnss3, ca-certificates).',
    '// Removed by the last `ncfence uninstall`.',
    `DPkg::Post-Invoke { "if [ -x ${quote(r.node)} ] && [ -f ${quote(r.cli)} ]; then ${command(r, root, 'apt')} || true; fi"; };`,
    '',
  ].join('\n');
}

function caHook(r: RebuildCommand, root: string): string {
  return [
    '#!/bin/sh',
    `# ${MARK} (docs/install.md, "Updates"): update-ca-certificates runs this after it`,
    '# changes the CA store; rebuild the fenced views that read it. Removed by the',
    '# last `ncfence uninstall`.',
    `[ -x ${quote(r.node)} ] && [ -f ${quote(r.cli)} ] || exit 0`,
    `${command(r, root, 'ca-certificates')} || true`,
    '',
  ].join('\n');
}

/** A hook file is ncfence's when it says so; anything else at that name is someone else's and stays. */
function ours(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').includes(MARK);
  } catch {
    return false;
  }
}

/** Refuses, before an install changes anything, when a hook's name holds someone else's file. */
export function checkHooks(rootOption?: string): void {
  const root = systemRoot(rootOption);
  for (const name of [APT_HOOK, CA_HOOK]) {
    const path = under(root, name);
    if (existsSync(path) && !ours(path)) throw new EngineError('USAGE', `${path} exists and was not written by ncfence; move it away first`);
  }
}

/**
 * Writes (or updates) both hooks for root's installs under `root`. The CA
 * hook goes only where update-ca-certificates is installed (its update.d
 * directory exists). Refuses to replace a file that is not ncfence's.
 */
export function ensureHooks(r: RebuildCommand, rootOption?: string): void {
  const root = systemRoot(rootOption);
  for (const [name, text] of [
    [APT_HOOK, aptHook(r, root)],
    [CA_HOOK, caHook(r, root)],
  ] as const) {
    const path = under(root, name);
    if (!existsSync(dirname(path))) continue;
    if (existsSync(path) && !ours(path)) throw new EngineError('USAGE', `${path} exists and was not written by ncfence; move it away first`);
    if (existsSync(path) && readFileSync(path, 'utf8') === text) continue;
    writeFileAtomic(path, text, name === CA_HOOK ? 0o755 : 0o644);
  }
}

/** Removes both hooks once root has no install left under `root`. */
export function removeUnusedHooks(rootOption?: string): void {
  const root = systemRoot(rootOption);
  if (listRecords('system', root).length > 0) return;
  for (const name of [APT_HOOK, CA_HOOK]) {
    const path = under(root, name);
    if (ours(path)) rmSync(path);
  }
}
