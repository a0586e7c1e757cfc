// The rewrite of one trusted root R: a fresh local anchor L(R) and the
// cross-certificate R' (R's subject, key, validity and extensions, issued by
// L(R), with the policy's names excluded).

import { generateKeyPairSync, hash, randomFillSync, sign, type KeyObject } from 'node:crypto';
// crypto.hash (Node >= 20.12): one call, half the cost of createHash().update().digest() (bench/).
import { EngineError } from './errors.js';
import {
  Tag,
  bitString,
  boolTrue,
  concat,
  contextTag,
  octetString,
  oid,
  seq,
  set,
  smallInt,
  tlv,
  uintFromBytes,
  utf8,
} from './asn1/der.js';
import { Oid, isCa, subjectKeyId, validityTimes, nameAttribute, parseCertificate, publicKeyBits, type Extension, type ParsedCertificate } from './asn1/certificate.js';
import { buildExcludedSubtrees, mergeExcludedSubtrees } from './nameConstraints.js';
import { encodeTime, parseTime } from './asn1/time.js';
import { anchorLabel } from '../pkcs11/objects.js';

export type AnchorKeyType = 'P-256' | 'P-384';

/** An anchor key pair. The private half lives only in this object. */
export interface AnchorKey {
  type: AnchorKeyType;
  privateKey: KeyObject;
  /** SubjectPublicKeyInfo DER of the public half. */
  spki: Uint8Array;
}

export interface EngineDeps {
  /** The build time; R' starts being valid shortly before it (see crossValidity). */
  now(): Date;
  /** A fresh key pair for one L(R); called once per root. */
  generateAnchorKey(): AnchorKey;
  /** Unsigned serial-number bytes for a certificate the engine issues. */
  serial(): Uint8Array;
}

/** A certificate the engine issued, with the fields callers need (no re-parse). */
export interface IssuedCert {
  der: Uint8Array;
  tbs: Uint8Array;
  subject: Uint8Array; // Name TLV
  issuer: Uint8Array; // Name TLV
  serial: Uint8Array; // INTEGER TLV
  spki: Uint8Array;
  /** The key identifier of the certified key (SKI value), when there is one. */
  keyId?: Uint8Array;
}

export interface FencedRoot {
  /** L(R), self-signed. */
  anchor: IssuedCert;
  /** R', issued by L(R). */
  cross: IssuedCert;
  /** The second form of R' (also excluding `nssExcluded`), when asked for. */
  crossNss?: IssuedCert;
}

// AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
// ecdsa-with-SHA256/384 have no parameters (RFC 5758, section 3.2).
export const SIGNATURE: Record<AnchorKeyType, { alg: Uint8Array; hash: string }> = {
  'P-256': { alg: seq(oid(Oid.ecdsaWithSha256)), hash: 'sha256' },
  'P-384': { alg: seq(oid(Oid.ecdsaWithSha384)), hash: 'sha384' },
};

// Version ::= INTEGER { v1(0), v2(1), v3(2) }, in [0] EXPLICIT.
export const V3 = tlv(contextTag(0, true), smallInt(2));

// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
export function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), boolTrue(), octetString(value)) : seq(oid(id), octetString(value));
}

// KeyIdentifier via method 1 of RFC 5280 4.2.1.2: SHA-1 of the subjectPublicKey bits.
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  return hash('sha1', publicKeyBits(spki), 'buffer');
}

// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] KeyIdentifier OPTIONAL, ... }
export function akiValue(keyId: Uint8Array): Uint8Array {
  return seq(tlv(contextTag(0, false), keyId));
}

export function signCertificate(tbs: Uint8Array, key: AnchorKey): Uint8Array {
  const { alg, hash } = SIGNATURE[key.type];
  return seq(tbs, alg, bitString(sign(hash, tbs, key.privateKey)));
}

/** A readable, per-root unique anchor name: CN from R, O ncfence, serialNumber = R's SHA-256 prefix. */
export function anchorName(root: ParsedCertificate, sha256Hex?: string): Uint8Array {
  const label =
    nameAttribute(root.subject, Oid.commonName) ??
    nameAttribute(root.subject, Oid.organizationalUnitName) ??
    nameAttribute(root.subject, Oid.organizationName) ??
    'unnamed root';
  const cn = anchorLabel(label).slice(0, 64);
  const fp = (sha256Hex ?? hash('sha256', root.der, 'hex')).slice(0, 32);
  const atv = (id: string, value: Uint8Array): Uint8Array => set(seq(oid(id), value));
  return seq(
    atv(Oid.organizationName, utf8('ncfence local anchor')),
    atv(Oid.commonName, utf8(cn)),
    atv(Oid.serialNumber, tlv(Tag.PRINTABLE_STRING, Buffer.from(fp, 'latin1'))),
  );
}

