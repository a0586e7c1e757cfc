// Hostile names under Namecoin CAs (issue 11, item 2). Whoever owns a
// Namecoin name makes its Domain CA and can issue any leaf under it. The CAs
// ncfence synthesizes (root, TLD CA, AIA parent) must keep such a leaf to the
// owner's own domain in every name form a verifier reads, above all NSS's
// hostname check, which falls back to the CN when the SAN holds no dNSName
// (lib/certdb/certdb.c CERT_VerifyCertName) while its constraint check skips
// the CN whenever the SAN holds an IP address (lib/certdb/genname.c
// CERT_GetConstrainedCertificateNames). The attacker here owns other.bit, with
// a Domain CA that carries no constraints at all, and aims at www.example.com
// and www.example.bit.
//
// Judges: tstclnt (NSS classic verifier with NSS's hostname check, through the
// real module and the live service), vfychain classic and libpkix (the chain
// alone), and OpenSSL and GnuTLS over the same synthesized chain.

import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { TARGET_POLICY } from '../../src/policy.js';
import { serve } from '../../src/namecoin/serve.js';
import { parseCertificate } from '../../src/engine/asn1/certificate.js';
import { CKA } from '../../src/pkcs11/constants.js';
import { makeNamecoinSite, type NamecoinSite } from '../helpers/namecoinPki.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { bitVerdict, makeNssDb, startOpensslServer, tstclnt, vfychain } from '../helpers/nss.js';
import { fromPem, toPem } from '../helpers/pem.js';
import { run } from '../helpers/run.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';

// A first visit may fail closed while the service's answer is on the way (the module waits for it only
// briefly: addon/live.c); a reload then finds it. The probe reloads a script that failed once, so an
// error here means refused twice.
const BIT_RELOAD_MS = 1500;

interface NameCase {
  name: string;
  /** Leaf subject, openssl's /A=b form. */
  subject: string;
  /** Leaf extension line (subjectAltName), openssl config syntax; '' for none. */
  ext: string;
  /** The host the client asks for. */
  host: string;
  ok: boolean;
  /** Whether the chain alone (no host) verifies, where that differs from ok. */
  chain?: boolean;
  /** Firefox's verdict where it knowingly differs from NSS's hostname check. */
  firefox?: boolean;
}

