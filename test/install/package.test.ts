// The package as a user gets it (issue 13): `npm pack`, then `npm install -g`
// of the tarball into a temporary prefix (dependencies from the npm registry,
// the module and the probe built by the install script), and that prefix's
// `ncfence` installs into a copy of Firefox. Then the package's own files
// change, as an upgrade or a deleted clone would change them, and the install
// stays fresh: it owns a copy of what it depends on.

import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyFirefoxInstall } from '../helpers/firefox.js';
import { ROOT } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

let dir: string;
test.before(async () => {
  await requireTool('npm');
  dir = mkdtempSync(join(tmpdir(), 'ncfence-package-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.serial('npm pack, npm install -g of the tarball, and its ncfence installs into Firefox; changing the package leaves the install fresh', async (t) => {
  // --ignore-scripts: dist/ is already built (npm ci ran prepare), and
  // rebuilding it here would pull it from under tests running beside this one.
  const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, timeoutMs: 120_000 });
  t.is(pack.code, 0, pack.stderr);
  const tarball = join(dir, pack.stdout.trim().split('\n').pop()!);
  t.true(existsSync(tarball), pack.stdout);
  const prefix = join(dir, 'prefix');
  const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tarball], { timeoutMs: 600_000 });
  t.is(inst.code, 0, inst.stdout + inst.stderr);
  const ncfence = join(prefix, 'bin', 'ncfence');
  const pkg = join(prefix, 'lib', 'node_modules', 'ncfence');
  for (const f of ['build/Release/libncfence.so', 'build/Release/libncfence-probe.so', 'dist/cli/main.js', 'rules/nss.json']) t.true(existsSync(join(pkg, f)), f);

  const ff = join(dir, 'firefox');
  await copyFirefoxInstall(ff);
  const env = { ...process.env, NCFENCE_CONFIG: '', PATH: `${join(prefix, 'bin')}:${process.env.PATH}` };
  const installed = await run(ncfence, ['install', 'firefox', '--dir', ff], { env, timeoutMs: 120_000 });
  t.is(installed.code, 0, installed.stderr);
  t.regex(installed.stdout, /checked: +all \d+ roots Firefox trusts on its own are fenced/);

  // What an upgrade or a git pull does to the package: its rules change.
  for (const f of ['default.json', 'nss.json', 'p11-kit.json']) {
    const p = join(pkg, 'rules', f);
    writeFileSync(p, readFileSync(p, 'utf8').replace('"schema": 1', '"schema": 1 '));
  }
  const st = await run(ncfence, ['status', '--json', '--dir', ff], { env, timeoutMs: 60_000 });
  t.is(st.code, 0, st.stderr);
  const row = (JSON.parse(st.stdout) as { location: string; viewState: string; upgrade: string[] }[]).find((r) => r.location === ff);
  t.is(row?.viewState, 'fresh');
  // The newer package is offered, not applied.
  t.deepEqual(row?.upgrade, ['a newer policy']);
  const text = await run(ncfence, ['status', '--dir', ff], { env, timeoutMs: 60_000 });
  t.regex(text.stdout, /firefox at .*: this ncfence has a newer policy; the install keeps its own until you run it again/);
  const un = await run(ncfence, ['uninstall', 'firefox', '--dir', ff], { env, timeoutMs: 60_000 });
  t.is(un.code, 0, un.stderr);
});
