// Firefox and Tor Browser: the module as `<install dir>/libnssckbi.so`, which
// Firefox loads as its built-in roots module (NOTES.md), with ncfence.conf
// and the view beside it.

import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { build, CONFIG_FILE, VIEW_FILE } from '../compile/build.js';
import { EngineError } from '../engine/errors.js';
import {
  SYSTEM_CKBI,
  P11KIT_TRUST,
  backUp,
  isDirectory,
  looksLikePkcs11Module,
  newManifest,
  placeModule,
  readManifest,
  removeIfPresent,
  removeModule,
  requireWritable,
  restore,
  writeManifest,
  type Backup,
  type Manifest,
} from './common.js';

export const MANIFEST_FILE = 'ncfence-install.json';
export const ORIGINAL_SUFFIX = '.ncfence-orig';

/** Install directories tried when --firefox-dir is not given, in order. */
export function firefoxCandidates(): string[] {
  const home = homedir();
  const tor = [join(home, 'tor-browser/Browser'), join(home, 'tor-browser_en-US/Browser'), join(home, '.local/share/torbrowser/tbb/x86_64/tor-browser/Browser')];
  return ['/usr/lib/firefox-esr', '/usr/lib/firefox', '/opt/firefox', '/usr/local/lib/firefox', ...tor];
}

export function isFirefoxDir(dir: string): boolean {
  return isDirectory(dir) && existsSync(join(dir, 'libxul.so'));
}

export function findFirefoxDir(): string {
  const found = firefoxCandidates().find(isFirefoxDir);
  if (!found) throw new EngineError('USAGE', `no Firefox or Tor Browser install found in ${firefoxCandidates().join(', ')}; name one with --firefox-dir DIR`);
  return found;
}

export interface InstallOptions {
  dir?: string;
  upstream?: string;
  upstreamParams?: string;
  policyFile?: string;
  /** Socket of the live .bit service, for Namecoin anchors. */
  service?: string;
  progress?: (msg: string) => void;
}

function defaultUpstream(backup: Backup | undefined): string {
  if (backup) return backup.savedAs; // wrap what Firefox loaded before
  if (existsSync(SYSTEM_CKBI)) return SYSTEM_CKBI;
  if (existsSync(P11KIT_TRUST)) return P11KIT_TRUST;
  throw new EngineError('USAGE', `no trust module to wrap: neither ${SYSTEM_CKBI} nor ${P11KIT_TRUST} exists; name one with --upstream PATH`);
}

export async function installFirefox(o: InstallOptions): Promise<Manifest> {
  const dir = o.dir ?? findFirefoxDir();
  if (!isFirefoxDir(dir)) throw new EngineError('USAGE', `${dir} does not look like a Firefox or Tor Browser install directory (it has no libxul.so)`);
  requireWritable(dir, 'the Firefox directory');
  const target = join(dir, 'libnssckbi.so');
  const manifestPath = join(dir, MANIFEST_FILE);
  const previous = readManifest(manifestPath);
  let backups: Backup[] = previous?.backups ?? [];
  const created = [target, join(dir, CONFIG_FILE), join(dir, VIEW_FILE), manifestPath];
  if (!previous && existsSync(target)) {
    if (!looksLikePkcs11Module(target)) {
      throw new EngineError('USAGE', `${target} exists and is not a PKCS#11 module; ncfence will not replace a file it does not recognise: move it away first`);
    }
    o.progress?.(`keeping the existing ${target} as ${target}${ORIGINAL_SUFFIX}`);
    backups = [backUp(target, `${target}${ORIGINAL_SUFFIX}`)];
  }
  const upstream = o.upstream ?? previous?.upstream ?? defaultUpstream(backups[0]);
  const upstreamParams = o.upstreamParams ?? previous?.upstreamParams ?? '';
  o.progress?.(`building the fenced view of ${upstream}`);
  const result = await build({ upstream, upstreamParams, outDir: dir, policyFile: o.policyFile, service: o.service });
  o.progress?.(`installing the module as ${target}`);
  placeModule(target);
  const manifest = newManifest('firefox', target, result, upstreamParams, {
    created: created.filter((f) => !backups.some((b) => b.path === f)),
    backups,
  });
  writeManifest(manifestPath, manifest);
  return manifest;
}

export function uninstallFirefox(dir: string): Manifest {
  const manifestPath = join(dir, MANIFEST_FILE);
  const m = readManifest(manifestPath);
  if (!m) throw new EngineError('USAGE', `ncfence is not installed in ${dir} (no ${MANIFEST_FILE})`);
  requireWritable(dir, 'the Firefox directory');
  removeModule(m);
  for (const b of m.backups) restore(b);
  for (const f of [m.config, m.view]) removeIfPresent(f);
  // Leftovers of an interrupted build (temp files) go too.
  for (const f of readdirSync(dir)) if (/\.(tmp-\d+|ncfence-tmp-\d+)$/.test(f)) removeIfPresent(join(dir, f));
  removeIfPresent(manifestPath);
  return m;
}
