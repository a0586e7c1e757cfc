// `ncfence install p11-kit --user`, run as an unprivileged uid (p11-kit
// ignores per-user module files for root): p11-kit lists ncfence instead of
// p11-kit-trust, p11tool sees the fenced view, and gnutls-cli taking its
// trust from p11-kit accepts the .com chain and refuses the .bit chain.
// Control: the plain upstream registered the same way accepts both.

import test from 'ava';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { excludedNames } from '../../src/browser/compare.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { startOpensslServer } from '../helpers/nss.js';
import { DIST_CLI, P11KIT_TRUST, UPSTREAM_SHIM } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

const NOBODY = 65534;
let pki: TestPki;
let other: TestPki;
let dir: string;
let home: string;

test.before(async () => {
  for (const tool of ['p11-kit', 'p11tool', 'gnutls-cli', 'setpriv']) await requireTool(tool);
  if (!existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm ci first`);
  pki = await makeTestPki(['www.example.com', 'www.example.bit']);
  other = await makeTestPki(['www.example.com', 'www.example.bit'], '/O=ncfence tests/CN=A Root Added By An Update');
  await run('chmod', ['-R', 'a+rX', pki.dir]);
  await run('chmod', ['-R', 'a+rX', other.dir]);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-p11kit-'));
  chmodSync(dir, 0o755);
  home = join(dir, 'home');
  mkdirSync(home);
  chownSync(home, NOBODY, NOBODY);
});
test.after.always(() => {
  pki?.cleanup();
  other?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a command as uid 65534 with HOME in the test directory. */
const asUser = (cmd: string, args: string[], extraEnv: Record<string, string> = {}, input = '') =>
  run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', `HOME=${home}`, ...Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`), cmd, ...args], {
    timeoutMs: 60_000,
    input,
    env: { ...process.env, NCFENCE_CONFIG: '' },
  });

async function gnutls(host: string, extraEnv: Record<string, string> = {}, from: TestPki = pki): Promise<{ ok: boolean; output: string }> {
  const leaf = from.leaves.get(host)!;
  const server = await startOpensslServer(leaf.certFile, leaf.keyFile, from.interFile);
  try {
    const r = await asUser('gnutls-cli', ['--x509cafile', 'pkcs11:', '--verify-hostname', host, '-p', String(server.port), '127.0.0.1'], extraEnv);
    const output = r.stdout + r.stderr;
    return { ok: r.code === 0 && /Status: The certificate is trusted/.test(output), output };
  } finally {
    server.stop();
  }
}

const EXTRACT_FORMATS = ['pem-bundle', 'openssl-bundle', 'java-cacerts', 'x509-directory', 'pem-directory'] as const;

/** What `trust extract` writes in each format, as the set of certificates (DER, hex) in it. */
async function extractAll(tag: string): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const format of EXTRACT_FORMATS) {
    const dest = join(home, `extract-${tag}-${format}`);
    const r = await asUser('trust', ['extract', `--format=${format}`, '--filter=ca-anchors', '--purpose=server-auth', '--overwrite', dest]);
    if (r.code !== 0) throw new Error(`trust extract --format=${format}: ${r.stderr}`);
    let pem = '';
    if (format === 'java-cacerts') {
      // p11-kit writes the store with the password Java's cacerts has always had.
      const k = await run('keytool', ['-list', '-rfc', '-keystore', dest, '-storepass', 'changeit'], { timeoutMs: 60_000 });
      if (k.code !== 0) throw new Error(`keytool: ${k.stderr}`);
      pem = k.stdout;
    } else if (format.endsWith('-directory')) {
      for (const f of readdirSync(dest)) {
        const b = readFileSync(join(dest, f));
        pem += b.includes('-----BEGIN') ? b.toString() : `-----BEGIN CERTIFICATE-----\n${b.toString('base64')}\n-----END CERTIFICATE-----\n`;
      }
    } else {
      pem = readFileSync(dest, 'utf8');
    }
    // TRUSTED CERTIFICATE blocks (openssl-bundle) carry trust settings after the certificate: keep the certificate.
    const ders = [...pem.matchAll(/-----BEGIN (?:TRUSTED )?CERTIFICATE-----([\s\S]*?)-----END/g)].map((m) => {
      const b = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
      const len = b[1]! & 0x80 ? b.subarray(2, 2 + (b[1]! & 0x7f)).reduce((n, x) => n * 256 + x, 0) + 2 + (b[1]! & 0x7f) : b[1]! + 2;
      return b.subarray(0, len).toString('hex');
    });
    out.set(format, new Set(ders));
  }
  return out;
}

test.serial('install p11-kit --user: p11-kit consumers see the fenced view; uninstall undoes it', async (t) => {
  await requireTool('keytool');
  const extractedBefore = await extractAll('before');
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

  // The user's CA store changes (a root added): the user's next program
  // rebuilds the view in place, as the install's owner, with nobody running
  // ncfence (docs/install.md, "Updates"), and the new root is fenced too.
  const added = join(pki.trustDir, 'anchors', 'added-by-an-update.pem');
  copyFileSync(other.rootFile, added);
  try {
    const newCom = await gnutls('www.example.com', {}, other);
    t.true(newCom.ok, newCom.output);
    const newBit = await gnutls('www.example.bit', {}, other);
    t.regex(newBit.output, /The certificate chain violates the signer's constraints/);
    t.is((await asUser(process.execPath, [DIST_CLI, 'status'])).code, 0, 'fresh again for this user');
  } finally {
    rmSync(added);
  }

  // `trust extract` builds stores that cannot carry R''s constraint (Java
  // ignores a trust anchor's NameConstraints): it never sees ncfence, and
  // writes exactly what it wrote before, in every format (review, item 3).
  const extractedAfter = await extractAll('after');
  for (const format of EXTRACT_FORMATS) {
    const after = extractedAfter.get(format)!;
    t.true(after.size > 100, `${format}: ${after.size} anchors`);
    t.deepEqual([...after].sort(), [...extractedBefore.get(format)!].sort(), `${format} changed`);
    t.deepEqual([...after].filter((der) => excludedNames(Buffer.from(der, 'hex')).includes('bit')), [], `${format} holds a cross-certificate as an anchor`);
  }

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
