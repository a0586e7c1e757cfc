// The p11-kit target read by NSS (issue 19, item 2). NSS programs take roots
// through p11-kit too: any NSS program can load p11-kit-proxy, which
// serves every module p11-kit registers, ncfence's included. NSS falls back
// to the CN for the host name when the SAN holds only an IP address, yet
// skips the CN in its constraint check then, so through p11-kit it took a
// public CA's "SAN IP:127.0.0.1, CN=www.example.bit" for www.example.bit
// unless R' excludes every IP address. GnuTLS and OpenSSL do not, and keep
// public CAs' IP-address certificates with an R' that does not.
//
// rules/p11-kit.json has two forms of R' (excludedForNss); the module
// serves the NSS form wherever NSS is or may be in the process, the plain
// form only where it knows NSS is absent (addon/host.c). Installed with
// `ncfence install p11-kit --user` as uid 65534 (p11-kit ignores user
// configuration for root), judged by the hostile-name corpus
// (test/helpers/hostileNames.ts) through: NSS loading p11-kit-proxy
// (tstclnt, and vfychain classic and libpkix over a database that loads
// it), GnuTLS through p11-kit (gnutls-cli), and OpenSSL over the R' p11-kit
// serves to a GnuTLS process (exported with p11tool).

import test from 'ava';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { startOpensslServer } from '../helpers/nss.js';
import { cases } from '../helpers/hostileNames.js';
import { buildForms } from '../helpers/native.js';
import { DIST_CLI, P11KIT_TRUST } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

const NOBODY = 65534;
const PROXY = '/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so';
let pki: TestPki;
let dir: string;
let home: string;
let db: string;
let anchorFile: string;
const leaves = new Map<string, { certFile: string; keyFile: string }>();
/** The certificates p11-kit serves to GnuTLS (p11tool), PEM, and to NSS (certutil through p11-kit-proxy). */
let gnutlsServed: string[] = [];
let nssServed: string[] = [];

/** Runs a command as uid 65534 with HOME in the test directory. */
const asUser = (cmd: string, args: string[], timeoutMs = 60_000) =>
  run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', `HOME=${home}`, cmd, ...args], { timeoutMs, env: { ...process.env, NCFENCE_CONFIG: '' } });

const pemBlocks = (text: string): string[] => [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)].map((m) => m[0]);

