// p11-kit consumers (GnuTLS and others that take trust from p11-kit): the
// module registered by a module file with `trust-policy: yes`, wrapping
// p11-kit-trust, and p11-kit-trust itself switched off for p11-kit consumers
// by a module file of the same name, so they see only the fenced view.
// --user uses ~/.config/pkcs11/modules (p11-kit ignores it for root).

import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic, makeDirs } from '../compile/build.js';
import { EngineError } from '../engine/errors.js';
import { TARGET_POLICY } from '../policy.js';
import { P11KIT_TRUST, backUp, buildForInstall, copyPolicy, newManifest, packageRebuild, placeModule, removeEmptyDirs, removeIfPresent, removeModule, restore, type Manifest } from './common.js';
import { isRoot, requireOwnedByRoot } from './owner.js';
import { adoptLegacy } from './legacy.js';
import { findRecord, forgetRecord, ownScope, saveRecord, systemRoot, under } from './registry.js';
import { checkHooks, ensureHooks, removeUnusedHooks } from './hooks.js';
import type { InstallRequest } from './targets.js';

export interface P11KitPaths {
  moduleDir: string; // where p11-kit reads module files
  libDir: string; // where the module, its configuration and view go
}

export function p11kitPaths(user: boolean, root = '/'): P11KitPaths {
  return user
    ? { moduleDir: join(homedir(), '.config/pkcs11/modules'), libDir: join(homedir(), '.local/lib/ncfence') }
    : { moduleDir: under(root, '/etc/pkcs11/modules'), libDir: under(root, '/usr/local/lib/ncfence') };
}

// p11-kit-trust is loaded nowhere but in p11-kit's own `trust` tool (and a
// program name no program has). `trust extract` writes every CKA_TRUSTED
// certificate as an anchor of stores that cannot carry a constraint (Java's
// cacerts: Java ignores a trust anchor's NameConstraints), so it must never
// see R': it reads p11-kit-trust directly, as before ncfence, and
// ncfence.module is disabled in it (docs/security-model.md).
const DISABLE_TRUST = '# written by ncfence: p11-kit-trust is wrapped by ncfence.module, except for trust extract\nenable-in: ncfence-wraps-p11-kit-trust, trust\n';
const MODULE_FILE = (modulePath: string): string => `# written by ncfence\nmodule: ${modulePath}\ntrust-policy: yes\ndisable-in: trust\n`;

export async function installP11Kit(o: InstallRequest): Promise<Manifest> {
  const root = systemRoot(o.root);
  const { moduleDir, libDir } = p11kitPaths(o.user, root);
  if (!o.user && process.getuid?.() !== 0) throw new EngineError('USAGE', 'a system-wide p11-kit install needs root; use --user for this user only');
  if (o.user && process.getuid?.() === 0) throw new EngineError('USAGE', 'p11-kit ignores per-user module files when the program runs as root; install without --user, or as the user');
  const rebuild = packageRebuild();
  if (isRoot()) checkHooks(o.root);
  makeDirs(moduleDir);
  makeDirs(libDir);
  requireOwnedByRoot(moduleDir, 'the p11-kit module directory');
  requireOwnedByRoot(libDir, 'the library directory');
  adoptLegacy(root);
  const previous = findRecord(ownScope(), root, 'p11-kit', libDir);
  const moduleFile = join(moduleDir, 'ncfence.module');
  const trustFile = join(moduleDir, 'p11-kit-trust.module');
  const backups = previous?.backups ?? [moduleFile, trustFile].filter((f) => existsSync(f)).map((f) => backUp(f, `${f}.ncfence-orig`));
  const upstream = o.upstream ?? previous?.upstream ?? P11KIT_TRUST;
  const upstreamParams = o.upstreamParams ?? previous?.upstreamParams ?? '';
  o.progress?.(`building the fenced view of ${upstream}`);
  const policyFile = copyPolicy(o.policyFile ?? TARGET_POLICY['p11-kit'], join(libDir, 'policy.json'));
  const result = await buildForInstall(o, rebuild, {
    upstream,
    upstreamParams,
    outDir: libDir,
    policyFile,
    fix: o.user ? 'ncfence install p11-kit --user' : 'sudo ncfence install p11-kit',
  });
  const modulePath = join(libDir, 'libncfence.so');
  placeModule(modulePath);
  o.progress?.(`registering ${moduleFile}`);
  writeFileAtomic(moduleFile, MODULE_FILE(modulePath));
  writeFileAtomic(trustFile, DISABLE_TRUST);
  const manifest = newManifest('p11-kit', libDir, modulePath, result, upstreamParams, {
    created: [modulePath, result.config, result.view, policyFile, moduleFile, trustFile],
    backups,
    rebuild,
    policySource: o.policyFile === undefined ? 'package' : 'given',
  });
  saveRecord(manifest, root);
  if (manifest.scope === 'system') ensureHooks(rebuild, o.root);
  return manifest;
}

export function uninstallP11Kit(user: boolean, rootOption?: string): Manifest {
  const root = systemRoot(rootOption);
  const { moduleDir, libDir } = p11kitPaths(user, root);
  adoptLegacy(root);
  const m = findRecord(ownScope(), root, 'p11-kit', libDir);
  if (!m) throw new EngineError('USAGE', `ncfence has no record of a p11-kit install ${user ? 'for this user' : 'system-wide'} (in ${libDir}); \`ncfence status\` lists the installs it knows`);
  requireOwnedByRoot(moduleDir, 'the p11-kit module directory');
  requireOwnedByRoot(libDir, 'the library directory');
  // Only what a p11-kit install places, where it places it.
  const files = [join(moduleDir, 'ncfence.module'), join(moduleDir, 'p11-kit-trust.module')];
  const strays = [
    ...[m.module.path, m.config, m.view].filter((f) => dirname(f) !== libDir),
    ...m.backups.filter((b) => !files.includes(b.path) || b.savedAs !== `${b.path}.ncfence-orig`).map((b) => b.savedAs),
  ];
  if (strays.length > 0) throw new EngineError('USAGE', `the p11-kit install record of ${libDir} names files a p11-kit install does not place (${strays.join(', ')}); not touching anything`);
  removeModule(m);
  for (const f of [join(moduleDir, 'ncfence.module'), join(moduleDir, 'p11-kit-trust.module'), m.config, m.view, join(libDir, 'policy.json')]) removeIfPresent(f);
  for (const b of m.backups) restore(b);
  forgetRecord(m, root);
  if (m.scope === 'system') removeUnusedHooks(rootOption);
  removeEmptyDirs([libDir]);
  return m;
}
