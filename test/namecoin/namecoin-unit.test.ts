// Namecoin chain pieces on their own: reading requested names (hostile
// input from TLS peers), choosing keys from records (full and SHA-256 with
// a stapled key), and the synthesized chain judged by OpenSSL.

import test from 'ava';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oid, seq, set, tlv, Tag, utf8 } from '../../src/engine/asn1/der.js';
import { defaultEngineDeps } from '../../src/engine/crossSign.js';
import { createAuthority, parseAiaName, synthesizeAiaParents, vouchedKeys, NAMECOIN_SERIAL } from '../../src/namecoin/chain.js';
import type { TlsRecord } from '../../src/namecoin/records.js';
import { NamecoinLookup } from '../../src/namecoin/lookup.js';
import { makeNamecoinSite, type NamecoinSite } from '../helpers/namecoinPki.js';
import { fromPem, toPem } from '../helpers/pem.js';
import { run } from '../helpers/run.js';
import { readFileSync } from 'node:fs';

const spki = (): Uint8Array => new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' }));
const name = (cn: string, serial: string): Uint8Array =>
  seq(set(seq(oid('2.5.4.3'), utf8(cn))), set(seq(oid('2.5.4.5'), tlv(Tag.PRINTABLE_STRING, new TextEncoder().encode(serial)))));
const sha = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

const K1 = spki();
const K2 = spki();
// As ncgencert writes it (aiaparent.go): Go's json.Marshal of {"pubb64": base64 RawURLEncoding}.
const stapled = (k: Uint8Array): string => `${NAMECOIN_SERIAL}\n\nStapled: ${JSON.stringify({ pubb64: Buffer.from(k).toString('base64url') })}`;

const nameCases: { name: string; der: () => Uint8Array; domain?: string; stapled?: boolean; malformed?: RegExp }[] = [
  { name: 'plain AIA parent name', der: () => name('example.bit Domain AIA Parent CA', NAMECOIN_SERIAL), domain: 'example.bit' },
  { name: 'mixed case domain is lowered', der: () => name('Example.BIT Domain AIA Parent CA', NAMECOIN_SERIAL), domain: 'example.bit' },
  { name: 'stapled key', der: () => name('example.bit Domain AIA Parent CA', stapled(K1)), domain: 'example.bit', stapled: true },
  { name: 'not a .bit domain', der: () => name('example.com Domain AIA Parent CA', NAMECOIN_SERIAL) },
  { name: 'suffix that is not a label', der: () => name('exampleorbit Domain AIA Parent CA', NAMECOIN_SERIAL) },
  { name: 'no Namecoin serialNumber', der: () => name('example.bit Domain AIA Parent CA', 'something else') },
  { name: 'another Namecoin CA', der: () => name('.bit TLD CA', NAMECOIN_SERIAL) },
  { name: 'stapled garbage', der: () => name('example.bit Domain AIA Parent CA', `${NAMECOIN_SERIAL}\n\nStapled: {"pubb64":"AAAA"}`), domain: 'example.bit', malformed: /not a SubjectPublicKeyInfo/ },
  { name: 'stapled key in padded standard base64 (Go\'s RawURLEncoding refuses it)', der: () => name('example.bit Domain AIA Parent CA', `${NAMECOIN_SERIAL}\n\nStapled: {"pubb64":"${Buffer.from(K1).toString('base64')}"}`), domain: 'example.bit', malformed: /unpadded base64url/ },
  { name: 'serialNumber goes on with something else', der: () => name('example.bit Domain AIA Parent CA', `${NAMECOIN_SERIAL} and more`), domain: 'example.bit', malformed: /something other than/ },
  {
    name: 'two CNs',
    der: () => seq(set(seq(oid('2.5.4.3'), utf8('example.bit Domain AIA Parent CA'))), set(seq(oid('2.5.4.3'), utf8('other.bit Domain AIA Parent CA'))), set(seq(oid('2.5.4.5'), tlv(Tag.PRINTABLE_STRING, new TextEncoder().encode(NAMECOIN_SERIAL))))),
    domain: 'example.bit',
    malformed: /more than one CN/,
  },
  { name: 'not DER', der: () => Uint8Array.of(0x30, 0x80, 1, 2) },
];
for (const c of nameCases) {
  test(`parseAiaName: ${c.name}`, (t) => {
    const r = parseAiaName(c.der());
    t.is(r?.domain, c.domain);
    t.is(r?.stapledKey !== undefined, c.stapled === true);
    if (c.malformed) t.regex(r?.malformed ?? '', c.malformed);
    else t.is(r?.malformed, undefined);
  });
}

test('parseAiaName: seeded mutations of names never throw', (t) => {
  const base = name('example.bit Domain AIA Parent CA', stapled(K1));
  let seed = 12345;
  const rand = (k: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % k);
  for (let i = 0; i < 3000; i++) {
    const m = new Uint8Array(i % 5 === 0 ? randomBytes(rand(200)) : base);
    for (let k = 0; k < 1 + rand(4) && m.length; k++) m[rand(m.length)] = rand(256);
    t.notThrows(() => parseAiaName(i % 7 === 0 ? m.subarray(0, rand(m.length + 1)) : m));
  }
});

