// Installs are remembered outside what they change (src/install/registry.ts):
// `status` lists every one and exits 1 when one is stale, closed, tampered
// with or gone; `doctor` names the fix; a browser directory replaced by a
// fresh copy is reported, not forgotten, until `uninstall` forgets it; and
// root's installs keep Debian's hooks (APT, update-ca-certificates) for as
// long as there is one, which refresh the views after an update.

import test from 'ava';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyFirefoxInstall } from '../helpers/firefox.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { CLI, DIST_CLI, P11KIT_TRUST, ROOT } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';
import { treeDigest } from '../helpers/tree.js';

let dir: string;
let pki: TestPki;
let other: TestPki;

test.before(async () => {
  for (const tool of ['firefox-esr', 'sh']) await requireTool(tool);
  if (!existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm ci (or npm run build) first`);
  [pki, other] = await Promise.all([makeTestPki(['www.example.com']), makeTestPki([], '/O=ncfence tests/CN=A Root Added By An Update')]);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-records-'));
  chmodSync(dir, 0o755);
});
test.after.always(() => {
  pki?.cleanup();
  other?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The CLI with its own system root (registry and hooks), as root. */
const cli = (sysroot: string, args: string[]) =>
  run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeoutMs: 120_000, env: { ...process.env, NCFENCE_CONFIG: '', NCFENCE_SYSTEM_ROOT: sysroot } });

function sysroot(name: string, debian = false): string {
  const r = join(dir, name);
  mkdirSync(r, { mode: 0o755 });
  if (debian) {
    mkdirSync(join(r, 'etc/apt/apt.conf.d'), { recursive: true });
    mkdirSync(join(r, 'etc/ca-certificates/update.d'), { recursive: true });
  }
  return r;
}

const upstream = (trust: string): string[] => ['--upstream', P11KIT_TRUST, '--upstream-params', `paths=${trust}`];

test.serial('a browser install is recorded outside its directory; a directory replaced by a fresh copy is reported until uninstall forgets it', async (t) => {
  const root = sysroot('replaced');
  const ff = join(dir, 'firefox');
  await copyFirefoxInstall(ff);
  const before = treeDigest(ff);
  const inst = await cli(root, ['install', 'firefox', '--dir', ff, ...upstream(pki.trustDir)]);
  t.is(inst.code, 0, inst.stderr);
  // Nothing in the directory but what the browser loads.
  t.deepEqual([...treeDigest(ff).keys()].filter((k) => !before.has(k)).sort(), ['libnssckbi.so', 'ncfence-policy.json', 'ncfence.conf', 'view.ncfv']);
  const registry = join(root, 'var/lib/ncfence/installs');
  const records = readdirSync(registry);
  t.is(records.length, 1);
  t.regex(records[0]!, /^firefox-[0-9a-f]{16}\.json$/);
  t.is(statSync(join(registry, records[0]!)).mode & 0o777, 0o644);
  t.is(statSync(registry).uid, 0);

  const ok = await cli(root, ['status']);
  t.is(ok.code, 0, ok.stdout + ok.stderr);
  t.regex(ok.stdout, new RegExp(`firefox +${ff} +ok`));

  // A reinstall of the browser, an unpacked update, a restored backup: a fresh copy.
  rmSync(ff, { recursive: true, force: true });
  await copyFirefoxInstall(ff);
  const gone = await cli(root, ['status']);
  t.is(gone.code, 1, gone.stdout);
  t.regex(gone.stdout, new RegExp(`firefox at ${ff}: ${ff}/libnssckbi\\.so is gone: the firefox there is not fenced`));
  const quiet = await cli(root, ['status', '--quiet']);
  t.is(quiet.code, 1);
  t.regex(quiet.stdout, /gone/);
  const doc = await cli(root, ['doctor', '--no-firefox']);
  t.is(doc.code, 1, doc.stdout);
  t.regex(doc.stdout, new RegExp(`FAIL module file: ${ff}/libnssckbi\\.so is gone.*\\n\\s+fix: \`sudo ncfence install firefox --dir ${ff}\` to fence it again, or \`sudo ncfence uninstall firefox --dir ${ff}\` if ncfence should forget it`));
  // Still remembered: only uninstall forgets.
  t.is(readdirSync(registry).length, 1);
  const un = await cli(root, ['uninstall', 'firefox', '--dir', ff]);
  t.is(un.code, 0, un.stderr);
  t.false(existsSync(registry), 'the empty registry goes with the last record');
  t.deepEqual(treeDigest(ff), before, 'forgetting touched nothing of the fresh copy');
  const none = await cli(root, ['status']);
  t.is(none.code, 0);
  t.regex(none.stdout, /not installed anywhere/);
  // Naming a directory ncfence knows nothing of is a mistake, said as one.
  const unknown = await cli(root, ['status', '--dir', join(dir, 'nonexistent')]);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^ncfence: ncfence has no record of an install in .*nonexistent; `ncfence status` without --dir lists the installs it knows\n$/);
});

