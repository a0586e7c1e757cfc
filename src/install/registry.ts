// Where installs are remembered: outside the directories they change, so a
// browser directory replaced by a fresh copy (a reinstall, an unpacked
// update, a restored backup) is reported as having lost its fence instead
// of being forgotten with it. Root's installs are recorded in a root-owned
// state directory, a user's in that user's own state directory (XDG Base
// Directory Specification: $XDG_STATE_HOME, default ~/.local/state).
// Forgetting an install is explicit: only `uninstall` removes a record.
//
//   system: <root>/var/lib/ncfence/installs/<target>-<id>.json   (root: 0755 dir, 0644 files)
//   user:   $XDG_STATE_HOME/ncfence/installs/<target>-<id>.json  (0700 dir, 0600 files)
//
// <root> is `/` unless a command names another filesystem root (--root, or
// $NCFENCE_SYSTEM_ROOT for packaging and tests).

import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EngineError } from '../engine/errors.js';
import { makeDirs, writeFileAtomic } from '../compile/build.js';
import { MANIFEST_VERSION, removeEmptyDirs, type Manifest, type Target } from './common.js';
import { isRoot, requireOwnedByRoot } from './owner.js';

export type Scope = Manifest['scope'];

/** The filesystem root system-wide installs work under: an option, $NCFENCE_SYSTEM_ROOT, or /. */
export function systemRoot(option?: string): string {
  const r = option ?? process.env.NCFENCE_SYSTEM_ROOT;
  return r === undefined || r === '' ? '/' : resolve(r);
}

/** A path under a filesystem root. */
export const under = (root: string, p: string): string => (root === '/' ? p : join(root, p));

export function systemRegistry(root: string): string {
  return under(root, '/var/lib/ncfence/installs');
}

/** Where this user's installs are recorded: root's are system-wide. */
export function ownScope(): Scope {
  return isRoot() ? 'system' : 'user';
}

export function registryFor(scope: Scope, root: string): string {
  if (scope === 'system') return systemRegistry(root);
  const state = process.env.XDG_STATE_HOME?.startsWith('/') ? process.env.XDG_STATE_HOME : join(homedir(), '.local/state');
  return join(state, 'ncfence/installs');
}

/** The record's file name: the target and a digest of where the install is. */
export function recordFile(registry: string, target: Target, location: string): string {
  return join(registry, `${target}-${createHash('sha256').update(location).digest('hex').slice(0, 16)}.json`);
}

function checkRegistry(registry: string, scope: Scope): void {
  if (scope === 'system') requireOwnedByRoot(registry, 'the install records directory');
  else {
    const st = lstatSync(registry);
    if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o022) !== 0) {
      throw new EngineError('USAGE', `the install records directory ${registry} is not this user's alone; check its owner and mode (it should be yours, 0700)`);
    }
  }
}

function parseRecord(file: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (cause) {
    throw new EngineError('USAGE', `install record ${file} is not valid JSON; remove it only after checking what it describes`, { cause });
  }
  if (m.version !== MANIFEST_VERSION) throw new EngineError('USAGE', `install record ${file} has version ${m.version}; this ncfence reads ${MANIFEST_VERSION}`);
  return m;
}

/** Every install recorded in a registry (none when it does not exist). */
export function listRecords(scope: Scope, root: string): Manifest[] {
  const registry = registryFor(scope, root);
  if (!existsSync(registry)) return [];
  // Root reads records only from where only root writes; a user reads the
  // system's (world-readable) and their own.
  if (scope === 'system' ? isRoot() : true) checkRegistry(registry, scope);
  return readdirSync(registry)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => parseRecord(join(registry, f)));
}

export function findRecord(scope: Scope, root: string, target: Target, location: string): Manifest | undefined {
  const file = recordFile(registryFor(scope, root), target, location);
  if (!existsSync(file)) return undefined;
  checkRegistry(registryFor(scope, root), scope);
  return parseRecord(file);
}

export function saveRecord(m: Manifest, root: string): string {
  const registry = registryFor(m.scope, root);
  makeDirs(registry, m.scope === 'system' ? 0o755 : 0o700);
  checkRegistry(registry, m.scope);
  const file = recordFile(registry, m.target, m.location);
  writeFileAtomic(file, `${JSON.stringify(m, null, 2)}\n`, m.scope === 'system' ? 0o644 : 0o600);
  return file;
}

/** Forgets an install; removes the registry directory when it is left empty. */
export function forgetRecord(m: Manifest, root: string): void {
  const registry = registryFor(m.scope, root);
  rmSync(recordFile(registry, m.target, m.location), { force: true });
  removeEmptyDirs([registry, dirname(registry)]);
}
