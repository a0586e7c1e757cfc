// System NSS, the Debian way: dpkg-divert moves the packaged libnssckbi.so
// aside (package upgrades then land there too) and the module takes its
// name, wrapping the diverted original. The configuration goes to
// /etc/ncfence/ncfence.conf, the system path the module reads.
// `root` is a filesystem root (default /): tests use a disposable one.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { makeDirs, VIEW_FILE } from '../compile/build.js';
import { EngineError } from '../engine/errors.js';
import { buildForInstall, copyPolicy, isDirectory, newManifest, packageRebuild, placeModule, removeEmptyDirs, removeIfPresent, removeModule, requireWritable, type InstallCommonOptions, type Manifest } from './common.js';
import { isRoot, requireOwnedByRoot } from './owner.js';
import { adoptLegacy } from './legacy.js';
import { findRecord, forgetRecord, saveRecord, systemRoot, under } from './registry.js';
import { checkHooks, ensureHooks, removeUnusedHooks } from './hooks.js';
import { TARGET_POLICY } from '../policy.js';

export const LIBDIR = '/usr/lib/x86_64-linux-gnu';
export const CKBI_NAME = `${LIBDIR}/libnssckbi.so`;
export const DIVERTED = `${LIBDIR}/libnssckbi.so.ncfence-orig`;
export const STATE_DIR = '/var/lib/ncfence/nss';
export const SYSTEM_CONFIG = '/etc/ncfence/ncfence.conf';


function dpkgDivert(root: string, action: '--add' | '--remove'): void {
  try {
    execFileSync('dpkg-divert', ['--root', root, '--local', '--rename', '--divert', DIVERTED, action, CKBI_NAME], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new EngineError('USAGE', `dpkg-divert ${action} failed: ${err.stderr?.toString().trim() || err.message}`, { cause: e });
  }
}

function divertedTo(root: string): string | undefined {
  try {
    const out = execFileSync('dpkg-divert', ['--root', root, '--truename', CKBI_NAME], { encoding: 'utf8' }).trim();
    return out === CKBI_NAME ? undefined : out;
  } catch {
    return undefined;
  }
}

function requireRoot(root: string): void {
  if (!isDirectory(root)) throw new EngineError('USAGE', `--root ${root} is not a directory (it names the file system root the install works under)`);
}

export async function installNss(o: InstallCommonOptions): Promise<Manifest> {
  const root = systemRoot(o.root);
  requireRoot(root);
  const lib = under(root, CKBI_NAME);
  requireOwnedByRoot(under(root, LIBDIR), 'the library directory');
  requireWritable(under(root, LIBDIR), 'the library directory');
  const rebuild = packageRebuild();
  if (isRoot()) checkHooks(root);
  adoptLegacy(root);
  const previous = findRecord('system', root, 'nss', root);
  const current = divertedTo(root);
  if (current && current !== DIVERTED) throw new EngineError('USAGE', `${CKBI_NAME} is already diverted to ${current} by someone else; ncfence will not stack on that`);
  if (!current) {
    if (!existsSync(lib)) throw new EngineError('USAGE', `${lib} does not exist: install libnss3 first`);
    o.progress?.(`diverting ${CKBI_NAME} to ${DIVERTED}`);
    dpkgDivert(root, '--add');
  }
  const upstream = o.upstream ?? previous?.upstream ?? under(root, DIVERTED);
  const upstreamParams = o.upstreamParams ?? previous?.upstreamParams ?? '';
  makeDirs(under(root, STATE_DIR));
  const policyFile = copyPolicy(o.policyFile ?? TARGET_POLICY.nss, join(under(root, STATE_DIR), 'policy.json'));
  o.progress?.(`building the fenced view of ${upstream}`);
  let result;
  try {
    result = await buildForInstall(o, rebuild, {
      upstream,
      upstreamParams,
      outDir: under(root, STATE_DIR),
      configFile: under(root, SYSTEM_CONFIG),
      policyFile,
      fix: `sudo ncfence install nss${root === '/' ? '' : ` --root ${root}`}`,
    });
  } catch (e) {
    if (!current) dpkgDivert(root, '--remove'); // undo: nothing half-installed
    if (!previous) removeIfPresent(policyFile);
    throw e;
  }
  o.progress?.(`installing the module as ${CKBI_NAME}`);
  placeModule(lib);
  const manifest = newManifest('nss', root, lib, result, upstreamParams, {
    created: [lib, result.config, result.view, policyFile],
    backups: [],
    diversion: { root, path: CKBI_NAME, divertTo: DIVERTED },
    rebuild,
    policySource: o.policyFile === undefined ? 'package' : 'given',
  });
  manifest.scope = 'system'; // the system's NSS, under whatever root
  saveRecord(manifest, root);
  ensureHooks(rebuild, root);
  return manifest;
}

export function uninstallNss(rootIn?: string): Manifest {
  const root = systemRoot(rootIn);
  requireRoot(root);
  adoptLegacy(root);
  const m = findRecord('system', root, 'nss', root);
  if (!m) throw new EngineError('USAGE', `ncfence has no record of an nss install under ${root}; \`ncfence status\` lists the installs it knows`);
  requireOwnedByRoot(under(root, LIBDIR), 'the library directory');
  // Only what an nss install places, where it places it.
  const expected = [under(root, CKBI_NAME), under(root, SYSTEM_CONFIG), join(under(root, STATE_DIR), VIEW_FILE)];
  if (m.module.path !== expected[0] || m.config !== expected[1] || m.view !== expected[2] || m.backups.length > 0) {
    throw new EngineError('USAGE', `the nss install record under ${root} names files an nss install does not place (${m.module.path}, ${m.config}, ${m.view}); not touching anything`);
  }
  removeModule(m);
  dpkgDivert(root, '--remove'); // moves the original back to its name
  for (const f of [m.config, m.view, join(under(root, STATE_DIR), 'policy.json'), join(under(root, STATE_DIR), 'install.json')]) removeIfPresent(f);
  forgetRecord(m, root);
  removeUnusedHooks(root);
  removeEmptyDirs([under(root, STATE_DIR), under(root, dirname(STATE_DIR)), under(root, dirname(SYSTEM_CONFIG))]);
  return m;
}
