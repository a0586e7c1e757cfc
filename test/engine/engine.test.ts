// The cross-sign engine on its own: name-constraint DER, the shape of R'
// and L(R) as parsed by pkijs (an independent parser), R' verified under
// L(R) by OpenSSL, and hostile DER rejected with a typed error.

import test from 'ava';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultEngineDeps, fenceRoot, crossValidity } from '../../src/engine/crossSign.js';
import { EngineError } from '../../src/engine/errors.js';
import { cidrSubtree, buildExcludedSubtrees, dnsSubtree, mergeExcludedSubtrees } from '../../src/engine/nameConstraints.js';
import { parseCertificate } from '../../src/engine/asn1/certificate.js';
import { readTlv, Tag, tlv } from '../../src/engine/asn1/der.js';
import { parseTime } from '../../src/engine/asn1/time.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { run } from '../helpers/run.js';
import { fromPem, toPem } from '../helpers/pem.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const BIT = [dnsSubtree('bit')];
let pki: TestPki;
let dir: string;

test.before(async () => {
  pki = await makeTestPki(['www.example.com']);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-engine-'));
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});


const ncCases = [
  { name: 'fresh exclusion of bit', build: () => buildExcludedSubtrees(BIT), want: '3009a10730058203626974' },
  {
    name: 'merge keeps permitted subtrees and adds the exclusion',
    build: () => mergeExcludedSubtrees(Buffer.from('300ba009300782056f72672e78', 'hex'), BIT),
    want: '3014a009300782056f72672e78a10730058203626974',
  },
  {
    name: 'merge does not duplicate an existing exclusion',
    build: () => mergeExcludedSubtrees(Buffer.from('3009a10730058203626974', 'hex'), BIT),
    want: '3009a10730058203626974',
  },
  {
    name: 'merge appends to other exclusions (biz kept, bit added)',
    build: () => mergeExcludedSubtrees(Buffer.from('3009a1073005820362697a', 'hex'), BIT),
    want: '3010a10e3005820362697a30058203626974',
  },
  {
    name: 'bit is not matched by a longer label (orbit stays, bit added)',
    build: () => mergeExcludedSubtrees(Buffer.from('300ba00930078205' + Buffer.from('orbit').toString('hex'), 'hex'), BIT),
    want: '3014a00930078205' + Buffer.from('orbit').toString('hex') + 'a10730058203626974',
  },
];
for (const c of ncCases) {
  test(`NameConstraints: ${c.name}`, (t) => {
    t.is(hex(c.build()), c.want);
  });
}

test('dnsSubtree refuses names that are not DNS labels; one trailing dot is the absolute form, kept as written', (t) => {
  for (const bad of ['.bit', 'bit..', '.', 'b it', '', 'ü.bit', 'b it.']) t.throws(() => dnsSubtree(bad), { instanceOf: EngineError }, bad);
  t.is(hex(dnsSubtree('BIT')), hex(dnsSubtree('bit')));
  t.is(hex(dnsSubtree('BIT.')), '300682046269742e');
});

test('cidrSubtree encodes address and mask, and refuses host bits and bad prefixes', (t) => {
  t.is(hex(cidrSubtree('0.0.0.0/0')), '300a87080000000000000000');
  t.is(hex(cidrSubtree('10.0.0.0/8')), '300a87080a000000ff000000');
  t.is(hex(cidrSubtree('::/0')), `3022872000${'00'.repeat(31)}`);
  t.is(hex(cidrSubtree('fe80::/10')), `30228720fe80${'00'.repeat(14)}ffc0${'00'.repeat(14)}`);
  for (const bad of ['10.0.0.1/8', '10.0.0.0/33', '::/129', '10.0.0.0', 'x/8', '::1/200']) t.throws(() => cidrSubtree(bad), { instanceOf: EngineError }, bad);
});