// The fixed extensions of a CA ncfence makes (L(R), the Namecoin CAs): BasicConstraints cA,
// KeyUsage keyCertSign|cRLSign.
// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }
// KeyUsage ::= BIT STRING: keyCertSign (5) and cRLSign (6) -> 0000 0110, 1 unused bit
export const CA_BASIC = extension(Oid.basicConstraints, true, seq(boolTrue()));
export const CA_USAGE = extension(Oid.keyUsage, true, bitString(Uint8Array.of(0x06), 1));

function buildAnchor(root: ParsedCertificate, key: AnchorKey, keyId: Uint8Array, serial: Uint8Array, sha256Hex?: string): IssuedCert {
  const name = anchorName(root, sha256Hex);
  const ski = extension(Oid.subjectKeyIdentifier, false, octetString(keyId));
  const serialTlv = uintFromBytes(serial);
  const tbs = seq(V3, serialTlv, SIGNATURE[key.type].alg, name, root.validity, name, key.spki, tlv(contextTag(3, true), seq(CA_BASIC, CA_USAGE, ski)));
  return { der: signCertificate(tbs, key), tbs, subject: name, issuer: name, serial: serialTlv, spki: key.spki, keyId };
}

// The NameConstraints extension a root without one gets: the same bytes for
// every root of a build, so made once per list of excluded subtrees (lists
// are never mutated: Policy.excludedSubtrees is built once per policy).
const excludingExtensions = new WeakMap<readonly Uint8Array[], Uint8Array>();
function excludingExtension(excluded: readonly Uint8Array[]): Uint8Array {
  let ext = excludingExtensions.get(excluded);
  if (ext === undefined) {
    ext = extension(Oid.nameConstraints, true, buildExcludedSubtrees(excluded));
    excludingExtensions.set(excluded, ext);
  }
  return ext;
}

/** R's extensions with AKI pointing at the anchor and the exclusions merged into NameConstraints. */
function crossExtensions(root: ParsedCertificate, anchorKeyId: Uint8Array, excluded: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let sawNc = false;
  let sawAki = false;
  for (let i = 0; i < root.extensions.length; i++) out.push(rewriteExtension(root.extensions[i]!)); // indexed: see asn1/der.ts
  // A version 1 root is a CA by being trusted; R' is an intermediate and must say so.
  if (isCa(root) === undefined) out.push(CA_BASIC);
  if (!sawAki) out.push(extension(Oid.authorityKeyIdentifier, false, akiValue(anchorKeyId)));
  if (!sawNc) out.push(excludingExtension(excluded));
  return out;

  function rewriteExtension(ext: Extension): Uint8Array {
    if (ext.oid === Oid.authorityKeyIdentifier) {
      // R's AKI names the key that signed R, not L(R) (RFC 5280 section 4.2.1.1). Verifiers that
      // pick an issuer by it would not chain R' to L(R): OpenSSL (crypto/x509/v3_purp.c
      // X509_check_akid) and NSS's classic one (lib/pki/certificate.c filter_subject_certs_for_id).
      sawAki = true;
      return extension(ext.oid, ext.critical, akiValue(anchorKeyId));
    }
    if (ext.oid === Oid.nameConstraints) {
      sawNc = true;
      return extension(ext.oid, true, mergeExcludedSubtrees(ext.value, excluded));
    }
    return ext.der;
  }
}

// Validity ::= SEQUENCE { notBefore Time, notAfter Time }  (RFC 5280 4.1.2.5)

/**
 * R's validity with a later notBefore. NSS's classic verifier picks one
 * issuer among certificates with the same subject and, when validity and
 * trust tie, takes the newer notBefore (lib/pki/pkibase.c); with R's own
 * notBefore it picked R and failed every chain with -8172. So R' starts at
 * the later of R's notBefore + 1 s and one hour before the build (but
 * never after R's notAfter).
 */
export function crossValidity(validity: Uint8Array, now: Date): Uint8Array {
  const { notBefore, notAfter } = validityTimes(validity);
  const end = parseTime(notAfter);
  // An expired root stays expired: R' ends when R does, and starts just after R.
  const start = Math.max(parseTime(notBefore) + 1000, Math.min(now.getTime() - 3600_000, end));
  if (start > end) throw new EngineError('UNSUPPORTED_ROOT', 'root validity is shorter than one second');
  return seq(encodeTime(start), notAfter.der);
}

/**
 * Fences one root, given as DER or already parsed (with its SHA-256 in hex
 * when the caller has it). `excluded` holds GeneralSubtree DER values (see
 * nameConstraints.ts). With `nssExcluded`, a second R' excludes those too,
 * under the same L(R) with its own serial (docs/policy.md, 'Two forms of
 * R''). The anchor's private key is used for these signatures and then goes
 * out of scope with `key`.
 */
