// Certified mode's pieces on their own (src/namecoin/stapled.ts), judged by
// what Namecoin's tools wrote: the message ncgencert (Go's json.Marshal) asks
// the owner to sign, the stapled serialNumber it put in the chain, and
// signatures made with libsecp256k1 (Namecoin Core's library) by
// test/data/ncgencert/nmcsign.c. Then Namecoin Core's verifymessage rules one
// by one (header byte, strict base64, address kinds), stapled "notafter", the
// lookup's outcomes, and seeded mutations of everything a TLS peer controls:
// typed refusals, never a throw.

import test from 'ava';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { oid, seq, set, tlv, Tag, utf8 } from '../../src/engine/asn1/der.js';
import { nameAttribute, Oid, parseCertificate } from '../../src/engine/asn1/certificate.js';
import { defaultEngineDeps } from '../../src/engine/crossSign.js';
import { createAuthority, NAMECOIN_SERIAL, parseAiaName } from '../../src/namecoin/chain.js';
import { NamecoinLookup, type TlsSource } from '../../src/namecoin/lookup.js';
import type { NameOwner } from '../../src/namecoin/rpc.js';
import {
  certificationMessage,
  certify,
  decodeBase58Check,
  encodeBase58Check,
  goJsonString,
  MAX_STAPLED_SIGS,
  messageHash,
  p2pkhAddress,
  parseStapled,
  StapledError,
  verifyMessage,
} from '../../src/namecoin/stapled.js';
import { fromPem } from '../helpers/pem.js';

const DATA = fileURLToPath(new URL('../data/ncgencert/', import.meta.url));
const read = (...p: string[]): string => readFileSync(join(DATA, ...p), 'utf8');
const A = read('owner-a.address').trim();
const B = read('owner-b.address').trim();
const CERTIFIED = ['certified-apex', 'certified-www', 'certified-by-b', 'certified-forged', 'certified-other-domain', 'certified-other-key'];
const hostOf = (d: string): string => (d === 'certified-www' ? 'www.example.bit' : 'example.bit');
/** The Domain CA's issuer name, as the server sends it (what a verifier asks the module for). */
const issuerOf = (d: string): Uint8Array => parseCertificate(fromPem(read(d, 'caCert.pem'))).issuer;
const stapledText = (d: string): string => nameAttribute(issuerOf(d), Oid.serialNumber)!.slice(`${NAMECOIN_SERIAL}\n\nStapled: `.length);

// ------------------------------------------------------------ against ncgencert's own output

test('the message ncfence rebuilds is byte for byte the one ncgencert (Go json.Marshal) asks the owner to sign', (t) => {
  for (const d of ['certified-apex', 'certified-www', 'certified-by-b', 'certified-forged']) {
    const goMessage = read(d, 'caAIAMessage.txt');
    const pub = /"x509pub":"([^"]+)"/.exec(goMessage)![1]!;
    t.is(certificationMessage('FILL IN NAMECOIN ADDRESS HERE BEFORE SIGNING', hostOf(d), pub), goMessage, d);
  }
});

test('the stapled serialNumber of every ncgencert chain parses to its AIA key and the signatures file it was given', (t) => {
  for (const d of CERTIFIED) {
    const s = parseStapled(stapledText(d));
    const aiaKey = createPublicKey(read(d, 'caAIAKey.pem')).export({ type: 'spki', format: 'der' });
    t.deepEqual(Buffer.from(s.key), aiaKey, d);
    const file = JSON.parse(read(d, 'sigs.json')) as { blockchainaddress: string; blockchainsig: string }[];
    t.deepEqual(s.sigs, file.map((x) => ({ address: x.blockchainaddress, sig: x.blockchainsig })), d);
    t.is(s.notAfter, undefined);
  }
  for (const d of ['hashed-apex', 'hashed-www']) t.is(parseStapled(stapledText(d)).sigs, undefined, `${d}: hashed mode staples no signature`);
});

test('signatures made by libsecp256k1 (Namecoin Core\'s signmessage) verify over the message signed, and over nothing else', (t) => {
  for (const d of CERTIFIED) {
    const { blockchainaddress: addr, blockchainsig: sig } = (JSON.parse(read(d, 'sigs.json')) as { blockchainaddress: string; blockchainsig: string }[])[0]!;
    const message = read(d, 'message.txt');
    const expected = d === 'certified-forged' ? 'signed by another key' : 'ok'; // claims A, signed with B's key
    t.is(verifyMessage(addr, sig, message), expected, d);
    t.is(verifyMessage(addr, sig, `${message} `), 'signed by another key', `${d}: one more byte`);
  }
});