/** openssl's text for a certificate: subject, issuer and name constraints. */
async function describe(pem: string): Promise<string> {
  const f = join(dir, `describe-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(f, pem);
  const r = await run('openssl', ['x509', '-in', f, '-noout', '-subject', '-issuer', '-ext', 'nameConstraints'], { timeoutMs: 30_000 });
  return r.stdout;
}

test.before(async () => {
  for (const tool of ['p11-kit', 'p11tool', 'gnutls-cli', 'setpriv', 'tstclnt', 'vfychain', 'certutil', 'modutil']) await requireTool(tool);
  if (!existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm ci first`);
  if (!existsSync(PROXY)) throw new Error(`${PROXY} is missing: install p11-kit-modules`);
  pki = await makeTestPki([]);
  for (const [i, c] of cases.entries()) leaves.set(c.name, await pki.issueLeaf(`case${i}`, c.subject, c.ext));
  await run('chmod', ['-R', 'a+rX', pki.dir]);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-p11kit-proxy-'));
  chmodSync(dir, 0o755);
  home = join(dir, 'home');
  mkdirSync(home);
  chownSync(home, NOBODY, NOBODY);
  const inst = await asUser(process.execPath, [DIST_CLI, 'install', 'p11-kit', '--user', '--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`], 120_000);
  if (inst.code !== 0) throw new Error(`install p11-kit --user: ${inst.stdout}${inst.stderr}`);
  mkdirSync(join(home, 'nssdb'));
  chownSync(join(home, 'nssdb'), NOBODY, NOBODY);
  db = `sql:${join(home, 'nssdb')}`;
  for (const [cmd, args] of [
    ['certutil', ['-N', '--empty-password', '-d', db]],
    ['modutil', ['-dbdir', db, '-add', 'p11-kit-proxy', '-libfile', PROXY, '-force']],
  ] as const) {
    const r = await asUser(cmd, [...args]);
    if (r.code !== 0) throw new Error(`${cmd}: ${r.stdout}${r.stderr}`);
  }
  // What each kind of process is served.
  const urls = await asUser('p11tool', ['--list-all-trusted', '--only-urls']);
  for (const url of urls.stdout.split('\n').filter((l) => l.startsWith('pkcs11:'))) {
    const e = await asUser('p11tool', ['--export', url]);
    gnutlsServed.push(...pemBlocks(e.stdout));
  }
  const all = await asUser('certutil', ['-L', '-d', db, '-h', 'all']);
  const nicks = [...new Set(all.stdout.split('\n').map((l) => /^(\S.*?:Test Public Root CA)\s/.exec(l)?.[1]).filter((n): n is string => n !== undefined))];
  for (const n of nicks) nssServed.push(...pemBlocks((await asUser('certutil', ['-L', '-d', db, '-n', n, '-a'])).stdout));
  const described = await Promise.all(gnutlsServed.map(describe));
  const anchor = gnutlsServed[described.findIndex((d) => /subject=O = ncfence local anchor/.test(d))];
  if (!anchor) throw new Error(`p11tool lists no local anchor:\n${described.join('\n')}`);
  anchorFile = join(dir, 'anchor.pem');
  writeFileSync(anchorFile, anchor);
});

test.after.always(async () => {
  if (home) await asUser(process.execPath, [DIST_CLI, 'uninstall', 'p11-kit', '--user']);
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** R' as a process of that kind is served: the test root's subject, issued by its local anchor. */
async function crossForms(served: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const pem of served) {
    const d = await describe(pem);
    if (/subject=O = ncfence tests, CN = Test Public Root CA/.test(d) && /issuer=O = ncfence local anchor/.test(d)) out.push(d);
  }
  return out;
}

test('each kind of process is served exactly one R\', and NSS the one that excludes every IP address', async (t) => {
  const gnutls = await crossForms(gnutlsServed);
  t.is(gnutls.length, 1, gnutls.join('\n'));
  t.regex(gnutls[0]!, /DNS:bit\b/);
  t.regex(gnutls[0]!, /email:\.bit\b/);
  t.notRegex(gnutls[0]!, /IP:/, 'GnuTLS keeps IP-address certificates');
  const nss = await crossForms(nssServed);
  t.is(nss.length, 1, nss.join('\n'));
  t.regex(nss[0]!, /IP:0\.0\.0\.0\/0\.0\.0\.0/);
  t.regex(nss[0]!, /IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0/);
  t.regex(nss[0]!, /email:\.bit\b/);
});

for (const c of cases) {
  const nssOk = c.nssPolicy ?? c.ok;
  test(`NSS over p11-kit-proxy (tstclnt, vfychain classic and libpkix): ${c.name}: ${nssOk ? 'accepted' : 'refused'}`, async (t) => {
    const leaf = leaves.get(c.name)!;
    const server = await startOpensslServer(leaf.certFile, leaf.keyFile, pki.interFile);
    try {
      const r = await asUser('tstclnt', ['-D', '-R', PROXY, '-h', '127.0.0.1', '-p', String(server.port), '-a', c.host, '-Q']);
      const out = r.stdout + r.stderr;
      t.is(r.code === 0 && !/authentication of server cert failed/.test(out), nssOk, `tstclnt: ${out}`);
    } finally {
      server.stop();
    }
    for (const pkix of [false, true]) {
      const r = await asUser('vfychain', ['-d', db, ...(pkix ? ['-pp'] : []), '-u', '1', '-a', leaf.certFile, '-a', pki.interFile]);
      const out = r.stdout + r.stderr;
      t.is(r.code === 0 && out.includes('Chain is good!'), nssOk, `${pkix ? 'libpkix' : 'classic'}: ${out}`);
    }
  });

  test(`GnuTLS through p11-kit (gnutls-cli) and OpenSSL over what p11-kit serves it: ${c.name}: ${c.ok ? 'accepted' : 'refused'}`, async (t) => {
    const leaf = leaves.get(c.name)!;
    const server = await startOpensslServer(leaf.certFile, leaf.keyFile, pki.interFile);
    try {
      const r = await asUser('gnutls-cli', ['--x509cafile', 'pkcs11:', '--verify-hostname', c.host, '-p', String(server.port), '127.0.0.1']);
      const out = r.stdout + r.stderr;
      t.is(r.code === 0 && /Status: The certificate is trusted/.test(out), c.ok, `gnutls-cli: ${out}`);
    } finally {
      server.stop();
    }
    const cross = gnutlsServed.filter((p) => p !== readFileSync(anchorFile, 'utf8'));
    const untrusted = join(dir, `untrusted-${cases.indexOf(c)}.pem`);
    writeFileSync(untrusted, cross.join('') + pki.interPem);
    const hostArgs = /^[\d.]+$/.test(c.host) ? ['-verify_ip', c.host] : ['-verify_hostname', c.host];
    const o = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', anchorFile, '-untrusted', untrusted, ...hostArgs, leaf.certFile], { timeoutMs: 30_000 });
    t.is(o.code === 0, c.ok, `openssl: ${o.stdout}${o.stderr}`);
  });
}

// The choice follows the process, not the first caller: a GnuTLS process
// that loads NSS later sees the NSS form from then on, even after unloading
// it; a process with no known verifier gets the NSS form (fail closed).
test('the module switches to the NSS form when NSS is loaded, and never back', async (t) => {
  const forms = await buildForms(dir);
  const config = join(home, '.local/lib/ncfence/ncfence.conf');
  const module = join(home, '.local/lib/ncfence/libncfence.so');
  const r = await run(forms, [module, 'search', 'load:libgnutls.so.30', 'search', 'load:libnss3.so', 'search', 'unload', 'search'], { env: { ...process.env, NCFENCE_CONFIG: config }, timeoutMs: 30_000 });
  t.is(r.code, 0, r.stderr);
  const searches = r.stdout.trim().split('\n').map((l) => l.replace(/^search /, '').split(',').sort());
  t.is(searches.length, 4, r.stdout);
  for (const s of searches) t.is(s.length, 2, `L(R) and one R': ${s.join(' ')}`);
  const [unsure, gnutls, nss, after] = searches.map((s) => s.join());
  t.not(gnutls, unsure, 'GnuTLS alone gets the plain form');
  t.is(nss, unsure, 'with libnss3 loaded, the NSS form');
  t.is(after, unsure, 'and it stays after libnss3 is unloaded');
});
