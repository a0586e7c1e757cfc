// Install records of the first rounds lived beside what they changed (a
// browser directory's ncfence-install.json, /var/lib/ncfence/nss/install.json,
// the p11-kit module directory's install.json). They are moved into the
// registry (registry.ts) the first time a command looks, by the user who
// made them: root takes only records in places only root can write, a user
// only their own files.

import { existsSync, lstatSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BROWSER_TARGETS, browserCandidates, resolveBrowserDir } from '../browser/layout.js';
import { EngineError } from '../engine/errors.js';
import type { Manifest } from './common.js';
import { isRoot, requireOwnedByRoot } from './owner.js';
import { findRecord, ownScope, saveRecord, under } from './registry.js';

const LEGACY_BROWSER_FILE = 'ncfence-install.json';

function mayAdopt(file: string, dir: string): boolean {
  const st = lstatSync(file);
  if (!st.isFile() || st.uid !== process.geteuid?.()) return false;
  if (!isRoot()) return true;
  try {
    requireOwnedByRoot(dir, 'the directory of an old install record');
    return true;
  } catch (e) {
    if (e instanceof EngineError) return false;
    throw e;
  }
}

/** A record of the first rounds (version 1): the same fields but where the install is and whose it is. */
function readLegacyManifest(path: string): Omit<Manifest, 'location' | 'scope'> | undefined {
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
    return m.version === 1 ? m : undefined;
  } catch {
    return undefined;
  }
}

function adopt(file: string, dir: string, location: string, root: string): void {
  if (!existsSync(file) || !mayAdopt(file, dir)) return;
  const old = readLegacyManifest(file);
  if (!old) return;
  const m: Manifest = { ...old, version: 2, location, scope: ownScope() };
  if (!findRecord(m.scope, root, m.target, location)) saveRecord(m, root);
  rmSync(file);
}

/** Moves every old record this user made, in the places installs used, into the registry. */
export function adoptLegacy(root: string, extraDirs: string[] = []): void {
  const dirs = new Set([...extraDirs.map((d) => resolveBrowserDir(d) ?? d), ...BROWSER_TARGETS.flatMap(browserCandidates)]);
  for (const d of dirs) adopt(join(d, LEGACY_BROWSER_FILE), d, d, root);
  if (isRoot()) {
    adopt(under(root, '/var/lib/ncfence/nss/install.json'), under(root, '/var/lib/ncfence/nss'), root, root);
    adopt(under(root, '/usr/local/lib/ncfence/install.json'), under(root, '/usr/local/lib/ncfence'), under(root, '/usr/local/lib/ncfence'), root);
  } else {
    const lib = join(homedir(), '.local/lib/ncfence');
    adopt(join(lib, 'install.json'), lib, lib, root);
  }
}
