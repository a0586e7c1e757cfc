// Splits an X.509 certificate into the raw TLVs of its fields.
//
// Certificate  ::=  SEQUENCE  {
//      tbsCertificate       TBSCertificate,
//      signatureAlgorithm   AlgorithmIdentifier,
//      signatureValue       BIT STRING  }
//
// TBSCertificate  ::=  SEQUENCE  {
//      version         [0]  EXPLICIT Version DEFAULT v1,
//      serialNumber         CertificateSerialNumber,
//      signature            AlgorithmIdentifier,
//      issuer               Name,
//      validity             Validity,
//      subject              Name,
//      subjectPublicKeyInfo SubjectPublicKeyInfo,
//      issuerUniqueID  [1]  IMPLICIT UniqueIdentifier OPTIONAL,
//      subjectUniqueID [2]  IMPLICIT UniqueIdentifier OPTIONAL,
//      extensions      [3]  EXPLICIT Extensions OPTIONAL }
//
// Extension  ::=  SEQUENCE  {
//      extnID      OBJECT IDENTIFIER,
//      critical    BOOLEAN DEFAULT FALSE,
//      extnValue   OCTET STRING }
//
// (RFC 5280, section 4.1)

import { EngineError } from '../errors.js';
import { Tag, Tlv, contextTag, expectTag, readChildren, readExact, readTlv, tlvOid } from './der.js';

export interface Extension {
  oid: string;
  critical: boolean;
  /** Content of extnValue (the DER of the extension's own value). */
  value: Uint8Array;
  /** The whole Extension SEQUENCE as it appeared. */
  der: Uint8Array;
}

export interface ParsedCertificate {
  der: Uint8Array;
  tbs: Uint8Array;
  /** 1 for v1, 3 for v3 (v2 is reported as 2). */
  version: number;
  serial: Uint8Array; // the INTEGER TLV
  issuer: Uint8Array; // the Name TLV
  validity: Uint8Array; // the Validity TLV
  subject: Uint8Array; // the Name TLV
  spki: Uint8Array; // the SubjectPublicKeyInfo TLV
  issuerUid?: Uint8Array;
  subjectUid?: Uint8Array;
  extensions: Extension[];
  signatureAlgorithm: Uint8Array;
}

export const Oid = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  ecPublicKey: '1.2.840.10045.2.1',
  md2WithRsa: '1.2.840.113549.1.1.2',
  md5WithRsa: '1.2.840.113549.1.1.4',
  sha1WithRsa: '1.2.840.113549.1.1.5',
  ecdsaWithSha1: '1.2.840.10045.4.1',
  dsaWithSha1: '1.2.840.10040.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  authorityKeyIdentifier: '2.5.29.35',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  serialNumber: '2.5.4.5',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
} as const;

function parseExtension(t: Tlv): Extension {
  const parts = readChildren(expectTag(t, Tag.SEQUENCE, 'Extension').body);
  const id = expectTag(parts[0], Tag.OID, 'Extension.extnID');
  let i = 1;
  let critical = false;
  if (parts[i]?.tag === Tag.BOOLEAN) {
    const b = parts[i]!.body;
    if (b.length !== 1) throw new EngineError('BAD_DER', 'Extension.critical: bad BOOLEAN');
    critical = b[0] !== 0;
    i++;
  }
  const value = expectTag(parts[i], Tag.OCTET_STRING, 'Extension.extnValue');
  if (parts.length !== i + 1) throw new EngineError('BAD_DER', 'Extension: unexpected trailing fields');
  return { oid: tlvOid(id), critical, value: value.body, der: t.der };
}

export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const cert = readExact(der, Tag.SEQUENCE, 'Certificate');
  const top = readChildren(cert.body);
  if (top.length !== 3) throw new EngineError('BAD_DER', `Certificate: ${top.length} fields, expected 3`);
  const tbs = expectTag(top[0], Tag.SEQUENCE, 'tbsCertificate');
  const sigAlg = expectTag(top[1], Tag.SEQUENCE, 'signatureAlgorithm');
  expectTag(top[2], Tag.BIT_STRING, 'signatureValue');
  const f = readChildren(tbs.body);
  let i = 0;
  let version = 1;
  if (f[0]?.tag === contextTag(0, true)) {
    const v = expectTag(readTlv(f[0].body), Tag.INTEGER, 'version');
    if (v.body.length !== 1 || v.body[0]! > 2) throw new EngineError('BAD_DER', 'version: not v1, v2 or v3');
    version = v.body[0]! + 1;
    i = 1;
  }
  const serial = expectTag(f[i++], Tag.INTEGER, 'serialNumber');
  expectTag(f[i++], Tag.SEQUENCE, 'signature');
  const issuer = expectTag(f[i++], Tag.SEQUENCE, 'issuer');
  const validity = expectTag(f[i++], Tag.SEQUENCE, 'validity');
  const subject = expectTag(f[i++], Tag.SEQUENCE, 'subject');
  const spki = expectTag(f[i++], Tag.SEQUENCE, 'subjectPublicKeyInfo');
  const out: ParsedCertificate = {
    der,
    tbs: tbs.der,
    version,
    serial: serial.der,
    issuer: issuer.der,
    validity: validity.der,
    subject: subject.der,
    spki: spki.der,
    extensions: [],
    signatureAlgorithm: sigAlg.der,
  };
  if (f[i]?.tag === contextTag(1, false)) out.issuerUid = f[i++]!.der;
  if (f[i]?.tag === contextTag(2, false)) out.subjectUid = f[i++]!.der;
  if (f[i]?.tag === contextTag(3, true)) {
    const exts = expectTag(readTlv(f[i]!.body), Tag.SEQUENCE, 'extensions');
    out.extensions = readChildren(exts.body).map(parseExtension);
    i++;
  }
  if (i !== f.length) throw new EngineError('BAD_DER', `tbsCertificate: ${f.length - i} unexpected trailing fields`);
  return out;
}

