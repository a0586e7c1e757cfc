// Hostile names under a fenced public root (issue 11, item 1): a public CA
// (the test PKI's intermediate, under a root the view fences) issues leaves
// for .bit names in every form a verifier reads. Three views of the same
// root, one per policy in rules/: default.json (browsers), p11-kit.json
// (the p11-kit target: also excludes the absolute name `bit.`, which OpenSSL
// needs; its NSS form is judged through p11-kit-proxy in
// test/fence/p11kit-proxy.test.ts) and nss.json (the nss target: also `bit.` and every IP address,
// because NSS's own verifiers skip the CN in the constraint check whenever
// the SAN holds an IP address, fall back to the CN for the host when the SAN
// holds no dNSName, and compare a trailing-dot name literally).
//
// Judges: tstclnt (NSS classic verifier and NSS's hostname check, through
// the real module), vfychain classic and libpkix (the chain alone), OpenSSL
// and GnuTLS over the fenced chain (L(R), R', intermediate), and headless
// Firefox through the module with the default policy.

import test from 'ava';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { makeNssDb, startOpensslServer, tstclnt, vfychain } from '../helpers/nss.js';
import { writeFencedChain } from '../helpers/pem.js';
import { run } from '../helpers/run.js';
import { MODULE, P11KIT_TRUST, ROOT } from '../helpers/paths.js';
import { cases, type NameCase } from '../helpers/hostileNames.js';

type PolicyName = 'default' | 'p11-kit' | 'nss';

let dir: string;
let pki: TestPki;
const views = new Map<PolicyName, { config: string; db: string; anchorFile: string; crossFile: string }>();
const leaves = new Map<string, { certFile: string; keyFile: string }>();

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-public-names-'));
  chmodSync(dir, 0o700);
  pki = await makeTestPki([]);
  for (const policy of ['default', 'p11-kit', 'nss'] as const) {
    const out = join(dir, policy);
    const r = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: out, policyFile: join(ROOT, 'rules', `${policy}.json`) });
    // The fenced chain from the view itself: L(R) (the anchor) and R' (issued by it).
    const { anchorFile, crossFile } = writeFencedChain(r.view, out);
    views.set(policy, { config: r.config, db: await makeNssDb(join(out, 'db'), 'ncfence', MODULE, '', { ...process.env, NCFENCE_CONFIG: r.config }), anchorFile, crossFile });
  }
  for (const [i, c] of cases.entries()) leaves.set(c.name, await pki.issueLeaf(`case${i}`, c.subject, c.ext));
});

test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const nssExpected = (c: NameCase, policy: PolicyName): boolean => (policy === 'default' ? (c.nssDefault ?? c.ok) : (c.nssPolicy ?? c.ok));

for (const c of cases) {
  for (const policy of ['default', 'nss'] as const) {
    test.serial(`public names, ${policy} policy, tstclnt (NSS hostname check): ${c.name}`, async (t) => {
      const leaf = leaves.get(c.name)!;
      const server = await startOpensslServer(leaf.certFile, leaf.keyFile, pki.interFile);
      try {
        const v = await tstclnt(server.port, c.host, { module: MODULE }, { ...process.env, NCFENCE_CONFIG: views.get(policy)!.config });
        t.is(v.ok, nssExpected(c, policy), v.output);
      } finally {
        server.stop();
      }
    });

    test.serial(`public names, ${policy} policy, vfychain classic and libpkix (the chain alone): ${c.name}`, async (t) => {
      const leaf = leaves.get(c.name)!;
      const v0 = views.get(policy)!;
      const expected = policy === 'nss' ? nssExpected(c, policy) : (c.chain ?? nssExpected(c, policy));
      for (const pkix of [false, true]) {
        const v = await vfychain(v0.db, leaf.certFile, pki.interFile, pkix, { ...process.env, NCFENCE_CONFIG: v0.config });
        t.is(v.ok, expected, `${pkix ? 'libpkix' : 'classic'}: ${v.output}`);
      }
    });
  }

  for (const policy of ['default', 'p11-kit', 'nss'] as const) test(`public names, ${policy} policy, OpenSSL and GnuTLS over the fenced chain: ${c.name}`, async (t) => {
    const leaf = leaves.get(c.name)!;
    const v = views.get(policy)!;
    const untrusted = join(dir, `untrusted-${policy}-${cases.indexOf(c)}.pem`);
    writeFileSync(untrusted, readFileSync(v.crossFile, 'utf8') + pki.interPem);
    const hostArgs = /^[\d.]+$/.test(c.host) ? ['-verify_ip', c.host] : ['-verify_hostname', c.host];
    const o = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', v.anchorFile, '-untrusted', untrusted, ...hostArgs, leaf.certFile], { timeoutMs: 30_000 });
    const ipCost = policy === 'nss' && c.nssPolicy !== undefined ? c.nssPolicy : c.ok;
    t.is(o.code === 0, policy === 'default' ? (c.opensslDefault ?? c.ok) : ipCost, `openssl: ${o.stdout}${o.stderr}`);
    const chain = join(dir, `chain-${policy}-${cases.indexOf(c)}.pem`);
    writeFileSync(chain, readFileSync(leaf.certFile, 'utf8') + pki.interPem + readFileSync(v.crossFile, 'utf8'));
    const g = await run('certtool', ['--verify', '--load-ca-certificate', v.anchorFile, '--verify-hostname', c.host, '--verify-purpose', '1.3.6.1.5.5.7.3.1', '--infile', chain], { timeoutMs: 30_000 });
    t.is(g.code === 0, ipCost, `gnutls: ${g.stdout}${g.stderr}`);
  });
}

// Under rules/nss.json Firefox fails every chain, .com included: mozilla::pkix
// rejects the constraint `bit.` as malformed. That policy is for NSS's own
// verifiers only; browser targets read the default one.
for (const policy of ['default', 'nss'] as const) test.serial(`public names, ${policy} policy, headless Firefox through the module: ${policy === 'default' ? 'the fence holds in every form it can be pointed at' : 'every chain fails (never give a browser this policy)'}`, async (t) => {
  const { copyFirefoxInstall, probeUrls } = await import('../helpers/firefox.js');
  const { startTlsServer } = await import('../helpers/tlsServer.js');
  const picked = cases.filter((c) => !c.noFirefox && c.host === c.host.toLowerCase() && !/^[\d.]+$/.test(c.host));
  const firefox = await copyFirefoxInstall(join(dir, `firefox-${policy}`), MODULE);
  const servers = await Promise.all(
    picked.map((c) => {
      const leaf = leaves.get(c.name)!;
      return startTlsServer({ certChainPem: readFileSync(leaf.certFile, 'utf8') + pki.interPem, keyPem: readFileSync(leaf.keyFile, 'utf8') });
    }),
  );
  try {
    const urls = picked.map((c, i) => `https://${c.host}:${servers[i]!.port}/case${i}.js`);
    const r = await probeUrls({ firefox, urls, hosts: [...new Set(picked.map((c) => c.host))], timeoutMs: 60_000, env: { NCFENCE_CONFIG: views.get(policy)!.config } });
    for (const [i, c] of picked.entries()) t.is(r.results[urls[i]!], policy === 'default' && (c.firefox ?? c.ok) ? 'load' : 'error', `${c.name}\n${r.output.slice(-1500)}`);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
});
