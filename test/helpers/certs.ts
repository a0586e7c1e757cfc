// Self-signed test roots of chosen shapes, built in memory with node:crypto.
// Used where openssl's CLI cannot make the shape (an expired root, a
// SHA-1 self-signature) and for policy decisions; verifier tests use pki.ts.

import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { bitString, boolTrue, contextTag, octetString, oid, seq, set, smallInt, tlv, uintFromBytes, utf8 } from '../../src/engine/asn1/der.js';
import { encodeTime } from '../../src/engine/asn1/time.js';
import { CKA, CKC_X_509, CKO, CKT } from '../../src/pkcs11/constants.js';
import { parseCertificate } from '../../src/engine/asn1/certificate.js';
import { boolBytes, ulongBytes, type UpstreamObject } from '../../src/pkcs11/objects.js';

export interface RootShape {
  key?: 'rsa' | 'ec';
  /** Signature hash of the self-signature. */
  hash?: 'sha256' | 'sha1';
  cn?: string | null;
  notBefore?: Date;
  notAfter?: Date;
  /** Extra DER Extension values appended after basicConstraints. */
  extensions?: Uint8Array[];
}

const SIG_OID: Record<string, string> = {
  'rsa/sha256': '1.2.840.113549.1.1.11',
  'rsa/sha1': '1.2.840.113549.1.1.5',
  'ec/sha256': '1.2.840.10045.4.3.2',
  'ec/sha1': '1.2.840.10045.4.1',
};

let rsaKey: { privateKey: KeyObject; publicKey: KeyObject } | undefined;

export function makeRoot(shape: RootShape = {}): Uint8Array {
  const key = shape.key ?? 'ec';
  const hash = shape.hash ?? 'sha256';
  const pair = key === 'rsa' ? (rsaKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 })) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const algOid = SIG_OID[`${key}/${hash}`]!;
  const alg = key === 'rsa' ? seq(oid(algOid), tlv(0x05)) : seq(oid(algOid));
  const rdns = [set(seq(oid('2.5.4.10'), utf8('ncfence policy tests')))];
  if (shape.cn !== null) rdns.push(set(seq(oid('2.5.4.3'), utf8(shape.cn ?? `root ${Math.random().toString(36).slice(2)}`))));
  const name = seq(...rdns);
  const now = Date.now();
  const validity = seq(encodeTime((shape.notBefore ?? new Date(now - 86400_000)).getTime()), encodeTime((shape.notAfter ?? new Date(now + 3650 * 86400_000)).getTime()));
  const exts = [seq(oid('2.5.29.19'), boolTrue(), octetString(seq(boolTrue()))), ...(shape.extensions ?? [])];
  const tbs = seq(
    tlv(contextTag(0, true), smallInt(2)),
    uintFromBytes(createHash('sha256').update(String(Math.random())).digest().subarray(0, 8)),
    alg,
    name,
    validity,
    name,
    new Uint8Array(pair.publicKey.export({ type: 'spki', format: 'der' })),
    tlv(contextTag(3, true), seq(...exts)),
  );
  return seq(tbs, alg, bitString(new Uint8Array(sign(hash, tbs, pair.privateKey))));
}

/** NameConstraints extension excluding the given dNSNames and rfc822Names. */
export function excludingExtension(names: string[], mailDomains: string[] = []): Uint8Array {
  const subtree = (tag: number) => (n: string) => seq(tlv(contextTag(tag, false), new TextEncoder().encode(n)));
  const subtrees = [...names.map(subtree(2)), ...mailDomains.map(subtree(1))];
  return seq(oid('2.5.29.30'), boolTrue(), octetString(seq(tlv(contextTag(1, true), ...subtrees))));
}

/** A certificate object and NSS trust record as an upstream CKBI would hold them. */
export function upstreamRoot(der: Uint8Array, label: string, purposes: Partial<Record<'server' | 'email' | 'code', number>> = { server: CKT.NSS_TRUSTED_DELEGATOR }): UpstreamObject[] {
  const parts = parseNames(der);
  const cert: UpstreamObject = {
    slot: 1,
    attrs: new Map<number, Uint8Array>([
      [CKA.CLASS, ulongBytes(CKO.CERTIFICATE)],
      [CKA.TOKEN, boolBytes(true)],
      [CKA.LABEL, new TextEncoder().encode(label)],
      [CKA.CERTIFICATE_TYPE, ulongBytes(CKC_X_509)],
      [CKA.SUBJECT, parts.subject],
      [CKA.ISSUER, parts.issuer],
      [CKA.SERIAL_NUMBER, parts.serial],
      [CKA.VALUE, der],
      [CKA.NSS_MOZILLA_CA_POLICY, boolBytes(true)],
    ]),
  };
  const trust: UpstreamObject = {
    slot: 1,
    attrs: new Map<number, Uint8Array>([
      [CKA.CLASS, ulongBytes(CKO.NSS_TRUST)],
      [CKA.ISSUER, parts.issuer],
      [CKA.SERIAL_NUMBER, parts.serial],
      [CKA.CERT_SHA1_HASH, new Uint8Array(createHash('sha1').update(der).digest())],
      [CKA.TRUST_SERVER_AUTH, ulongBytes(purposes.server ?? CKT.NSS_MUST_VERIFY_TRUST)],
      [CKA.TRUST_EMAIL_PROTECTION, ulongBytes(purposes.email ?? CKT.NSS_MUST_VERIFY_TRUST)],
      [CKA.TRUST_CODE_SIGNING, ulongBytes(purposes.code ?? CKT.NSS_MUST_VERIFY_TRUST)],
    ]),
  };
  return [cert, trust];
}

/** The names upstream would index the certificate by; fixed placeholders for DER that does not parse. */
function parseNames(der: Uint8Array): { subject: Uint8Array; issuer: Uint8Array; serial: Uint8Array } {
  try {
    const c = parseCertificate(der);
    return { subject: c.subject, issuer: c.issuer, serial: c.serial };
  } catch {
    return { subject: seq(), issuer: seq(), serial: smallInt(1) };
  }
}
