// The command line as a user meets it (issue 13): per-command help,
// --version, options a command does not take refused in one line with exit
// 2, a view that would fence nothing refused, no hang on special file
// systems, honest --root messages.

import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, P11KIT_TRUST, ROOT } from '../helpers/paths.js';
import { run } from '../helpers/run.js';

let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-cli-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], timeoutMs = 60_000) => run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeoutMs, env: { ...process.env, NCFENCE_CONFIG: '' } });

test('--version prints the package version', async (t) => {
  const r = await cli(['--version']);
  t.is(r.code, 0);
  t.is(r.stdout, `ncfence ${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
});

const helpCases: { command: string; has: RegExp[]; lacks: RegExp[] }[] = [
  { command: 'build', has: [/^Usage: ncfence build/, /--browser DIR/, /--allow-empty/, /--out DIR/], lacks: [/--dns/, /--user/] },
  { command: 'install', has: [/^Usage: ncfence install firefox\|thunderbird\|tor-browser\|nss\|p11-kit/, /install tor-browser/, /--dir DIR/, /--root DIR/], lacks: [/--socket/, /--out DIR/] },
  { command: 'serve', has: [/^Usage: ncfence serve/, /--rpc-password-file/, /--dns ADDRESS:PORT/], lacks: [/--upstream PATH/, /--dir DIR/] },
  { command: 'doctor', has: [/^Usage: ncfence doctor/, /--no-firefox/], lacks: [/--policy/] },
];
for (const c of helpCases) {
  test(`${c.command} --help shows that command's options only`, async (t) => {
    const r = await cli([c.command, '--help']);
    t.is(r.code, 0, r.stderr);
    for (const re of c.has) t.regex(r.stdout, new RegExp(re.source, 'm'));
    for (const re of c.lacks) t.notRegex(r.stdout, re);
  });
}

const refusals: { name: string; args: string[]; message: RegExp }[] = [
  { name: 'an option of another command', args: ['install', 'firefox', '--dns', '127.0.0.1:53'], message: /^ncfence: install firefox does not take --dns \(try: ncfence install --help\)$/ },
  { name: 'an option of another install target', args: ['install', 'nss', '--dir', '/tmp'], message: /^ncfence: install nss does not take --dir \(it is for firefox, thunderbird, tor-browser\)$/ },
  { name: 'auto-rebuild for p11-kit', args: ['install', 'p11-kit', '--auto-rebuild'], message: /install p11-kit does not take --auto-rebuild/ },
  { name: 'a serve option given to status', args: ['status', '--rules', 'x.json'], message: /^ncfence: status does not take --rules/ },
  { name: 'an unknown option', args: ['build', '--frobnicate'], message: /^ncfence: --frobnicate is not an option of ncfence \(try: ncfence build --help\)$/ },
  { name: 'an unknown command', args: ['frobnicate'], message: /unknown command "frobnicate"/ },
  { name: 'a --root that does not exist', args: ['install', 'nss', '--root', '/nonexistent-ncfence-root'], message: /--root \/nonexistent-ncfence-root is not a directory/ },
];
for (const c of refusals) {
  test(`refused with exit 2 and one line: ${c.name}`, async (t) => {
    const r = await cli(c.args);
    t.is(r.code, 2, r.stdout + r.stderr);
    t.regex(r.stderr.trim(), c.message);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
}

test('a build that would fence no root fails and writes nothing, unless --allow-empty', async (t) => {
  const out = join(dir, 'empty');
  const args = ['build', '--upstream', P11KIT_TRUST, '--upstream-params', `paths=${join(dir, 'no-such-trust-dir')}`, '--out', out];
  const r = await cli(args);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stderr, /gave 0 roots to fence .*the view would trust no public root\. Check the upstream and its paths=; pass --allow-empty if that is what you want\. Nothing was written/);
  t.false(existsSync(join(out, 'view.ncfv')));
  const allowed = await cli([...args, '--allow-empty']);
  t.is(allowed.code, 0, allowed.stderr);
  t.true(existsSync(join(out, 'view.ncfv')));
});

test('build --out under /proc fails at once instead of spinning', async (t) => {
  const started = Date.now();
  const r = await cli(['build', '--out', '/proc/ncfence-x/y'], 30_000);
  t.false(r.timedOut, 'build --out /proc/... did not return');
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /cannot create directory \/proc\/ncfence-x/);
  t.log(`returned in ${Date.now() - started} ms`);
});

test('build --service "" removes the service line a plain rebuild keeps (what doctor\'s fix and docs/namecoin.md say)', async (t) => {
  const out = join(dir, 'service-line');
  const args = ['build', '--upstream', P11KIT_TRUST, '--upstream-params', `paths=${join(dir, 'no-such-trust-dir')}`, '--allow-empty', '--out', out];
  const conf = (): string => readFileSync(join(out, 'ncfence.conf'), 'utf8');
  t.is((await cli([...args, '--service', join(dir, 'svc.sock')])).code, 0);
  t.regex(conf(), /^service = .*svc\.sock$/m);
  t.is((await cli(args)).code, 0);
  t.regex(conf(), /^service = .*svc\.sock$/m, 'a rebuild without --service keeps the line');
  const r = await cli([...args, '--service', '']);
  t.is(r.code, 0, r.stderr);
  t.notRegex(conf(), /^service\b/m);
});

test('serve listens where its --help says: $XDG_RUNTIME_DIR/ncfence/service.sock, else ~/.cache/ncfence/service.sock', async (t) => {
  const help = (await cli(['serve', '--help'])).stdout.replace(/\s+/g, ' ');
  t.regex(help, /\(default \$XDG_RUNTIME_DIR\/ncfence\/service\.sock, or ~\/\.cache\/ncfence\/service\.sock when XDG_RUNTIME_DIR is not set\)/);
  const rules = join(dir, 'pins.json');
  writeFileSync(rules, JSON.stringify({ schema: 1, domains: {} }));
  for (const runtime of [join(dir, 'runtime'), undefined]) {
    const home = join(dir, `home-${runtime ? 'xdg' : 'plain'}`);
    mkdirSync(home, { recursive: true });
    if (runtime) mkdirSync(runtime, { recursive: true, mode: 0o700 });
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, NCFENCE_CONFIG: '' };
    delete env.XDG_RUNTIME_DIR;
    if (runtime) env.XDG_RUNTIME_DIR = runtime;
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--rules', rules], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const deadline = Date.now() + 30_000;
      while (!/serving \.bit anchors on/.test(err) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const expected = runtime ? join(runtime, 'ncfence', 'service.sock') : join(home, '.cache', 'ncfence', 'service.sock');
      t.regex(err, new RegExp(`serving \\.bit anchors on ${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
      t.true(existsSync(expected));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  }
});
