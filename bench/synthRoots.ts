// Synthetic self-signed root certificates for the benches, the same bytes on
// every run: all key material and every random-looking field comes from an
// HMAC-SHA256 counter-mode stream keyed by a fixed seed, and node:crypto only
// does the arithmetic.
//
// - RSA: primes are searched from seeded candidates (top two bits and low bit
//   set, sieved by small primes) and confirmed with crypto.checkPrimeSync; the
//   key is imported as a JWK. PKCS#1 v1.5 signatures are deterministic.
// - EC: the private scalar comes from the stream, the public point from
//   crypto.createECDH().setPrivateKey(). ECDSA in OpenSSL uses a random nonce,
//   so the root's self-signature is computed here with a nonce derived from
//   the seed, the key and the message hash (RFC 6979 in spirit, not its exact
//   construction): kG through createECDH, then s = k^-1 (z + r d) mod n.
//
// Every root's self-signature is checked with crypto.verify before use.
// The certificate bytes are built with the engine's own DER writer.

import { checkPrimeSync, createECDH, createHash, createHmac, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { Tag, bitString, boolTrue, contextTag, octetString, oid, seq, set, smallInt, tlv, uintFromBytes, utf8 } from '../src/engine/asn1/der.js';
import { Oid, publicKeyBits } from '../src/engine/asn1/certificate.js';

export type RootKeyType = 'RSA-2048' | 'RSA-4096' | 'P-256' | 'P-384';
export const ROOT_KEY_TYPES: readonly RootKeyType[] = ['RSA-2048', 'RSA-4096', 'P-256', 'P-384'];

export interface SyntheticRoot {
  type: RootKeyType;
  der: Uint8Array;
  /** Hex SHA-256 of `der`: equal across runs with the same seed. */
  sha256: string;
  spkiBytes: number;
}

/** HMAC-SHA256 in counter mode: a deterministic byte stream for one label. */
class Stream {
  private counter = 0;
  constructor(
    private readonly seed: string,
    private readonly label: string,
  ) {}
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      const block = createHmac('sha256', this.seed).update(`${this.label}|${this.counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, n - off)), off);
    }
    return out;
  }
}

const big = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`);

/** Unsigned big-endian bytes; `len` left-pads with zeros, otherwise minimal. */
function bytesOf(v: bigint, len?: number): Uint8Array {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (len !== undefined) hex = hex.padStart(len * 2, '0');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

const b64u = (v: bigint, len?: number): string => Buffer.from(bytesOf(v, len)).toString('base64url');

function modInv(a: bigint, m: bigint): bigint {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error('modInv: not invertible');
  return ((s0 % m) + m) % m;
}

const SMALL_PRIMES: bigint[] = (() => {
  const limit = 4096;
  const sieve = new Uint8Array(limit);
  const out: bigint[] = [];
  for (let i = 2; i < limit; i++) {
    if (sieve[i]) continue;
    out.push(BigInt(i));
    for (let j = i * i; j < limit; j += i) sieve[j] = 1;
  }
  return out;
})();

const E = 65537n;

function seededPrime(stream: Stream, bits: number): bigint {
  for (;;) {
    const b = stream.bytes(bits / 8);
    b[0]! |= 0xc0; // p*q then has exactly 2*bits bits
    b[b.length - 1]! |= 1;
    const c = big(b);
    if (SMALL_PRIMES.some((p) => c % p === 0n)) continue;
    if ((c - 1n) % E === 0n) continue;
    if (checkPrimeSync(c)) return c;
  }
}

function seededRsaKey(seed: string, bits: number): KeyObject {
  const stream = new Stream(seed, `rsa-${bits}`);
  const p = seededPrime(stream, bits / 2);
  let q = seededPrime(stream, bits / 2);
  while (q === p) q = seededPrime(stream, bits / 2);
  const n = p * q;
  const d = modInv(E, (p - 1n) * (q - 1n));
  return createPrivateKey({
    format: 'jwk',
    key: { kty: 'RSA', n: b64u(n), e: b64u(E), d: b64u(d), p: b64u(p), q: b64u(q), dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(modInv(q, p)) },
  });
}

interface Curve {
  node: string;
  jwk: string;
  bytes: number;
  order: bigint;
  hash: string;
  sigOid: string;
}

const CURVES: Record<'P-256' | 'P-384', Curve> = {
  'P-256': {
    node: 'prime256v1',
    jwk: 'P-256',
    bytes: 32,
    order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    hash: 'sha256',
    sigOid: Oid.ecdsaWithSha256,
  },
  'P-384': {
    node: 'secp384r1',
    jwk: 'P-384',
    bytes: 48,
    order: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    hash: 'sha384',
    sigOid: Oid.ecdsaWithSha384,
  },
};

/** A scalar in [1, n-1] from the stream (8 extra bytes make the bias negligible). */
const scalar = (stream: Stream, c: Curve): bigint => (big(stream.bytes(c.bytes + 8)) % (c.order - 1n)) + 1n;

function publicPoint(c: Curve, k: bigint): Buffer {
  const ecdh = createECDH(c.node);
  ecdh.setPrivateKey(Buffer.from(bytesOf(k, c.bytes)));
  return ecdh.getPublicKey(); // 04 || x || y
}

interface EcKey {
  curve: Curve;
  d: bigint;
  privateKey: KeyObject;
}

function seededEcKey(seed: string, type: 'P-256' | 'P-384'): EcKey {
  const c = CURVES[type];
  const d = scalar(new Stream(seed, `ec-${type}`), c);
  const pub = publicPoint(c, d);
  const privateKey = createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'EC',
      crv: c.jwk,
      d: b64u(d, c.bytes),
      x: Buffer.from(pub.subarray(1, 1 + c.bytes)).toString('base64url'),
      y: Buffer.from(pub.subarray(1 + c.bytes)).toString('base64url'),
    },
  });
  return { curve: c, d, privateKey };
}