test('certify: the owner\'s signature vouches for the stapled key and domain it names; every other combination is refused with its reason', (t) => {
  const apex = parseStapled(stapledText('certified-apex'));
  t.deepEqual(certify(apex, 'example.bit', A), { ok: true, address: A });
  t.like(certify(apex, 'example.bit', B), { ok: false, kind: 'owner-mismatch' });
  t.like(certify(apex, 'www.example.bit', A), { ok: false, kind: 'bad-signature' }, 'a signature for the apex is not one for a subdomain');
  t.like(certify(apex, 'other.bit', A), { ok: false, kind: 'bad-signature' });
  t.like(certify(parseStapled(stapledText('certified-by-b')), 'example.bit', A), { ok: false, kind: 'owner-mismatch' });
  t.deepEqual(certify(parseStapled(stapledText('certified-by-b')), 'example.bit', B), { ok: true, address: B }, 'the same chain once B owns the name');
  t.like(certify(parseStapled(stapledText('certified-forged')), 'example.bit', A), { ok: false, kind: 'bad-signature' });
  t.like(certify(parseStapled(stapledText('certified-other-domain')), 'example.bit', A), { ok: false, kind: 'bad-signature' });
  t.like(certify(parseStapled(stapledText('certified-other-key')), 'example.bit', A), { ok: false, kind: 'bad-signature' });
  t.like(certify({ ...apex, sigs: [] }, 'example.bit', A), { ok: false, kind: 'no-signature' });
});

// ------------------------------------------------------------ Namecoin Core's verifymessage, rule by rule

const priv = secp256k1.utils.randomSecretKey();
const addrC = p2pkhAddress(secp256k1.getPublicKey(priv, true));
const addrU = p2pkhAddress(secp256k1.getPublicKey(priv, false));
function coreSign(message: string, header: (recid: number) => number): string {
  const sig = secp256k1.sign(messageHash(message), priv, { prehash: false, format: 'recovered' });
  return Buffer.from([header(sig[0]!), ...sig.subarray(1)]).toString('base64');
}

test('header byte as RecoverCompact reads it: recid = (h-27)&3, compressed = (h-27)&4, nothing else checked', (t) => {
  t.is(verifyMessage(addrC, coreSign('m', (r) => 27 + r + 4), 'm'), 'ok');
  t.is(verifyMessage(addrU, coreSign('m', (r) => 27 + r), 'm'), 'ok', 'uncompressed key');
  t.is(verifyMessage(addrC, coreSign('m', (r) => 27 + r), 'm'), 'signed by another key', 'compressed address, uncompressed flag');
  t.is(verifyMessage(addrC, coreSign('m', (r) => 27 + r + 4 + 8), 'm'), 'ok', 'h + 8 reads the same');
  t.is(verifyMessage(addrC, coreSign('m', (r) => (27 + r + 4 + 256 - 8 * 4) % 256), 'm'), 'ok', 'h below 27 wraps like a C int');
  t.not(verifyMessage(addrC, coreSign('m', (r) => 27 + (r ^ 1) + 4), 'm'), 'ok', 'the other recid');
});

test('high-s signatures recover (libsecp256k1 recovery does not demand low s), zero or overflowing r/s do not', (t) => {
  const sig = secp256k1.sign(messageHash('m'), priv, { prehash: false, format: 'recovered' });
  const n = secp256k1.Point.CURVE().n;
  const s = BigInt(`0x${Buffer.from(sig.subarray(33)).toString('hex')}`);
  const hex = (v: bigint): number[] => [...Buffer.from(v.toString(16).padStart(64, '0'), 'hex')];
  const b64 = (h: number, r: number[], s2: number[]): string => Buffer.from([h, ...r, ...s2]).toString('base64');
  const r = [...sig.subarray(1, 33)];
  t.is(verifyMessage(addrC, b64(27 + (sig[0]! ^ 1) + 4, r, hex(n - s)), 'm'), 'ok');
  t.is(verifyMessage(addrC, b64(31, new Array<number>(32).fill(0), hex(s)), 'm'), 'no key recovers from the signature');
  t.is(verifyMessage(addrC, b64(31, r, hex(0n)), 'm'), 'no key recovers from the signature');
  t.is(verifyMessage(addrC, b64(31, hex(n), hex(s)), 'm'), 'no key recovers from the signature');
  t.is(verifyMessage(addrC, b64(31, r, hex(n + 1n)), 'm'), 'no key recovers from the signature');
});

