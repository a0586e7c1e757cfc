// `ncfence install p11-kit --user`, run as an unprivileged uid (p11-kit
// ignores per-user module files for root): p11-kit lists ncfence instead of
// p11-kit-trust, p11tool sees the fenced view, and gnutls-cli taking its
// trust from p11-kit accepts the .com chain and refuses the .bit chain.
// Control: the plain upstream registered the same way accepts both.

import test from 'ava';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { startOpensslServer } from './helpers/nss.js';
import { DIST_CLI, P11KIT_TRUST, UPSTREAM_SHIM } from './helpers/paths.js';
import { requireTool, run } from './helpers/run.js';

const NOBODY = 65534;
let pki: TestPki;
let dir: string;
let home: string;

test.before(async () => {
  for (const tool of ['p11-kit', 'p11tool', 'gnutls-cli', 'setpriv']) await requireTool(tool);
  if (!existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm ci first`);
  pki = await makeTestPki(['www.example.com', 'www.example.bit']);
  await run('chmod', ['-R', 'a+rX', pki.dir]);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-p11kit-'));
  chmodSync(dir, 0o755);
  home = join(dir, 'home');
  mkdirSync(home);
  chownSync(home, NOBODY, NOBODY);
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a command as uid 65534 with HOME in the test directory. */
const asUser = (cmd: string, args: string[], extraEnv: Record<string, string> = {}, input = '') =>
  run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', `HOME=${home}`, ...Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`), cmd, ...args], {
    timeoutMs: 60_000,
    input,
    env: { ...process.env, NCFENCE_CONFIG: '' },
  });

async function gnutls(host: string, extraEnv: Record<string, string> = {}): Promise<{ ok: boolean; output: string }> {
  const leaf = pki.leaves.get(host)!;
  const server = await startOpensslServer(leaf.certFile, leaf.keyFile, pki.interFile);
  try {
    const r = await asUser('gnutls-cli', ['--x509cafile', 'pkcs11:', '--verify-hostname', host, '-p', String(server.port), '127.0.0.1'], extraEnv);
    const output = r.stdout + r.stderr;
    return { ok: r.code === 0 && /Status: The certificate is trusted/.test(output), output };
  } finally {
    server.stop();
  }
}

test.serial('install p11-kit --user: p11-kit consumers see the fenced view; uninstall undoes it', async (t) => {
  const inst = await asUser(process.execPath, [DIST_CLI, 'install', 'p11-kit', '--user', '--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`]);
  t.is(inst.code, 0, inst.stdout + inst.stderr);

  const modules = await asUser('p11-kit', ['list-modules']);
  t.regex(modules.stdout, /^ncfence: .*libncfence\.so$/m);
  t.notRegex(modules.stdout, /^p11-kit-trust:/m, 'p11-kit-trust is switched off for p11-kit consumers');

  const trusted = await asUser('p11tool', ['--list-all-trusted']);
  t.is(trusted.stdout.match(/Type: X\.509 Certificate/g)?.length, 2, "R' and L(R) are the only anchors");

  const com = await gnutls('www.example.com');
  t.true(com.ok, com.output);
  const bit = await gnutls('www.example.bit');
  t.false(bit.ok, bit.output);
  t.regex(bit.output, /The certificate chain violates the signer's constraints/);

  const un = await asUser(process.execPath, [DIST_CLI, 'uninstall', 'p11-kit', '--user']);
  t.is(un.code, 0, un.stdout + un.stderr);
  const after = await asUser('p11-kit', ['list-modules']);
  t.notRegex(after.stdout, /^ncfence:/m);
  t.false(existsSync(join(home, '.config/pkcs11/modules/ncfence.module')));
  t.false(existsSync(join(home, '.config/pkcs11/modules/p11-kit-trust.module')));
});

test.serial('control: the plain upstream registered for p11-kit consumers accepts both chains', async (t) => {
  // The shim passes paths= to p11-kit-trust, which GnuTLS initializes with no
  // parameters. p11-kit's own registration of p11-kit-trust is switched off as
  // the install does, or it would initialize the shared library first.
  const modules = join(home, '.config/pkcs11/modules');
  mkdirSync(modules, { recursive: true });
  writeFileSync(join(modules, 'control.module'), `module: ${UPSTREAM_SHIM}\ntrust-policy: yes\n`);
  writeFileSync(join(modules, 'p11-kit-trust.module'), 'enable-in: nothing-at-all\n');
  await run('chown', ['-R', `${NOBODY}:${NOBODY}`, join(home, '.config')]);
  const env = { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${pki.trustDir}` };
  try {
    t.true((await gnutls('www.example.com', env)).ok);
    const bit = await gnutls('www.example.bit', env);
    t.true(bit.ok, bit.output);
  } finally {
    rmSync(join(modules, 'control.module'));
    rmSync(join(modules, 'p11-kit-trust.module'));
  }
});

test('install p11-kit --user refuses to run as root, where p11-kit would ignore it', async (t) => {
  const r = await run(process.execPath, [DIST_CLI, 'install', 'p11-kit', '--user'], { timeoutMs: 60_000, env: { ...process.env, HOME: dir } });
  t.is(r.code, 2);
  t.regex(r.stderr, /p11-kit ignores per-user module files when the program runs as root/);
});