/** ECDSA with a nonce derived from seed, key and message: a DER Ecdsa-Sig-Value. */
function deterministicEcdsa(seed: string, key: EcKey, message: Uint8Array): Uint8Array {
  const c = key.curve;
  const h = createHash(c.hash).update(message).digest();
  const z = big(h); // hash length equals the curve size for both pairings: no truncation
  const stream = new Stream(seed, `nonce|${key.d.toString(16)}|${h.toString('hex')}`);
  for (;;) {
    const k = scalar(stream, c);
    const r = big(publicPoint(c, k).subarray(1, 1 + c.bytes)) % c.order;
    if (r === 0n) continue;
    const s = (modInv(k, c.order) * (z + r * key.d)) % c.order;
    if (s === 0n) continue;
    return seq(uintFromBytes(bytesOf(r)), uintFromBytes(bytesOf(s)));
  }
}

const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const COUNTRY = '2.5.4.6';

function rdn(id: string, value: Uint8Array): Uint8Array {
  return set(seq(oid(id), value));
}

function ext(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), boolTrue(), octetString(value)) : seq(oid(id), octetString(value));
}

const utc = (s: string): Uint8Array => tlv(Tag.UTC_TIME, new TextEncoder().encode(s));

/** One self-signed v3 CA certificate shaped like a CKBI root. */
export function syntheticRoot(seed: string, type: RootKeyType): SyntheticRoot {
  const rsa = type === 'RSA-2048' || type === 'RSA-4096';
  const rsaKey = rsa ? seededRsaKey(seed, type === 'RSA-2048' ? 2048 : 4096) : undefined;
  const ecKey = rsa ? undefined : seededEcKey(seed, type as 'P-256' | 'P-384');
  const privateKey = (rsaKey ?? ecKey!.privateKey)!;
  const spki = new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  const sigAlg = rsa ? seq(oid(SHA256_WITH_RSA), tlv(Tag.NULL)) : seq(oid(ecKey!.curve.sigOid));
  const name = seq(
    rdn(COUNTRY, tlv(Tag.PRINTABLE_STRING, new TextEncoder().encode('US'))),
    rdn(Oid.organizationName, utf8('ncfence bench')),
    rdn(Oid.organizationalUnitName, utf8('synthetic roots')),
    rdn(Oid.commonName, utf8(`ncfence bench root ${type}`)),
  );
  const serial = new Stream(seed, `serial-${type}`).bytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const ski = createHash('sha1').update(publicKeyBits(spki)).digest();
  const tbs = seq(
    tlv(contextTag(0, true), smallInt(2)),
    uintFromBytes(serial),
    sigAlg,
    name,
    seq(utc('200101000000Z'), utc('450101000000Z')),
    name,
    spki,
    tlv(
      contextTag(3, true),
      seq(
        ext(Oid.basicConstraints, true, seq(boolTrue())),
        ext(Oid.keyUsage, true, bitString(Uint8Array.of(0x06), 1)), // keyCertSign, cRLSign
        ext(Oid.subjectKeyIdentifier, false, octetString(new Uint8Array(ski))),
      ),
    ),
  );
  const signature = rsa ? new Uint8Array(sign('sha256', tbs, privateKey)) : deterministicEcdsa(seed, ecKey!, tbs);
  const hash = rsa ? 'sha256' : ecKey!.curve.hash;
  if (!verify(hash, tbs, createPublicKey(privateKey), signature)) throw new Error(`synthetic ${type} root: self-signature does not verify`);
  const der = seq(tbs, sigAlg, bitString(signature));
  return { type, der, sha256: createHash('sha256').update(der).digest('hex'), spkiBytes: spki.length };
}