/** The subjectPublicKey BIT STRING's content without the unused-bits byte. */
export function publicKeyBits(spki: Uint8Array): Uint8Array {
  const parts = readChildren(readExact(spki, Tag.SEQUENCE, 'SubjectPublicKeyInfo').body);
  const bits = expectTag(parts[1], Tag.BIT_STRING, 'subjectPublicKey');
  return bits.body.subarray(1);
}

/** Value of the subjectKeyIdentifier extension (the key id bytes), if present. */
export function subjectKeyId(cert: ParsedCertificate): Uint8Array | undefined {
  const ext = cert.extensions.find((e) => e.oid === Oid.subjectKeyIdentifier);
  if (!ext) return undefined;
  return readExact(ext.value, Tag.OCTET_STRING, 'SubjectKeyIdentifier').body;
}

const caCache = new WeakMap<ParsedCertificate, boolean | undefined>();

/** Whether basicConstraints says cA = TRUE; undefined when the extension is absent. */
export function isCa(cert: ParsedCertificate): boolean | undefined {
  if (caCache.has(cert)) return caCache.get(cert);
  const ext = cert.extensions.find((e) => e.oid === Oid.basicConstraints);
  let ca: boolean | undefined;
  if (ext) {
    const parts = readChildren(readExact(ext.value, Tag.SEQUENCE, 'BasicConstraints').body);
    ca = parts[0]?.tag === Tag.BOOLEAN && parts[0].body[0] !== 0;
  }
  caCache.set(cert, ca); // parsed certificates are never mutated
  return ca;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

const nameCache = new WeakMap<Uint8Array, Map<string, string | undefined>>();

/** First value of an attribute type in a Name, as text (for labels; never compared). Memoised per Name buffer. */
export function nameAttribute(name: Uint8Array, attrOid: string): string | undefined {
  let byOid = nameCache.get(name);
  if (byOid?.has(attrOid)) return byOid.get(attrOid);
  const value = readNameAttribute(name, attrOid);
  if (!byOid) nameCache.set(name, (byOid = new Map()));
  byOid.set(attrOid, value);
  return value;
}

function readNameAttribute(name: Uint8Array, attrOid: string): string | undefined {
  // Indexed, not for...of or destructuring: see der.ts.
  const rdns = readChildren(readExact(name, Tag.SEQUENCE, 'Name').body);
  for (let i = 0; i < rdns.length; i++) {
    const atvs = readChildren(rdns[i]!.body);
    for (let k = 0; k < atvs.length; k++) {
      const parts = readChildren(atvs[k]!.body);
      const type = parts[0];
      const value = parts[1];
      if (type?.tag === Tag.OID && value && tlvOid(type) === attrOid) {
        if (value.tag === 0x1e) {
          // BMPString: UTF-16BE
          let s = '';
          for (let j = 0; j + 1 < value.body.length; j += 2) s += String.fromCharCode((value.body[j]! << 8) | value.body[j + 1]!);
          return s;
        }
        return decoder.decode(value.body);
      }
    }
  }
  return undefined;
}

/** OID of an AlgorithmIdentifier TLV (SubjectPublicKeyInfo.algorithm or a signature algorithm). */
export function algorithmOid(algorithmIdentifier: Uint8Array): string {
  const id = readChildren(readExact(algorithmIdentifier, Tag.SEQUENCE, 'AlgorithmIdentifier').body)[0];
  return tlvOid(expectTag(id, Tag.OID, 'AlgorithmIdentifier.algorithm'));
}

/** OID of the subject public key's algorithm. */
export function keyAlgorithmOid(spki: Uint8Array): string {
  const alg = readChildren(readExact(spki, Tag.SEQUENCE, 'SubjectPublicKeyInfo').body)[0];
  return algorithmOid(expectTag(alg, Tag.SEQUENCE, 'SubjectPublicKeyInfo.algorithm').der);
}

/** The notBefore and notAfter times of a Validity TLV, as their TLVs. */
export function validityTimes(validity: Uint8Array): { notBefore: Tlv; notAfter: Tlv } {
  const times = readChildren(readExact(validity, Tag.SEQUENCE, 'Validity').body);
  const notBefore = times[0];
  const notAfter = times[1];
  if (!notBefore || !notAfter) throw new EngineError('BAD_DER', 'Validity: missing a time');
  return { notBefore, notAfter };
}

/**
 * The base of each GeneralSubtree in the excludedSubtrees of the
 * certificate's NameConstraints: its GeneralName tag and content bytes.
 */
export function excludedBases(cert: ParsedCertificate): { tag: number; value: Uint8Array }[] {
  const ext = cert.extensions.find((e) => e.oid === Oid.nameConstraints);
  if (!ext) return [];
  const out: { tag: number; value: Uint8Array }[] = [];
  for (const part of readChildren(readExact(ext.value, Tag.SEQUENCE, 'NameConstraints').body)) {
    if (part.tag !== contextTag(1, true)) continue;
    for (const subtree of readChildren(part.body)) {
      const [base] = readChildren(expectTag(subtree, Tag.SEQUENCE, 'GeneralSubtree').body);
      if (base) out.push({ tag: base.tag, value: base.body });
    }
  }
  return out;
}