const rec = (matchingType: number, data: Uint8Array, usage = 2, selector = 1): TlsRecord => ({ usage, selector, matchingType, data });
const keyCases: { name: string; records: TlsRecord[]; stapledKey?: Uint8Array; want: Uint8Array[] }[] = [
  { name: 'full key record', records: [rec(0, K1)], want: [K1] },
  { name: 'two full keys', records: [rec(0, K1), rec(0, K2)], want: [K1, K2] },
  { name: 'SHA-256 record needs a stapled key', records: [rec(1, sha(K1))], want: [] },
  { name: 'SHA-256 record with the matching stapled key', records: [rec(1, sha(K1))], stapledKey: K1, want: [K1] },
  { name: 'SHA-256 record with another stapled key', records: [rec(1, sha(K1))], stapledKey: K2, want: [] },
  { name: 'stapled key must be vouched for', records: [rec(0, K2)], stapledKey: K1, want: [] },
  { name: 'usage other than DANE-TA ignored', records: [rec(0, K1, 3)], want: [] },
  { name: 'selector other than SPKI ignored', records: [rec(0, K1, 2, 0)], want: [] },
  { name: 'a full key that is not an SPKI ignored', records: [rec(0, Uint8Array.of(1, 2, 3))], want: [] },
];
for (const c of keyCases) {
  test(`vouchedKeys: ${c.name}`, (t) => {
    const got = vouchedKeys(c.records, { domain: 'example.bit', stapledKey: c.stapledKey });
    t.deepEqual(got.map((k) => Buffer.from(k).toString('hex')), c.want.map((k) => Buffer.from(k).toString('hex')));
  });
}

let site: NamecoinSite;
let dir: string;
test.before(async () => {
  site = await makeNamecoinSite('example.bit');
  dir = mkdtempSync(join(tmpdir(), 'ncfence-nmc-unit-'));
});
test.after.always(() => {
  site?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the synthesized chain verifies the site under the Namecoin root with OpenSSL, and only for its domain', async (t) => {
  const deps = await defaultEngineDeps();
  const auth = createAuthority(deps);
  const domainCa = fromPem(readFileSync(site.domainCaFile, 'utf8'));
  const { parseCertificate } = await import('../../src/engine/asn1/certificate.js');
  const requested = parseCertificate(domainCa).issuer; // what a verifier asks the module for
  const req = parseAiaName(requested)!;
  t.is(req.domain, 'example.bit');
  const [aia] = synthesizeAiaParents(auth, requested, req, [fromPem(readFileSync(join(site.dir, 'owner.pub.pem'), 'utf8'))], deps);
  writeFileSync(join(dir, 'root.pem'), toPem(auth.root.cert.der));
  writeFileSync(join(dir, 'untrusted.pem'), toPem(auth.tld.cert.der) + toPem(aia!.der) + readFileSync(site.domainCaFile, 'utf8'));
  const ok = await run('openssl', ['verify', '-no-CApath', '-no-CAstore', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'untrusted.pem'), '-purpose', 'sslserver', site.leafFile]);
  t.is(ok.code, 0, ok.stdout + ok.stderr);
  // The AIA parent is constrained to its domain: the same owner key cannot vouch for other.bit.
  const other = await makeNamecoinSite('other.bit');
  try {
    const otherReq = parseCertificate(fromPem(readFileSync(other.domainCaFile, 'utf8'))).issuer;
    const [wrong] = synthesizeAiaParents(auth, otherReq, { domain: 'example.bit' }, [fromPem(readFileSync(join(other.dir, 'owner.pub.pem'), 'utf8'))], deps);
    writeFileSync(join(dir, 'untrusted2.pem'), toPem(auth.tld.cert.der) + toPem(wrong!.der) + readFileSync(other.domainCaFile, 'utf8'));
    const bad = await run('openssl', ['verify', '-no-CApath', '-no-CAstore', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'untrusted2.pem'), '-purpose', 'sslserver', other.leafFile]);
    t.not(bad.code, 0);
    t.regex(bad.stdout + bad.stderr, /permitted subtree violation|name constraints/i);
  } finally {
    other.cleanup();
  }
});

test('the service answers: root with its trust record, TLD CA, AIA parent; nothing for other names', async (t) => {
  const deps = await defaultEngineDeps();
  const auth = createAuthority(deps);
  const k = fromPem(readFileSync(join(site.dir, 'owner.pub.pem'), 'utf8'));
  const lookup = new NamecoinLookup(auth, [{ name: 'test', lookup: async () => ({ records: [{ usage: 2, selector: 1, matchingType: 0, data: k }], ttl: 600 }) }], deps);
  const root = await lookup.answer(auth.root.cert.subject);
  t.is(root.status, 0);
  t.is(root.objects.length, 2);
  // No Namecoin object carries CKA_NSS_MOZILLA_CA_POLICY.
  for (const o of root.objects) t.false(o.some(([ty]) => ty === 0xce534372));
  t.is((await lookup.answer(auth.tld.cert.subject)).objects.length, 1);
  const aia = await lookup.answer(name('example.bit Domain AIA Parent CA', NAMECOIN_SERIAL));
  t.is(aia.status, 0);
  // The AIA parent, then the chain above it (TLD CA, root and its trust record), so one round trip verifies a site.
  const labels = aia.objects.map((o) => Buffer.from(o.find(([ty]) => ty === 0x03)![1]).toString());
  t.deepEqual(labels, ['example.bit Domain AIA Parent CA', '.bit TLD CA', 'Namecoin Root CA', 'Namecoin Root CA']);
  t.true(aia.ttl <= 600);
  t.is((await lookup.answer(name('Some Public CA', 'x'))).status, 1);
});