test('R\' keeps R\'s subject and key, is issued by L(R), excludes bit; OpenSSL verifies it under L(R)', async (t) => {
  const rootDer = fromPem(pki.rootPem);
  const deps = await defaultEngineDeps();
  const { anchor, cross } = fenceRoot(rootDer, BIT, deps);
  const root = parseCertificate(rootDer);
  t.is(hex(cross.subject), hex(root.subject));
  t.is(hex(cross.spki), hex(root.spki));
  t.is(hex(cross.issuer), hex(anchor.subject));
  t.is(hex(anchor.issuer), hex(anchor.subject));

  // pkijs, a parser the engine does not use, reads the same structure.
  const parsed = new pkijs.Certificate({ schema: asn1js.fromBER(cross.der).result });
  const nc = parsed.extensions?.find((e) => e.extnID === '2.5.29.30');
  t.truthy(nc, 'NameConstraints present');
  t.true(nc!.critical);
  t.is(parsed.version, 2);
  t.true(parsed.notBefore.value.getTime() > new pkijs.Certificate({ schema: asn1js.fromBER(rootDer).result }).notBefore.value.getTime());

  writeFileSync(join(dir, 'anchor.pem'), toPem(anchor.der));
  writeFileSync(join(dir, 'cross.pem'), toPem(cross.der));
  const v = await run('openssl', ['verify', '-x509_strict', '-CAfile', join(dir, 'anchor.pem'), join(dir, 'cross.pem')]);
  t.is(v.code, 0, v.stdout + v.stderr);
  const text = await run('openssl', ['x509', '-noout', '-text', '-in', join(dir, 'cross.pem')]);
  t.regex(text.stdout, /X509v3 Name Constraints: critical\s+Excluded:\s+DNS:bit/);
  // The whole chain: leaf <- intermediate <- R' <- L(R).
  const chain = await run('openssl', [
    'verify', '-CAfile', join(dir, 'anchor.pem'), '-untrusted', join(dir, 'cross.pem'), '-untrusted', pki.interFile,
    pki.leaves.get('www.example.com')!.certFile,
  ]);
  t.is(chain.code, 0, chain.stdout + chain.stderr);
  t.truthy(readFileSync(join(dir, 'cross.pem')));
});

test('crossValidity: later notBefore, same notAfter, expired roots stay expired', (t) => {
  const validity = Buffer.from('301e170d3130303130313030303030305a170d3230303130313030303030305a', 'hex');
  const out = crossValidity(validity, new Date(Date.UTC(2026, 0, 1)));
  // 2010-01-01 .. 2020-01-01 is long expired: R' ends with R and starts no later.
  t.is(hex(out), '301e170d3230303130313030303030305a170d3230303130313030303030305a');
  // A current root: R' starts one hour before the build.
  const current = Buffer.from('301e170d3130303130313030303030305a170d3430303130313030303030305a', 'hex');
  t.is(hex(crossValidity(current, new Date(Date.UTC(2026, 0, 1, 12)))), '301e170d3236303130313131303030305a170d3430303130313030303030305a');
});

test('the anchor keys of defaultEngineDeps carry their own public key as SubjectPublicKeyInfo, on both curves', async (t) => {
  // The SPKI is framed from the JWK's coordinates (crossSign.ts); node:crypto's own DER export is the reference.
  for (const type of ['P-256', 'P-384'] as const) {
    const deps = await defaultEngineDeps(type);
    for (let i = 0; i < 50; i++) {
      const key = deps.generateAnchorKey();
      t.deepEqual(Buffer.from(key.spki), createPublicKey(key.privateKey).export({ format: 'der', type: 'spki' }), type);
    }
  }
});

