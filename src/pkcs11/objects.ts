// PKCS#11 objects as ncfence reads and writes them: attribute values, object
// shapes, and the certificate and trust-record objects that the view
// (compile/plan.ts) and the live service (namecoin/lookup.ts) hand to NSS.

import { hash } from 'node:crypto';
import { CKA, CKC_X_509, CKM_SHA256, CKO } from './constants.js';

/** One attribute: its CKA type and its value exactly as C_GetAttributeValue returns it. */
export type Attribute = [type: number, value: Uint8Array];

/** An object read from a token (upstream, or a browser's builtins): attribute type -> raw value. */
export type UpstreamObject = { slot: number; attrs: Map<number, Uint8Array> };

/** An object of the compiled view, in the slot its root came from, attributes in the order served. */
export type ViewObject = { slot: number; attrs: Attribute[] };

// A CK_ULONG is the platform's unsigned long, a CK_BBOOL one byte (pkcs11t.h);
// this machine (and the view header) is little-endian LP64.
export function ulongValue(b: Uint8Array | undefined): number | undefined {
  if (!b || b.length !== 8) return undefined;
  // Most values fit in 32 bits: fewer steps (this runs a few thousand times per build).
  if (b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] === 0) return (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + b[3]! * 2 ** 24;
  // Exact for values below 2^53, which every PKCS#11 constant is.
  return b[0]! + b[1]! * 2 ** 8 + b[2]! * 2 ** 16 + b[3]! * 2 ** 24 + b[4]! * 2 ** 32 + b[5]! * 2 ** 40 + b[6]! * 2 ** 48 + b[7]! * 2 ** 56;
}

export const boolValue = (b: Uint8Array | undefined): boolean | undefined => (b?.length === 1 ? b[0] !== 0 : undefined);

export function ulongBytes(n: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return new Uint8Array(b);
}

export const boolBytes = (v: boolean): Uint8Array => Uint8Array.of(v ? 1 : 0);

/** L(R)'s label and CN (engine/crossSign.ts anchorName): what `certutil -L` shows, and how anchors are told apart. */
const ANCHOR_LABEL_PREFIX = 'ncfence anchor for ';
export const anchorLabel = (rootName: string): string => `${ANCHOR_LABEL_PREFIX}${rootName}`;

/** Whether a view object is a local anchor's certificate. */
export function isAnchor(attrs: readonly Attribute[]): boolean {
  const value = (type: number): Uint8Array | undefined => attrs.find(([t]) => t === type)?.[1];
  return ulongValue(value(CKA.CLASS)) === CKO.CERTIFICATE && Buffer.from(value(CKA.LABEL) ?? []).toString().startsWith(ANCHOR_LABEL_PREFIX);
}

/** What a certificate object is made of (engine/crossSign.ts IssuedCert has these). */
type CertFields = Record<'der' | 'subject' | 'issuer' | 'serial', Uint8Array>;

// Attributes many objects share: one pair each for the process (objects are never mutated once built).
const IS_CERTIFICATE: Attribute = [CKA.CLASS, ulongBytes(CKO.CERTIFICATE)];
const IS_NSS_TRUST: Attribute = [CKA.CLASS, ulongBytes(CKO.NSS_TRUST)];
const IS_PKCS_TRUST: Attribute = [CKA.CLASS, ulongBytes(CKO.TRUST)];
const IS_TOKEN: Attribute = [CKA.TOKEN, boolBytes(true)];
const NOT_PRIVATE: Attribute = [CKA.PRIVATE, boolBytes(false)];
const NOT_MODIFIABLE: Attribute = [CKA.MODIFIABLE, boolBytes(false)];
const IS_X_509: Attribute = [CKA.CERTIFICATE_TYPE, ulongBytes(CKC_X_509)];
const IS_TRUSTED: Attribute = [CKA.TRUSTED, boolBytes(true)];
const UNTRUSTED: Attribute = [CKA.TRUSTED, boolBytes(false)];
const NAME_HASH_SHA256: Attribute = [CKA.NAME_HASH_ALGORITHM, ulongBytes(CKM_SHA256)];

/**
 * A read-only token certificate with the attributes NSS's builtins give
 * theirs, and CKA_TRUSTED when `trusted` is given: GnuTLS takes anchors from
 * it alone (lib/pkcs11.c gnutls_pkcs11_get_raw_issuer, find_cert_cb).
 */
export function certObject(cert: CertFields, label: Uint8Array, id: Uint8Array, trusted?: boolean): Attribute[] {
  const attrs: Attribute[] = [IS_CERTIFICATE, IS_TOKEN, NOT_PRIVATE, NOT_MODIFIABLE, [CKA.LABEL, label], IS_X_509];
  attrs.push([CKA.SUBJECT, cert.subject], [CKA.ID, id], [CKA.ISSUER, cert.issuer], [CKA.SERIAL_NUMBER, cert.serial], [CKA.VALUE, cert.der]);
  if (trusted !== undefined) attrs.push(trusted ? IS_TRUSTED : UNTRUSTED);
  return attrs;
}

/** A trust record of class `cls` for `cert`: token flags, label, the certificate's issuer and serial, then `more`. */
function trustRecord(cls: Attribute, cert: CertFields, label: Uint8Array, ...more: (readonly Attribute[])[]): Attribute[] {
  const out: Attribute[] = [cls, IS_TOKEN, NOT_PRIVATE, NOT_MODIFIABLE, [CKA.LABEL, label], [CKA.ISSUER, cert.issuer], [CKA.SERIAL_NUMBER, cert.serial]];
  for (let k = 0; k < more.length; k++) for (let i = 0; i < more[k]!.length; i++) out.push(more[k]![i]!);
  return out;
}

/**
 * An NSS trust record (CKO_NSS_TRUST) for `cert`, then `purposes`. NSS
 * finds it by issuer and serial (nss lib/dev/devtoken.c
 * nssToken_FindTrustForCertificate) and uses it only when CKA_CERT_SHA1_HASH
 * matches the certificate (lib/pki/certificate.c nssTrust_Create).
 */
export function nssTrustRecord(cert: CertFields, label: Uint8Array, purposes: readonly Attribute[]): Attribute[] {
  return trustRecord(IS_NSS_TRUST, cert, label, [[CKA.CERT_SHA1_HASH, hash('sha1', cert.der, 'buffer')], [CKA.CERT_MD5_HASH, hash('md5', cert.der, 'buffer')]], purposes);
}

/** A PKCS#11 3.2 trust record (CKO_TRUST) for `cert`: its SHA-256 as CKA_HASH_OF_CERTIFICATE, then `purposes`. */
export function pkcsTrustRecord(cert: CertFields, label: Uint8Array, purposes: readonly Attribute[]): Attribute[] {
  return trustRecord(IS_PKCS_TRUST, cert, label, [[CKA.HASH_OF_CERTIFICATE, hash('sha256', cert.der, 'buffer')], NAME_HASH_SHA256], purposes);
}