const cases: NameCase[] = [
  // Controls: the owner's own names work.
  { name: "the owner's host", subject: '/CN=www.other.bit', ext: 'subjectAltName=DNS:www.other.bit', host: 'www.other.bit', ok: true },
  { name: "the owner's apex", subject: '/CN=other.bit', ext: 'subjectAltName=DNS:other.bit', host: 'other.bit', ok: true },
  { name: "the owner's host in upper case", subject: '/CN=WWW.OTHER.BIT', ext: 'subjectAltName=DNS:WWW.OTHER.BIT', host: 'www.other.bit', ok: true },
  // Firefox matches a host against the SAN only, never the CN.
  { name: "the owner's host, no SAN (CN only)", subject: '/CN=www.other.bit', ext: '', host: 'www.other.bit', ok: true, firefox: false },
  // The hole: an IP-only SAN makes NSS skip the CN in its constraint check and use it for the host.
  { name: 'IPv4-only SAN, CN of a .com', subject: '/CN=www.example.com', ext: 'subjectAltName=IP:127.0.0.1', host: 'www.example.com', ok: false },
  { name: 'IPv4-only SAN, CN of another .bit', subject: '/CN=www.example.bit', ext: 'subjectAltName=IP:127.0.0.1', host: 'www.example.bit', ok: false },
  { name: 'IPv6-only SAN, CN of a .com', subject: '/CN=www.example.com', ext: 'subjectAltName=IP:::1', host: 'www.example.com', ok: false },
  { name: 'IPv4 and e-mail SAN, CN of a .com', subject: '/CN=www.example.com', ext: 'subjectAltName=IP:127.0.0.1,email:a@other.bit', host: 'www.example.com', ok: false },
  // An iPAddress of neither 4 nor 16 bytes: NSS counts it as an address but no address constraint matches it.
  { name: '5-byte iPAddress SAN, CN of a .com', subject: '/CN=www.example.com', ext: 'subjectAltName=DER:30078705010203040a', host: 'www.example.com', ok: false },
  { name: "IPv4 SAN beside the owner's own name (Namecoin vouches for no address)", subject: '/CN=www.other.bit', ext: 'subjectAltName=DNS:www.other.bit,IP:127.0.0.1', host: 'www.other.bit', ok: false },
  // Name forms that were closed already; they stay closed.
  { name: 'no SAN, CN of a .com', subject: '/CN=www.example.com', ext: '', host: 'www.example.com', ok: false },
  { name: 'e-mail-only SAN, CN of a .com', subject: '/CN=www.example.com', ext: 'subjectAltName=email:a@other.bit', host: 'www.example.com', ok: false },
  { name: 'URI-only SAN, CN of a .com', subject: '/CN=www.example.com', ext: 'subjectAltName=URI:https://www.other.bit/', host: 'www.example.com', ok: false },
  { name: 'SAN of a .com with a trailing dot', subject: '/CN=www.example.com.', ext: 'subjectAltName=DNS:www.example.com.', host: 'www.example.com.', ok: false },
  { name: 'SAN of another .bit in upper case', subject: '/CN=WWW.EXAMPLE.BIT', ext: 'subjectAltName=DNS:WWW.EXAMPLE.BIT', host: 'www.example.bit', ok: false },
  { name: 'wildcard over the whole TLD', subject: '/CN=*.bit', ext: 'subjectAltName=DNS:*.bit', host: 'example.bit', ok: false },
  { name: "the owner's .bit beside a .com", subject: '/CN=www.other.bit', ext: 'subjectAltName=DNS:www.other.bit,DNS:www.example.com', host: 'www.example.com', ok: false },
  { name: 'a suffix that is not a label', subject: '/CN=www.brother.bit', ext: 'subjectAltName=DNS:www.brother.bit', host: 'www.brother.bit', ok: false },
  { name: 'punycode of another .bit', subject: '/CN=xn--bcher-kva.bit', ext: 'subjectAltName=DNS:xn--bcher-kva.bit', host: 'xn--bcher-kva.bit', ok: false },
  { name: 'two CNs, no SAN: own name and a .com', subject: '/CN=www.other.bit/CN=www.example.com', ext: '', host: 'www.example.com', ok: false },
  // NSS reads the last CN for both checks: the chain is fine, the host is not.
  { name: 'two CNs, no SAN: a .com and own name', subject: '/CN=www.example.com/CN=www.other.bit', ext: '', host: 'www.example.com', ok: false, chain: true },
];

let dir: string;
let attacker: NamecoinSite;
let pki: TestPki;
let config: string;
let db: string;
let svc: Awaited<ReturnType<typeof serve>>;
/** The synthesized chain above the attacker's Domain CA: root, TLD CA, AIA parent (PEM files). */
let rootFile: string;
let upperFile: string;
const leaves = new Map<string, { certFile: string; keyFile: string }>();

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-nmc-names-'));
  chmodSync(dir, 0o700);
  attacker = await makeNamecoinSite('other.bit', 'www.other.bit', { domainCaConstraints: null });
  pki = await makeTestPki(['www.example.com']);
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { mode: 0o700 });
  const socket = join(runDir, 'service.sock');
  // Firefox reads this view: the browser targets' policy (build's own default for this upstream is p11-kit.json, which mozilla::pkix cannot read).
  config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out'), service: socket, policyFile: TARGET_POLICY.browser })).config;
  const rules = join(dir, 'rules.json');
  writeFileSync(rules, JSON.stringify({ schema: 1, domains: { 'other.bit': [[2, 1, 0, attacker.ownerSpkiB64]] } }));
  svc = await serve({ socket, rules });
  db = await makeNssDb(join(dir, 'db'), 'ncfence', MODULE, '', { ...process.env, NCFENCE_CONFIG: config });
  for (const [i, c] of cases.entries()) leaves.set(c.name, await attacker.issueLeaf(`case${i}`, c.subject, c.ext));
  // What the service answers for the names above the Domain CA, for the verifiers that take files.
  const valueOf = async (name: Uint8Array): Promise<Uint8Array> => {
    const a = await svc.lookup.answer(name);
    const v = a.objects[0]?.find(([type]) => type === CKA.VALUE)?.[1];
    if (!v) throw new Error(`the service has no certificate for ${Buffer.from(name).toString('hex')}`);
    return v;
  };
  const aia = await valueOf(parseCertificate(fromPem(readFileSync(attacker.domainCaFile, 'utf8'))).issuer);
  const tld = await valueOf(parseCertificate(aia).issuer);
  rootFile = join(dir, 'nmc-root.pem');
  writeFileSync(rootFile, toPem(await valueOf(svc.lookup.rootName())));
  upperFile = join(dir, 'nmc-upper.pem');
  writeFileSync(upperFile, readFileSync(attacker.domainCaFile, 'utf8') + toPem(aia) + toPem(tld));
});