test.serial('status exits 1 on a stale or tampered install, names it, and doctor gives the fix; 0 once fresh', async (t) => {
  const root = sysroot('states');
  const trust = join(dir, 'states-trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'anchors', 'root.pem'));
  const inst = await cli(root, ['install', 'p11-kit', '--root', root, ...upstream(trust)]);
  t.is(inst.code, 0, inst.stderr);
  t.is((await cli(root, ['status', '--root', root])).code, 0);

  copyFileSync(other.rootFile, join(trust, 'anchors', 'added.pem'));
  const stale = await cli(root, ['status', '--root', root, '--json']);
  t.is(stale.code, 1);
  const row = (JSON.parse(stale.stdout) as { state: string; viewState: string; detail: string }[])[0]!;
  t.like(row, { state: 'stale', viewState: 'stale' });
  t.regex(row.detail, /the next program to start rebuilds it/);
  const doc = await cli(root, ['doctor', '--root', root]);
  t.is(doc.code, 1);
  t.regex(doc.stdout, /FAIL view fresh: .*\n\s+fix: sudo ncfence refresh/);

  const refreshed = await cli(root, ['refresh', '--root', root]);
  t.is(refreshed.code, 0, refreshed.stderr);
  t.regex(refreshed.stdout, /p11-kit at .*: view rebuilt \(2 roots fenced\)/);
  t.is((await cli(root, ['status', '--root', root])).code, 0);

  const module = join(root, 'usr/local/lib/ncfence/libncfence.so');
  const saved = readFileSync(module);
  writeFileSync(module, Buffer.concat([saved, Buffer.from('x')]));
  const tampered = await cli(root, ['status', '--root', root]);
  t.is(tampered.code, 1);
  t.regex(tampered.stdout, /p11-kit +.* +tampered/);
  t.regex(tampered.stdout, /libncfence\.so is not the module ncfence installed/);
  writeFileSync(module, saved);
  t.is((await cli(root, ['uninstall', 'p11-kit', '--root', root])).code, 0);
});

test.serial("root's first install writes Debian's hooks, which refresh a stale view; the last uninstall removes them", async (t) => {
  const root = sysroot('hooks', true);
  const trust = join(dir, 'hooks-trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'anchors', 'root.pem'));
  const before = treeDigest(root);
  const inst = await cli(root, ['install', 'p11-kit', '--root', root, ...upstream(trust)]);
  t.is(inst.code, 0, inst.stderr);
  const apt = readFileSync(join(root, 'etc/apt/apt.conf.d/80ncfence'), 'utf8');
  const ca = join(root, 'etc/ca-certificates/update.d/ncfence');
  t.regex(apt, /^DPkg::Post-Invoke \{ "if \[ -x '.*node' \] && \[ -f '.*dist\/cli\/main\.js' \]; then '.*node' '.*dist\/cli\/main\.js' refresh --hook apt --root '.*hooks' \|\| true; fi"; \};$/m);
  t.is(statSync(ca).mode & 0o777, 0o755);

  // update-ca-certificates added a CA: the CA hook (as run-parts runs it) refreshes the view.
  copyFileSync(other.rootFile, join(trust, 'anchors', 'local-ca.pem'));
  t.is((await cli(root, ['status', '--root', root])).code, 1);
  const hook = await run(ca, [], { timeoutMs: 120_000, env: { PATH: '/usr/bin:/bin' } });
  t.is(hook.code, 0, hook.stderr);
  t.regex(hook.stdout, /p11-kit at .*: view rebuilt \(2 roots fenced\)/);
  t.is((await cli(root, ['status', '--root', root])).code, 0);

  // The APT hook's command, as apt runs it (sh -c), after another change.
  rmSync(join(trust, 'anchors', 'local-ca.pem'));
  const command = /DPkg::Post-Invoke \{ "(.*)"; \};/.exec(apt)![1]!;
  const aptRun = await run('sh', ['-c', command], { timeoutMs: 120_000, env: { PATH: '/usr/bin:/bin' } });
  t.is(aptRun.code, 0, aptRun.stderr);
  t.regex(aptRun.stdout, /view rebuilt \(1 roots fenced\)/);
  // Nothing stale: the hook is quiet.
  const idle = await run('sh', ['-c', command], { timeoutMs: 120_000, env: { PATH: '/usr/bin:/bin' } });
  t.is(idle.stdout + idle.stderr, '');

  t.is((await cli(root, ['uninstall', 'p11-kit', '--root', root])).code, 0);
  t.false(existsSync(join(root, 'etc/apt/apt.conf.d/80ncfence')));
  t.false(existsSync(ca));
  t.deepEqual(treeDigest(root), before, 'uninstall left the root as it found it');
});

test.serial("a hook file that is not ncfence's is never replaced", async (t) => {
  const root = sysroot('foreign-hook', true);
  writeFileSync(join(root, 'etc/apt/apt.conf.d/80ncfence'), '// someone else\n');
  const r = await cli(root, ['install', 'p11-kit', '--root', root, ...upstream(pki.trustDir)]);
  t.is(r.code, 2);
  t.regex(r.stderr, /80ncfence exists and was not written by ncfence; move it away first/);
  t.is(readFileSync(join(root, 'etc/apt/apt.conf.d/80ncfence'), 'utf8'), '// someone else\n');
});

test.serial("an update of ncfence itself: the package's install step puts its module over the old copy and rebuilds the views with its engine", async (t) => {
  const root = sysroot('package-update');
  // A copy of the package where npm would put it, root's; its files are
  // copies, so the "update" below changes only this copy.
  const pkg = join(dir, 'lib-node_modules-ncfence');
  mkdirSync(pkg);
  for (const f of ['dist', 'build', 'rules', 'scripts', 'package.json']) await run('cp', ['-a', join(ROOT, f), join(pkg, f)]);
  await run('cp', ['-al', join(ROOT, 'node_modules'), join(pkg, 'node_modules')]);
  const cliOf = (args: string[]) => run(process.execPath, [join(pkg, 'dist/cli/main.js'), ...args], { timeoutMs: 180_000, env: { ...process.env, NCFENCE_CONFIG: '', NCFENCE_SYSTEM_ROOT: root } });
  const inst = await cliOf(['install', 'p11-kit', '--root', root, ...upstream(pki.trustDir)]);
  t.is(inst.code, 0, inst.stderr);
  const module = join(root, 'usr/local/lib/ncfence/libncfence.so');
  const view = readFileSync(join(root, 'usr/local/lib/ncfence/view.ncfv'));
  t.is((await cliOf(['status'])).code, 0);

  // The update: a new module and a new engine land in the package's place.
  const newModule = Buffer.concat([readFileSync(join(pkg, 'build/Release/libncfence.so')), Buffer.from('\0next release\0')]);
  writeFileSync(join(pkg, 'build/Release/libncfence.so'), newModule);
  writeFileSync(join(pkg, 'dist/engine-id'), 'ncfence 9.9.9 next\n');
  t.is((await cliOf(['status'])).code, 1, 'the views are stale: another engine');
  // What npm runs after installing the package (package.json postinstall).
  const post = await run(process.execPath, [join(pkg, 'scripts/postinstall.mjs')], { timeoutMs: 180_000, env: { ...process.env, NCFENCE_SYSTEM_ROOT: root } });
  t.is(post.code, 0, post.stderr);
  t.regex(post.stdout, /p11-kit at .*: module replaced, view rebuilt \(1 roots fenced\)/);
  t.true(readFileSync(module).equals(newModule), "the package's new module is in place");
  t.false(readFileSync(join(root, 'usr/local/lib/ncfence/view.ncfv')).equals(view));
  const after = await cliOf(['status']);
  t.is(after.code, 0, after.stdout);
  t.is((await cliOf(['uninstall', 'p11-kit', '--root', root])).code, 0);
});
