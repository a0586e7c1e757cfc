// The rewrite of one trusted root R: a fresh local anchor L(R) and the
// cross-certificate R' (R's subject, key, validity and extensions, issued by
// L(R), with the policy's names excluded).

import { createHash, sign, type KeyObject } from 'node:crypto';
import { EngineError } from './errors.js';
import {
  Tag,
  bitString,
  boolTrue,
  concat,
  contextTag,
  octetString,
  oid,
  readChildren,
  readExact,
  seq,
  set,
  smallInt,
  tlv,
  uintFromBytes,
  utf8,
} from './asn1/der.js';
import { Oid, isCa, validityTimes, nameAttribute, parseCertificate, publicKeyBits, type Extension, type ParsedCertificate } from './asn1/certificate.js';
import { buildExcludedSubtrees, mergeExcludedSubtrees } from './nameConstraints.js';
import { encodeTime, parseTime } from './asn1/time.js';

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

export interface FencedRoot {
  /** L(R), self-signed. */
  anchor: ParsedCertificate;
  /** R', issued by L(R). */
  cross: ParsedCertificate;
}

// AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
// ecdsa-with-SHA256/384 have no parameters (RFC 5758, section 3.2).
const SIGNATURE: Record<AnchorKeyType, { alg: Uint8Array; hash: string }> = {
  'P-256': { alg: seq(oid(Oid.ecdsaWithSha256)), hash: 'sha256' },
  'P-384': { alg: seq(oid(Oid.ecdsaWithSha384)), hash: 'sha384' },
};

// Version ::= INTEGER { v1(0), v2(1), v3(2) }, in [0] EXPLICIT.
const V3 = tlv(contextTag(0, true), smallInt(2));

// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), boolTrue(), octetString(value)) : seq(oid(id), octetString(value));
}

// KeyIdentifier via method 1 of RFC 5280 4.2.1.2: SHA-1 of the subjectPublicKey bits.
function keyIdentifier(spki: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(publicKeyBits(spki)).digest());
}

// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] KeyIdentifier OPTIONAL, ... }
function akiValue(keyId: Uint8Array): Uint8Array {
  return seq(tlv(contextTag(0, false), keyId));
}

function signCertificate(tbs: Uint8Array, key: AnchorKey): Uint8Array {
  const { alg, hash } = SIGNATURE[key.type];
  const signature = new Uint8Array(sign(hash, tbs, key.privateKey));
  return seq(tbs, alg, bitString(signature));
}

/** A readable, per-root unique anchor name: CN from R, O ncfence, serialNumber = R's SHA-256 prefix. */
export function anchorName(root: ParsedCertificate): Uint8Array {
  const label =
    nameAttribute(root.subject, Oid.commonName) ??
    nameAttribute(root.subject, Oid.organizationalUnitName) ??
    nameAttribute(root.subject, Oid.organizationName) ??
    'unnamed root';
  const cn = `ncfence anchor for ${label}`.slice(0, 64);
  const fp = createHash('sha256').update(root.der).digest('hex').slice(0, 32);
  const atv = (id: string, value: Uint8Array): Uint8Array => set(seq(oid(id), value));
  return seq(
    atv(Oid.organizationName, utf8('ncfence local anchor')),
    atv(Oid.commonName, utf8(cn)),
    atv(Oid.serialNumber, tlv(Tag.PRINTABLE_STRING, new TextEncoder().encode(fp))),
  );
}

function buildAnchor(root: ParsedCertificate, key: AnchorKey, serial: Uint8Array): ParsedCertificate {
  const name = anchorName(root);
  // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }
  const basic = extension(Oid.basicConstraints, true, seq(boolTrue()));
  // KeyUsage ::= BIT STRING: keyCertSign (5) and cRLSign (6) -> 0000 0110, 1 unused bit
  const usage = extension(Oid.keyUsage, true, bitString(Uint8Array.of(0x06), 1));
  const ski = extension(Oid.subjectKeyIdentifier, false, octetString(keyIdentifier(key.spki)));
  const tbs = seq(
    V3,
    uintFromBytes(serial),
    SIGNATURE[key.type].alg,
    name,
    root.validity,
    name,
    key.spki,
    tlv(contextTag(3, true), seq(basic, usage, ski)),
  );
  return parseCertificate(signCertificate(tbs, key));
}

/** R's extensions with AKI pointing at the anchor and the exclusions merged into NameConstraints. */
function crossExtensions(root: ParsedCertificate, anchorKeyId: Uint8Array, excluded: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let sawNc = false;
  let sawAki = false;
  for (const ext of root.extensions) out.push(rewriteExtension(ext));
  // A version 1 root is a CA by being trusted; R' is an intermediate and must say so.
  if (isCa(root) === undefined) out.push(extension(Oid.basicConstraints, true, seq(boolTrue())));
  if (!sawAki) out.push(extension(Oid.authorityKeyIdentifier, false, akiValue(anchorKeyId)));
  if (!sawNc) out.push(extension(Oid.nameConstraints, true, buildExcludedSubtrees(excluded)));
  return out;

  function rewriteExtension(ext: Extension): Uint8Array {
    if (ext.oid === Oid.authorityKeyIdentifier) {
      // Copying R's AKI breaks OpenSSL and NSS classic path building (NOTES.md).
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
 * Fences one root. `excluded` holds GeneralSubtree DER values (see
 * nameConstraints.ts). The anchor's private key is used for two signatures
 * and then goes out of scope with `key`.
 */
export function fenceRoot(rootDer: Uint8Array, excluded: readonly Uint8Array[], deps: EngineDeps): FencedRoot {
  const root = parseCertificate(rootDer);
  if (isCa(root) === false) {
    const fp = createHash('sha256').update(rootDer).digest('hex');
    throw new EngineError('ROOT_NOT_CA', `root ${fp} has basicConstraints cA = FALSE`);
  }
  const key = deps.generateAnchorKey();
  const anchor = buildAnchor(root, key, deps.serial());
  const anchorKeyId = keyIdentifier(key.spki);
  const tbs = seq(
    V3,
    uintFromBytes(deps.serial()),
    SIGNATURE[key.type].alg,
    anchor.subject,
    crossValidity(root.validity, deps.now()),
    root.subject,
    root.spki,
    concat(root.issuerUid ? [root.issuerUid] : []),
    concat(root.subjectUid ? [root.subjectUid] : []),
    tlv(contextTag(3, true), seq(...crossExtensions(root, anchorKeyId, excluded))),
  );
  const cross = parseCertificate(signCertificate(tbs, key));
  return { anchor, cross };
}

const CURVE: Record<AnchorKeyType, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };

/** Default dependencies: fresh anchor keys and 128-bit random serials from node:crypto. */
export async function defaultEngineDeps(anchorKey: AnchorKeyType = 'P-256'): Promise<EngineDeps> {
  const { generateKeyPairSync, randomBytes } = await import('node:crypto');
  return {
    now: () => new Date(),
    generateAnchorKey() {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: CURVE[anchorKey] });
      return { type: anchorKey, privateKey, spki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })) };
    },
    serial() {
      const b = randomBytes(16);
      b[0] = (b[0]! & 0x7f) | 0x01; // positive and never zero-padded away
      return new Uint8Array(b);
    },
  };
}