export function fenceRoot(rootIn: Uint8Array | ParsedCertificate, excluded: readonly Uint8Array[], deps: EngineDeps, sha256Hex?: string, nssExcluded: readonly Uint8Array[] = []): FencedRoot {
  const root = rootIn instanceof Uint8Array ? parseCertificate(rootIn) : rootIn;
  if (isCa(root) === false) {
    const fp = sha256Hex ?? hash('sha256', root.der, 'hex');
    throw new EngineError('ROOT_NOT_CA', `root ${fp} has basicConstraints cA = FALSE`);
  }
  const key = deps.generateAnchorKey();
  const anchorKeyId = keyIdentifier(key.spki);
  const anchor = buildAnchor(root, key, anchorKeyId, deps.serial(), sha256Hex);
  const cross = crossCertificate(root, anchor, key, anchorKeyId, excluded, deps);
  if (nssExcluded.length === 0) return { anchor, cross };
  return { anchor, cross, crossNss: crossCertificate(root, anchor, key, anchorKeyId, [...excluded, ...nssExcluded], deps) };
}

/** R' for one set of exclusions: R's subject, key, validity and extensions, issued by L(R). */
function crossCertificate(root: ParsedCertificate, anchor: IssuedCert, key: AnchorKey, anchorKeyId: Uint8Array, excluded: readonly Uint8Array[], deps: EngineDeps): IssuedCert {
  const serial = uintFromBytes(deps.serial());
  const tbs = seq(
    V3,
    serial,
    SIGNATURE[key.type].alg,
    anchor.subject,
    crossValidity(root.validity, deps.now()),
    root.subject,
    root.spki,
    concat(root.issuerUid ? [root.issuerUid] : []),
    concat(root.subjectUid ? [root.subjectUid] : []),
    tlv(contextTag(3, true), seq(...crossExtensions(root, anchorKeyId, excluded))),
  );
  return {
    der: signCertificate(tbs, key),
    tbs,
    subject: root.subject,
    issuer: anchor.subject,
    serial,
    spki: root.spki,
    keyId: subjectKeyId(root),
  };
}

const CURVE: Record<AnchorKeyType, { name: string; bytes: number; spkiPrefix: Uint8Array }> = {
  // SubjectPublicKeyInfo up to the BIT STRING's content, then 04 || x || y
  // (id-ecPublicKey with the named curve; RFC 5480, section 2).
  'P-256': { name: 'prime256v1', bytes: 32, spkiPrefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex') },
  'P-384': { name: 'secp384r1', bytes: 48, spkiPrefix: Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex') },
};

/**
 * Default dependencies: fresh anchor keys and 128-bit random serials from
 * node:crypto. The public key comes back as JWK and is framed as SPKI here:
 * KeyObject.export to DER cost 2.5x the key generation itself (bench/).
 */
export async function defaultEngineDeps(anchorKey: AnchorKeyType = 'P-256'): Promise<EngineDeps> {
  const curve = CURVE[anchorKey];
  const pool = Buffer.alloc(4096);
  let used = pool.length;
  return {
    now: () => new Date(),
    generateAnchorKey() {
      // @types/node 20 lacks the JWK overload of generateKeyPairSync that Node 20 has.
      const generate = generateKeyPairSync as unknown as (type: 'ec', o: object) => { privateKey: KeyObject; publicKey: { x: string; y: string } };
      const { privateKey, publicKey } = generate('ec', { namedCurve: curve.name, publicKeyEncoding: { format: 'jwk' } });
      // x and y decoded straight into the SPKI (no buffer per coordinate, no concat).
      const spki = Buffer.allocUnsafe(curve.spkiPrefix.length + 1 + 2 * curve.bytes);
      spki.set(curve.spkiPrefix, 0);
      const at = curve.spkiPrefix.length + 1;
      spki[at - 1] = 0x04;
      if (spki.write(publicKey.x, at, 'base64url') !== curve.bytes || spki.write(publicKey.y, at + curve.bytes, 'base64url') !== curve.bytes) {
        throw new EngineError('UNSUPPORTED_ROOT', `node:crypto gave an anchor public key whose coordinates are not ${curve.bytes} bytes each`);
      }
      return { type: anchorKey, privateKey, spki: new Uint8Array(spki.buffer, spki.byteOffset, spki.length) };
    },
    serial() {
      if (used + 16 > pool.length) {
        randomFillSync(pool);
        used = 0;
      }
      const b = new Uint8Array(pool.subarray(used, used + 16));
      used += 16;
      b[0] = (b[0]! & 0x7f) | 0x01; // positive and never zero-padded away
      return b;
    },
  };
}