test('signature base64 as DecodeBase64 takes it: padded, standard alphabet, zero padding bits; 65 bytes', (t) => {
  const good = coreSign('m', (r) => 27 + r + 4);
  t.is(verifyMessage(addrC, good, 'm'), 'ok');
  t.is(verifyMessage(addrC, good.replace(/=+$/, ''), 'm'), 'signature is not valid base64', 'unpadded');
  let m = 0;
  while (!/[+/]/.test(coreSign(`m${m}`, (r) => 27 + r + 4))) m++; // a signature whose base64 uses + or /
  const urlAlphabet = coreSign(`m${m}`, (r) => 27 + r + 4).replace(/\+/g, '-').replace(/\//g, '_');
  t.is(verifyMessage(addrC, urlAlphabet, `m${m}`), 'signature is not valid base64', 'URL alphabet');
  t.is(verifyMessage(addrC, ` ${good}`, 'm'), 'signature is not valid base64');
  t.is(verifyMessage(addrC, good.replace(/.=$/, (m) => `${String.fromCharCode(m.charCodeAt(0) + 1)}=`), 'm'), 'signature is not valid base64', 'non-zero padding bits');
  t.is(verifyMessage(addrC, Buffer.alloc(64, 1).toString('base64'), 'm'), 'no key recovers from the signature', '64 bytes');
});

test('addresses: only P2PKH (versions 52 and 111) name a key; P2SH, bech32, bad checksums and junk do not', (t) => {
  const hash = createHash('ripemd160').update(createHash('sha256').update(secp256k1.getPublicKey(priv, true)).digest()).digest();
  const withVersion = (v: number): string => encodeBase58Check(Uint8Array.of(v, ...hash));
  const sig = coreSign('m', (r) => 27 + r + 4);
  t.is(verifyMessage(withVersion(52), sig, 'm'), 'ok', 'mainnet');
  t.is(verifyMessage(withVersion(111), sig, 'm'), 'ok', 'testnet/regtest');
  for (const v of [0, 5, 13, 196]) t.is(verifyMessage(withVersion(v), sig, 'm'), 'address is not a P2PKH key address', `version ${v}`);
  const mainnet = withVersion(52);
  const broken = mainnet.slice(0, -1) + (mainnet.endsWith('1') ? '2' : '1');
  for (const a of [broken, 'nc1qw508d6qejxtdg4y5r3zarvary0c5xw7kp58p8g', '<nonstandard>', '', 'N'.repeat(200), '0OIl']) t.is(verifyMessage(a, sig, 'm'), 'address is not a P2PKH key address', a);
  t.deepEqual(decodeBase58Check(encodeBase58Check(Uint8Array.of(0, 0, 1))), Uint8Array.of(0, 0, 1), 'leading zero bytes survive');
});

test('Go json.Marshal string escapes: HTML-safe, U+2028/9, control characters, lone surrogates as U+FFFD', (t) => {
  t.is(goJsonString('a<b>&"\\'), '"a\\u003cb\\u003e\\u0026\\"\\\\"');
  t.is(goJsonString('\n\r\t\x01\x7f\u2028\u2029é'), '"\\n\\r\\t\\u0001\x7f\\u2028\\u2029é"');
  t.is(goJsonString('x\ud800y'), '"x\ufffdy"');
  t.is(certificationMessage('N', 'example.bit', 'K', '123'), 'Namecoin X.509 Stapled Certification: {"address":"N","domain":"example.bit","notafter":"123","x509pub":"K"}');
});

// ------------------------------------------------------------ parsing the stapled JSON

const malformed: [string, string, RegExp][] = [
  ['not JSON', '{"pubb64":', /not JSON/],
  ['a list', '["pubb64"]', /not a JSON object/],
  ['null (Go: no stapled data; refused here)', 'null', /not a JSON object/],
  ['a number member', '{"pubb64":"AAAA","notafter":5}', /not a string/],
  ['a duplicate member', '{"pubb64":"AAAA","pubb64":"BBBB"}', /duplicate/],
  ['no pubb64', '{"sigs":"[]"}', /no "pubb64"/],
  ['padded pubb64', '{"pubb64":"AAA="}', /unpadded base64url/],
  ['standard alphabet pubb64', '{"pubb64":"AA+/"}', /unpadded base64url/],
  ['impossible pubb64 length', '{"pubb64":"AAAAA"}', /unpadded base64url/],
  ['sigs not JSON', '{"pubb64":"AAAA","sigs":"[{"}', /"sigs" is not JSON/],
  ['sigs an object', '{"pubb64":"AAAA","sigs":"{}"}', /not a JSON list/],
  ['sigs entry a string', '{"pubb64":"AAAA","sigs":"[\\"x\\"]"}', /is not an object/],
  ['sigs entry member a number', '{"pubb64":"AAAA","sigs":"[{\\"blockchainsig\\":1}]"}', /is not a string/],
  ['too many sigs', `{"pubb64":"AAAA","sigs":${JSON.stringify(JSON.stringify(new Array(MAX_STAPLED_SIGS + 1).fill({ blockchainaddress: 'N', blockchainsig: 'x' })))}}`, /more than 8/],
  ['notafter not a number', '{"pubb64":"AAAA","notafter":"soon"}', /base-10 integer/],
  ['notafter past int64', '{"pubb64":"AAAA","notafter":"9223372036854775808"}', /int64/],
  ['oversized', `{"pubb64":"${'A'.repeat(9000)}"}`, /longer than 8192/],
];
for (const [name, text, want] of malformed) {
  test(`stapled JSON refused with a typed error: ${name}`, (t) => {
    const e = t.throws(() => parseStapled(text), { instanceOf: StapledError });
    t.is(e?.code, 'MALFORMED_STAPLED');
    t.regex(e!.message, want);
  });
}

test('stapled JSON as Go reads it: CR/LF inside pubb64 ignored, null sigs entries and entries without both fields skipped, unknown members ignored, signed notafter kept as text', (t) => {
  const s = parseStapled('{"pubb64":"AA\\r\\nAA","sigs":"[null,{\\"blockchainaddress\\":\\"N\\"},{\\"blockchainaddress\\":\\"N\\",\\"blockchainsig\\":\\"S\\",\\"extra\\":\\"x\\"}]","pidigits":"314","notafter":"+0042"}');
  t.deepEqual([...s.key], [0, 0, 0]);
  t.is(s.pubb64, 'AA\r\nAA', 'signed as stapled');
  t.deepEqual(s.sigs, [{ address: 'N', sig: 'S' }]);
  t.deepEqual(s.notAfter, { text: '+0042', seconds: 42 });
});

// ------------------------------------------------------------ through the lookup (what the service logs)

const aiaName = (cn: string, serial: string): Uint8Array =>
  seq(set(seq(oid('2.5.4.3'), utf8(cn))), set(seq(oid('2.5.4.5'), tlv(Tag.UTF8_STRING, new TextEncoder().encode(serial)))));

function ownerSource(address: string | undefined, absent?: NameOwner['absent']): TlsSource {
  return { name: 'rpc fake', lookup: async () => ({ records: [], ttl: 60 }), owner: async (d) => ({ name: `d/${d.split('.').at(-2)}`, address, absent, ttl: 600 }) };
}

async function lookupWith(source: TlsSource, name: Uint8Array, now = new Date()): Promise<{ status: number; notAfter?: Date; log: string[] }> {
  const deps = await defaultEngineDeps();
  deps.now = () => now;
  const log: string[] = [];
  const a = await new NamecoinLookup(createAuthority(deps), [source], deps, (l) => log.push(l)).answer(name);
  const der = a.objects[0]?.find(([type]) => type === 0x11)?.[1];
  return { status: a.status, notAfter: der ? new Date(new (await import('node:crypto')).X509Certificate(der).validTo) : undefined, log };
}

test('stapled notafter: signed with the rest, caps the synthesized CA, and a past one is refused', async (t) => {
  const spki = new Uint8Array(createPublicKey(read('certified-apex', 'caAIAKey.pem')).export({ type: 'spki', format: 'der' }));
  const pubb64 = Buffer.from(spki).toString('base64url');
  const now = new Date('2027-06-01T12:00:00Z');
  const staple = (notafter: number, signedFor = notafter): Uint8Array => {
    const message = certificationMessage(addrC, 'example.bit', pubb64, String(signedFor));
    const sigs = JSON.stringify([{ blockchainaddress: addrC, blockchainsig: coreSign(message, (r) => 27 + r + 4) }]);
    return aiaName('example.bit Domain AIA Parent CA', `${NAMECOIN_SERIAL}\n\nStapled: ${JSON.stringify({ notafter: String(notafter), pubb64, sigs })}`);
  };
  const in20min = Math.floor(now.getTime() / 1000) + 1200;
  const ok = await lookupWith(ownerSource(addrC), staple(in20min), now);
  t.is(ok.status, 0, ok.log.join('\n'));
  t.is(ok.notAfter?.getTime(), in20min * 1000, 'the CA ends at the stapled notafter, not an hour from now');
  const tampered = await lookupWith(ownerSource(addrC), staple(in20min + 86400, in20min), now);
  t.is(tampered.status, 1, 'a notafter other than the one signed');
  t.regex(tampered.log[0]!, /refused \(bad signature\)/);
  const past = await lookupWith(ownerSource(addrC), staple(in20min - 7200), now);
  t.is(past.status, 1);
  t.regex(past.log[0]!, /^example\.bit: refused \(expired\): the stapled notafter \d+ has passed/);
});

test('the lookup names each outcome: malformed stapled data, an expired or missing name, a name spelled in capitals', async (t) => {
  const apexName = issuerOf('certified-apex');
  const r1 = await lookupWith(ownerSource(A), aiaName('example.bit Domain AIA Parent CA', `${NAMECOIN_SERIAL}\n\nStapled: {"pubb64":"AAAA","pubb64":"AAAA"}`));
  t.regex(r1.log[0]!, /^example\.bit: refused \(malformed\): stapled data in the issuer name: stapled data has a duplicate member/);
  const r2 = await lookupWith(ownerSource(undefined, 'expired'), apexName);
  t.regex(r2.log[0]!, /^example\.bit: refused \(expired name\): certified: rpc fake: d\/example has expired/);
  const r3 = await lookupWith(ownerSource(undefined, 'never existed'), apexName);
  t.regex(r3.log[0]!, /^example\.bit: refused \(no record\): certified: rpc fake: d\/example does not exist/);
  const upper = aiaName('Example.bit Domain AIA Parent CA', nameAttribute(apexName, Oid.serialNumber)!);
  const r4 = await lookupWith(ownerSource(A), upper);
  t.is(r4.status, 1);
  t.regex(r4.log[0]!, /capitals/);
  t.is((await lookupWith(ownerSource(A), apexName)).status, 0, 'control: the same chain, owner A');
});

// ------------------------------------------------------------ seeded mutations (hostile input)

function prng(seed: number): (k: number) => number {
  return (k) => ((seed = (seed * 1103515245 + 12345) >>> 0) % k);
}

test('property: 3000 mutated stapled serialNumbers give a request, a typed refusal or "not ours", never a throw; certify never throws', (t) => {
  const rand = prng(4242);
  const base = nameAttribute(issuerOf('certified-apex'), Oid.serialNumber)!;
  const pieces = ['"', '\\', '{', '}', '[', ']', ',', ':', 'null', '1e999', '"sigs"', '"pubb64"', '\\"', '\\u0000', '\ud800', 'é', '\n'];
  const tally = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    let s = base;
    for (let k = 0; k < 1 + rand(4); k++) {
      const at = rand(s.length + 1);
      const op = rand(3);
      if (op === 0) s = s.slice(0, at) + s.slice(at + 1 + rand(8));
      else if (op === 1) s = s.slice(0, at) + pieces[rand(pieces.length)]! + s.slice(at);
      else s = s.slice(0, at) + String.fromCharCode(rand(128)) + s.slice(at + 1);
    }
    if (i % 50 === 0) s += 'A'.repeat(rand(40000));
    let r: ReturnType<typeof parseAiaName>;
    t.notThrows(() => (r = parseAiaName(aiaName('example.bit Domain AIA Parent CA', s))));
    const kind = r === undefined ? 'not ours' : r.malformed ? 'malformed' : r.stapled?.sigs?.length ? 'signed' : 'unsigned';
    tally.set(kind, (tally.get(kind) ?? 0) + 1);
    if (r?.stapled) t.notThrows(() => certify(r!.stapled!, r!.domain, A));
  }
  t.log([...tally].map(([k, v]) => `${k}: ${v}`).join(', '));
  t.true((tally.get('malformed') ?? 0) > 1000, 'most mutations are refused as malformed');
  t.true((tally.get('signed') ?? 0) > 50, 'some still parse with signatures (and reach the signature check)');
});

test('property: 500 mutated signatures and addresses never verify and never throw', (t) => {
  const rand = prng(99);
  const sig = (JSON.parse(read('certified-apex', 'sigs.json')) as { blockchainsig: string }[])[0]!.blockchainsig;
  const message = read('certified-apex', 'message.txt');
  for (let i = 0; i < 500; i++) {
    const bytes = Buffer.from(sig, 'base64');
    const at = rand(65);
    bytes[at] = bytes[at]! ^ (1 << rand(8));
    const addr = i % 10 === 0 ? A.slice(0, rand(A.length)) + A.slice(rand(A.length)) : A;
    const mutated = i % 7 === 0 ? randomBytes(rand(100)).toString('base64') : bytes.toString('base64');
    let v: string | undefined;
    t.notThrows(() => (v = verifyMessage(addr, mutated, message)));
    t.not(v, 'ok', `${addr} ${mutated}`);
  }
});