test.after.always(async () => {
  await svc?.close();
  attacker?.cleanup();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ ...process.env, NCFENCE_CONFIG: config });

for (const c of cases) {
  test.serial(`namecoin names, tstclnt (NSS hostname check): ${c.name}`, async (t) => {
    const leaf = leaves.get(c.name)!;
    const server = await startOpensslServer(leaf.certFile, leaf.keyFile, attacker.domainCaFile);
    try {
      const v = await bitVerdict(() => tstclnt(server.port, c.host, { module: MODULE }, env()));
      t.is(v.ok, c.ok, v.output);
    } finally {
      server.stop();
    }
  });

  test.serial(`namecoin names, vfychain classic and libpkix (the chain alone): ${c.name}`, async (t) => {
    const leaf = leaves.get(c.name)!;
    for (const pkix of [false, true]) {
      const v = await bitVerdict(() => vfychain(db, leaf.certFile, attacker.domainCaFile, pkix, env()));
      t.is(v.ok, c.chain ?? c.ok, `${pkix ? 'libpkix' : 'classic'}: ${v.output}`);
    }
  });

  test(`namecoin names, OpenSSL and GnuTLS over the synthesized chain: ${c.name}`, async (t) => {
    const leaf = leaves.get(c.name)!;
    const o = await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', rootFile, '-untrusted', upperFile, '-verify_hostname', c.host, leaf.certFile], { timeoutMs: 30_000 });
    t.is(o.code === 0, c.ok, `openssl: ${o.stdout}${o.stderr}`);
    const chain = join(dir, `chain-${cases.indexOf(c)}.pem`);
    writeFileSync(chain, readFileSync(leaf.certFile, 'utf8') + readFileSync(upperFile, 'utf8'));
    const g = await run('certtool', ['--verify', '--load-ca-certificate', rootFile, '--verify-hostname', c.host, '--verify-purpose', '1.3.6.1.5.5.7.3.1', '--infile', chain], { timeoutMs: 30_000 });
    t.is(g.code === 0, c.ok, `gnutls: ${g.stdout}${g.stderr}`);
  });
}

test.serial('namecoin names, headless Firefox: the owner\'s host loads, address-SAN impersonations do not', async (t) => {
  const { copyFirefoxInstall, probeUrls } = await import('../helpers/firefox.js');
  const { startTlsServer } = await import('../helpers/tlsServer.js');
  const picked = cases.filter((c) => c.ok || c.ext.includes('IP:') || c.ext.includes('DER:')).filter((c) => !c.host.endsWith('.') && c.host === c.host.toLowerCase());
  const firefox = await copyFirefoxInstall(join(dir, 'firefox'), MODULE);
  const servers = await Promise.all(
    picked.map((c) => {
      const leaf = leaves.get(c.name)!;
      return startTlsServer({ certChainPem: readFileSync(leaf.certFile, 'utf8') + readFileSync(attacker.domainCaFile, 'utf8'), keyPem: readFileSync(leaf.keyFile, 'utf8') });
    }),
  );
  try {
    const urls = picked.map((c, i) => `https://${c.host}:${servers[i]!.port}/case${i}.js`);
    const r = await probeUrls({ firefox, urls, hosts: [...new Set(picked.map((c) => c.host))], timeoutMs: 60_000, env: { NCFENCE_CONFIG: config }, retryAfterMs: BIT_RELOAD_MS });
    for (const [i, c] of picked.entries()) t.is(r.results[urls[i]!], c.firefox ?? c.ok ? 'load' : 'error', `${c.name}\n${r.output.slice(-1500)}`);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
});