test('parseTime reads every time as an independent reading of its text does, errors included', (t) => {
  // parseTime reads times straight from the bytes (issue 21); the reference
  // reads the text with a regular expression (its bytes one for one, so
  // nothing but ASCII digits matches), checks each field's range by the
  // calendar and counts the days itself. Boundaries by hand, then seeded
  // random ones.
  const decoder = new TextDecoder();
  const reference = (x: ReturnType<typeof readTlv>): number => {
    const s = decoder.decode(x.body);
    const text = Buffer.from(x.body).toString('latin1');
    const m =
      x.tag === Tag.UTC_TIME
        ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : x.tag === Tag.GENERALIZED_TIME
          ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
          : null;
    if (!m) throw new EngineError('BAD_DER', `validity: unsupported time ${JSON.stringify(s)}`);
    let year = Number(m[1]);
    if (x.tag === Tag.UTC_TIME) year += year < 50 ? 2000 : 1900;
    const [month, day, hour, minute, second] = [2, 3, 4, 5, 6].map((i) => Number(m[i]));
    // Each field in its range, by the Gregorian calendar's own rule for February.
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month! - 1];
    if (days === undefined || day! < 1 || day! > days || hour! > 23 || minute! > 59 || second! > 59) {
      throw new EngineError('BAD_DER', `validity: impossible time ${JSON.stringify(s)}`);
    }
    // Days since 1970 by whole years, then months (no Date arithmetic, which maps years 0-99 to 1900-1999).
    let since = 0;
    for (let yy = Math.min(year, 1970); yy < Math.max(year, 1970); yy++) since += yy % 4 === 0 && (yy % 100 !== 0 || yy % 400 === 0) ? 366 : 365;
    if (year < 1970) since = -since;
    for (let mm = 1; mm < month!; mm++) since += [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mm - 1]!;
    return (((since + day! - 1) * 24 + hour!) * 60 + minute!) * 60_000 + second! * 1000;
  };
  const outcome = (f: (x: ReturnType<typeof readTlv>) => number, tag: number, body: string): string => {
    try {
      return String(f(readTlv(tlv(tag, Buffer.from(body, 'latin1')))));
    } catch (e) {
      return `${(e as Error).name}: ${(e as Error).message}`;
    }
  };
  const cases: [number, string][] = [
    [Tag.UTC_TIME, '491231235959Z'], [Tag.UTC_TIME, '500101000000Z'], [Tag.UTC_TIME, '000229120000Z'], [Tag.UTC_TIME, '991301000000Z'],
    [Tag.UTC_TIME, '990230000000Z'], [Tag.UTC_TIME, '99023000000Z'], [Tag.UTC_TIME, '9902300000000Z'], [Tag.UTC_TIME, '990230000000z'],
    [Tag.UTC_TIME, '99023000000\u00e9Z'], [Tag.UTC_TIME, '9902300000+0Z'], [Tag.GENERALIZED_TIME, '20491231235959Z'], [Tag.GENERALIZED_TIME, '00000101000000Z'],
    [Tag.GENERALIZED_TIME, '99991231235959Z'], [Tag.GENERALIZED_TIME, '2049123123595Z'], [Tag.GENERALIZED_TIME, '491231235959Z'], [Tag.OCTET_STRING, '491231235959Z'],
    // A byte-order mark before the time: UTF-8 decoding would drop it, DER has none.
    [Tag.UTC_TIME, '\u00ef\u00bb\u00bf491231235959Z'],
    // Each field past its range (Date would roll it over into the next), leap days, and years 0-99.
    [Tag.UTC_TIME, '960229000000Z'], [Tag.UTC_TIME, '970229000000Z'], [Tag.GENERALIZED_TIME, '21000229000000Z'], [Tag.GENERALIZED_TIME, '20000229000000Z'],
    [Tag.UTC_TIME, '990431000000Z'], [Tag.UTC_TIME, '990100000000Z'], [Tag.UTC_TIME, '990001000000Z'], [Tag.UTC_TIME, '990101240000Z'],
    [Tag.UTC_TIME, '990101006000Z'], [Tag.UTC_TIME, '990101000060Z'], [Tag.GENERALIZED_TIME, '00991231235959Z'], [Tag.GENERALIZED_TIME, '19691231235959Z'],
  ];
  let seed = 21;
  const rand = (k: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % k;
  };
  const alphabet = '0123456789Z9z.+-\u00e9 ';
  for (let i = 0; i < 3000; i++) {
    const tag = rand(2) ? Tag.UTC_TIME : Tag.GENERALIZED_TIME;
    const chars = Array.from({ length: (tag === Tag.UTC_TIME ? 13 : 15) + rand(3) - 1 }, () => String(rand(10)));
    chars[chars.length - 1] = 'Z';
    if (rand(4) === 0) chars[rand(chars.length)] = alphabet[rand(alphabet.length)]!;
    cases.push([tag, chars.join('')]);
  }
  for (const [tag, body] of cases) t.is(outcome(parseTime, tag, body), outcome(reference, tag, body), `${tag} ${body}`);
});

test('hostile DER is refused with EngineError, never another exception', async (t) => {
  const deps = await defaultEngineDeps();
  const rootDer = fromPem(pki.rootPem);
  const inputs: Uint8Array[] = [new Uint8Array(0), Uint8Array.of(0x30), Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff)];
  for (let i = 0; i < 300; i++) inputs.push(new Uint8Array(randomBytes(1 + (i % 64))));
  for (let i = 0; i < 700; i++) {
    const m = new Uint8Array(rootDer);
    const n = 1 + (i % 4);
    for (let k = 0; k < n; k++) { const at = (i * 7919 + k * 104729) % m.length; m[at] = m[at]! ^ (1 << ((i + k) % 8)); }
    inputs.push(i % 3 === 0 ? m.subarray(0, (i * 31) % m.length) : m);
  }
  let refused = 0;
  for (const input of inputs) {
    try {
      fenceRoot(input, BIT, deps);
    } catch (e) {
      t.true(e instanceof EngineError, `${(e as Error).name}: ${(e as Error).message} for ${hex(input).slice(0, 80)}`);
      refused++;
    }
  }
  t.true(refused > 300);
});
