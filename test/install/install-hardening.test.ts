// install and uninstall run as root against what another user controls
// (issue: "No way around the fence", item 4): a browser directory the user
// owns (a user-installed Tor Browser), one anyone may write, links planted
// where ncfence writes its temporary files, and an install record edited to
// point elsewhere. Root must refuse, change nothing and load nothing.

import test from 'ava';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/compile/build.js';
import { recordFile, systemRegistry, systemRoot } from '../../src/install/registry.js';
import { copyFirefoxInstall } from '../helpers/firefox.js';
import { CLI, DIST_CLI, P11KIT_TRUST, ROOT } from '../helpers/paths.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { requireTool, run } from '../helpers/run.js';
import { treeDigest } from '../helpers/tree.js';

let dir: string;
let pki: TestPki;
test.before(async () => {
  await requireTool('gcc');
  dir = mkdtempSync(join(tmpdir(), 'ncfence-harden-'));
  chmodSync(dir, 0o755);
  pki = await makeTestPki(['www.example.com']);
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeoutMs: 120_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
const upstream = (): string[] => ['--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`];

/** A library that passes for a PKCS#11 module and, when loaded, leaves a file behind: what a directory's owner could plant. */
async function plantedModule(path: string, markerFile: string): Promise<void> {
  const src = `${path}.c`;
  writeFileSync(src, `#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void planted(void) { int fd = open("${markerFile}", O_WRONLY | O_CREAT, 0644); if (fd >= 0) close(fd); }\nint C_GetFunctionList(void **p) { return 5; }\n`);
  const r = await run('gcc', ['-shared', '-fPIC', '-o', path, src], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  rmSync(src);
}

test.serial('root refuses a browser directory another user owns, and never loads the module planted there', async (t) => {
  const ff = join(dir, 'user-firefox');
  await copyFirefoxInstall(ff);
  const marker = join(dir, 'planted-module-ran');
  // The owner replaces the module file (a new inode: the copy's files are hard links to the system's).
  rmSync(join(ff, 'libnssckbi.so'), { force: true });
  await plantedModule(join(ff, 'libnssckbi.so'), marker);
  chownSync(ff, 65534, 65534); // the directory only: never the linked system files
  const before = treeDigest(ff);
  for (const args of [['install', 'firefox', '--dir', ff], ['install', 'firefox', '--dir', ff, ...upstream()], ['uninstall', 'firefox', '--dir', ff]]) {
    const r = await cli(args);
    t.is(r.code, 2, r.stdout + r.stderr);
    t.regex(r.stderr, /belongs to uid 65534; ncfence run as root will not act on what another user controls\. Run it as that directory's owner/);
  }
  t.false(existsSync(marker), 'root loaded the module the directory owner planted');
  t.deepEqual(treeDigest(ff), before);
});

test.serial('root refuses a browser directory anyone may write', async (t) => {
  const ff = join(dir, 'open-firefox');
  await copyFirefoxInstall(ff);
  chmodSync(ff, 0o777);
  const before = treeDigest(ff);
  const r = await cli(['install', 'firefox', '--dir', ff, ...upstream()]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /open-firefox is writable by group or others/);
  t.deepEqual(treeDigest(ff), before);
});

test.serial('a file or link planted at a temporary file name is not written through', (t) => {
  const d = join(dir, 'tmpnames');
  mkdirSync(d);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'keep me');
  const target = join(d, 'view.ncfv');
  symlinkSync(victim, `${target}.tmp-${process.pid}`);
  const e = t.throws(() => writeFileAtomic(target, 'new view'));
  t.regex(e?.message ?? '', /already exists \(left by a crash, or planted\)/);
  t.is(readFileSync(victim, 'utf8'), 'keep me');
  t.false(existsSync(target));
});

test.serial('uninstall refuses an install record that names files outside what install placed, touching nothing', async (t) => {
  const ff = join(dir, 'forged');
  await copyFirefoxInstall(ff);
  const inst = await cli(['install', 'firefox', '--dir', ff, ...upstream()]);
  t.is(inst.code, 0, inst.stderr);
  const victim = join(dir, 'elsewhere.conf');
  writeFileSync(victim, 'not ncfence');
  const record = recordFile(systemRegistry(systemRoot()), 'firefox', ff);
  const m = JSON.parse(readFileSync(record, 'utf8')) as { config: string; backups: { path: string; savedAs: string; sha256: string }[] };
  m.config = victim;
  writeFileSync(record, JSON.stringify(m));
  const before = treeDigest(ff);
  const r = await cli(['uninstall', 'firefox', '--dir', ff]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /the install record of .* names files that a firefox install there does not place \(.*elsewhere\.conf\); not touching anything/);
  t.is(readFileSync(victim, 'utf8'), 'not ncfence');
  t.deepEqual(treeDigest(ff), before);
});

// Second review (issue: "No way around the fence, second round", items 4-6
// and 8): root must not read a record from, load code from or start a
// program from anything another user can write.

test.serial('doctor and status run as root refuse a directory another user owns, and load nothing from it', async (t) => {
  const ff = join(dir, 'doctor-user-firefox');
  await copyFirefoxInstall(ff);
  const marker = join(dir, 'doctor-planted-ran');
  rmSync(join(ff, 'libnssckbi.so'), { force: true });
  await plantedModule(join(ff, 'libnssckbi.so'), marker);
  chownSync(ff, 65534, 65534);
  // An old-style record the owner wrote, naming the planted module.
  writeFileSync(join(ff, 'ncfence-install.json'), JSON.stringify({ version: 1, target: 'firefox', installedAt: '', module: { path: join(ff, 'libnssckbi.so'), sha256: '' }, config: join(ff, 'ncfence.conf'), view: join(ff, 'view.ncfv'), upstream: '', upstreamParams: '', created: [], backups: [], rootsFenced: 1 }));
  for (const args of [['doctor', '--dir', ff], ['status', '--dir', ff]]) {
    const r = await cli(args);
    t.is(r.code, 2, r.stdout + r.stderr);
    t.regex(r.stderr, /^ncfence: the directory .*doctor-user-firefox: .* belongs to uid 65534; ncfence run as root will not act on what another user controls/);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
  t.false(existsSync(marker), 'root loaded the module the directory owner planted');
  t.true(existsSync(join(ff, 'ncfence-install.json')), "root neither read nor moved the user's record");
});

test.serial('root refuses a root-owned directory holding a file another user owns (a tarball unpacked with its owners kept)', async (t) => {
  const ff = join(dir, 'tarball-firefox');
  await copyFirefoxInstall(ff);
  const lib = join(ff, 'dependentlibs.list');
  const text = readFileSync(lib);
  rmSync(lib); // a new inode: the copy's files are hard links to the system's
  writeFileSync(lib, text);
  chownSync(lib, 65534, 65534);
  const before = treeDigest(ff);
  for (const args of [['install', 'firefox', '--dir', ff], ['install', 'firefox', '--dir', ff, ...upstream()]]) {
    const r = await cli(args);
    t.is(r.code, 2, r.stdout + r.stderr);
    t.regex(r.stderr, /dependentlibs\.list belongs to uid 65534; ncfence run as root will not act on what another user controls/);
  }
  t.deepEqual(treeDigest(ff), before);
});

test.serial("root ignores $TMPDIR: the browser it starts runs from root's own temporary directory", async (t) => {
  const ff = join(dir, 'tmpdir-firefox');
  await copyFirefoxInstall(ff);
  const userTmp = join(dir, 'user-tmp');
  mkdirSync(userTmp);
  chownSync(userTmp, 65534, 65534);
  // The compiled command: tsx itself keeps a cache in $TMPDIR.
  const r = await run(process.execPath, [DIST_CLI, 'build', '--browser', ff, '--out', join(dir, 'tmpdir-out')], {
    timeoutMs: 120_000,
    env: { ...process.env, NCFENCE_CONFIG: '', TMPDIR: userTmp },
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readdirSync(userTmp), [], "root wrote into the user's temporary directory");
});

test.serial('root records no rebuild command another user could change: an interpreter or package someone else owns is refused', async (t) => {
  // A copy of the package whose top directory a user owns (its files stay root's hard links).
  const pkg = join(dir, 'user-package');
  mkdirSync(pkg);
  for (const f of ['dist', 'build', 'node_modules', 'rules', 'package.json']) await run('cp', ['-al', join(ROOT, f), join(pkg, f)]);
  chownSync(pkg, 65534, 65534);
  const r1 = await run(process.execPath, [join(pkg, 'dist/cli/main.js'), 'install', 'firefox', '--dir', join(dir, 'no-such'), ...upstream()], { timeoutMs: 60_000 });
  t.is(r1.code, 2, r1.stderr);
  // The browser directory check comes first; name a real one.
  const ff = join(dir, 'pkg-firefox');
  await copyFirefoxInstall(ff);
  const r2 = await run(process.execPath, [join(pkg, 'dist/cli/main.js'), 'install', 'firefox', '--dir', ff, ...upstream()], { timeoutMs: 60_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
  t.is(r2.code, 2, r2.stderr);
  t.regex(r2.stderr, /the ncfence package .*user-package: .*user-package belongs to uid 65534; ncfence run as root will not act on what another user controls/);
  // An interpreter a user owns.
  const node = join(dir, 'user-node');
  mkdirSync(node);
  copyFileSync(process.execPath, join(node, 'node'));
  chownSync(join(node, 'node'), 65534, 65534);
  const r3 = await run(join(node, 'node'), [DIST_CLI, 'install', 'firefox', '--dir', ff, ...upstream()], { timeoutMs: 60_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
  t.is(r3.code, 2, r3.stderr);
  t.regex(r3.stderr, /the Node\.js interpreter .*user-node\/node: .* belongs to uid 65534/);
  t.false(existsSync(join(ff, 'libnssckbi.so.ncfence-orig')));
});
