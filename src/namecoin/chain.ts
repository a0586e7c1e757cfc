// Namecoin's chain, synthesized in RAM as namecoin/encaya (server/server.go
// lookupCert) and namecoin/ncgencert shape it: "Namecoin Root CA" -> ".bit
// TLD CA" -> "<domain> Domain AIA Parent CA", whose key comes from the name's
// TLS record and whose subject is the exact name a verifier asked for ->
// "<domain> Domain CA" (sent by the server) -> leaf. The first three are constrained to bit, bit and the domain
// respectively, and to no IP address (namecoinConstraints).

import { hash } from 'node:crypto';
import { Tag, contextTag, octetString, oid, oidToString, readChildren, readExact, seq, set, tlv, uintFromBytes, utf8 } from '../engine/asn1/der.js';
import { Oid, keyAlgorithmOid, nameAttribute } from '../engine/asn1/certificate.js';
import { encodeTime } from '../engine/asn1/time.js';
import { CA_BASIC, CA_USAGE, SIGNATURE, V3, akiValue, extension, keyIdentifier, signCertificate, type AnchorKey, type EngineDeps, type IssuedCert } from '../engine/crossSign.js';
import { isBitName } from './names.js';
import { parseStapled, StapledError, type Stapled } from './stapled.js';
import type { TlsRecord } from './records.js';
import { ALL_IPV4, ALL_IPV6, GeneralNameTag, buildNameConstraints, ipSubtree } from '../engine/nameConstraints.js';

/** The serialNumber every Namecoin-convention subject carries (before any stapled data). */
export const NAMECOIN_SERIAL = 'Namecoin TLS Certificate';
const AIA_SUFFIX = ' Domain AIA Parent CA';

export interface NamecoinCa {
  key: AnchorKey;
  cert: IssuedCert;
}

/** The in-RAM root and TLD CA; their keys never leave this object. */
export interface NamecoinAuthority {
  root: NamecoinCa;
  tld: NamecoinCa;
}

// Name ::= SEQUENCE OF RDN; here CN then serialNumber, one attribute per RDN.
function namecoinName(cn: string): Uint8Array {
  const atv = (id: string, value: Uint8Array): Uint8Array => set(seq(oid(id), value));
  return seq(atv(Oid.commonName, utf8(cn)), atv(Oid.serialNumber, tlv(Tag.PRINTABLE_STRING, new TextEncoder().encode(NAMECOIN_SERIAL))));
}

// Built once: the address half is the same for every Namecoin CA.
const ONLY_UNSPECIFIED_IPS = [ipSubtree(new Uint8Array(4), new Uint8Array(4).fill(0xff)), ipSubtree(new Uint8Array(16), new Uint8Array(16).fill(0xff))];
const ALL_IPS = [ALL_IPV4, ALL_IPV6];

/**
 * NameConstraints of every Namecoin CA ncfence makes: the domain's DNS names
 * and no IP address at all.
 *
 *   permittedSubtrees: dNSName <domain>, iPAddress 0.0.0.0/32, iPAddress ::/128
 *   excludedSubtrees:  iPAddress 0.0.0.0/0, iPAddress ::/0
 *
 * Permitting only a dNSName leaves every other name form open, and one of
 * them is a hole in NSS: with an iPAddress in the SAN, NSS's constraint check
 * skips the CN (lib/certdb/genname.c CERT_GetConstrainedCertificateNames) while
 * its hostname check, finding no dNSName in the SAN, falls back to the CN
 * (lib/certdb/certdb.c CERT_VerifyCertName). So whoever owns any .bit name
 * could issue "IP:127.0.0.1, CN=www.example.com" under its own Domain CA and
 * be www.example.com to every NSS program. Excluding all addresses closes
 * 4- and 16-octet ones; an iPAddress of another length matches no address
 * constraint in NSS (compareIPaddrN2C) and so escapes exclusions, which is
 * why addresses are also permitted only within two unspecified single
 * addresses, themselves excluded: every iPAddress then fails one test or the
 * other. A name in e-mail or URI form only makes NSS test the CN as a DNS name
 * (it counts dNSName and iPAddress entries only), so the dNSName permit covers
 * those. No Namecoin record vouches for an address, so nothing legitimate is lost.
 */
function namecoinConstraints(domain: string): Uint8Array {
  // `domain` is bit or a .bit name (names.ts), which may hold "_": not a policy's name (dnsSubtree).
  const permitted = seq(tlv(GeneralNameTag.dNSName, new TextEncoder().encode(domain)));
  return buildNameConstraints([permitted, ...ONLY_UNSPECIFIED_IPS], ALL_IPS);
}

interface IssueArgs {
  issuerName: Uint8Array;
  issuerKey: AnchorKey;
  issuerKeyId?: Uint8Array;
  subject: Uint8Array;
  spki: Uint8Array;
  notBefore: number;
  notAfter: number;
  permitted: string;
  serial: Uint8Array;
}

function issueCa(a: IssueArgs): IssuedCert {
  const keyId = keyIdentifier(a.spki);
  const exts = [CA_BASIC, CA_USAGE, extension(Oid.subjectKeyIdentifier, false, octetString(keyId))];
  if (a.issuerKeyId) exts.push(extension(Oid.authorityKeyIdentifier, false, akiValue(a.issuerKeyId)));
  exts.push(extension(Oid.nameConstraints, true, namecoinConstraints(a.permitted)));
  const serial = uintFromBytes(a.serial);
  const tbs = seq(
    V3,
    serial,
    SIGNATURE[a.issuerKey.type].alg,
    a.issuerName,
    seq(encodeTime(a.notBefore), encodeTime(a.notAfter)),
    a.subject,
    a.spki,
    tlv(contextTag(3, true), seq(...exts)),
  );
  return { der: signCertificate(tbs, a.issuerKey), tbs, subject: a.subject, issuer: a.issuerName, serial, spki: a.spki, keyId };
}

/** A fresh root and TLD CA for this service run, valid from a day ago for ten years. */
export function createAuthority(deps: EngineDeps): NamecoinAuthority {
  const now = deps.now().getTime();
  const from = now - 86_400_000;
  const to = now + 3650 * 86_400_000;
  const rootKey = deps.generateAnchorKey();
  const rootName = namecoinName('Namecoin Root CA');
  const byRoot = { issuerName: rootName, issuerKey: rootKey, notBefore: from, notAfter: to, permitted: 'bit' };
  const root = issueCa({ ...byRoot, subject: rootName, spki: rootKey.spki, serial: deps.serial() });
  const tldKey = deps.generateAnchorKey();
  const tld = issueCa({ ...byRoot, issuerKeyId: root.keyId, subject: namecoinName('.bit TLD CA'), spki: tldKey.spki, serial: deps.serial() });
  return { root: { key: rootKey, cert: root }, tld: { key: tldKey, cert: tld } };
}

export interface AiaRequest {
  /** The domain, e.g. example.bit (lowercase). */
  domain: string;
  /** The key stapled in the subject's serialNumber, when there is one (SubjectPublicKeyInfo DER). */
  stapledKey?: Uint8Array;
  /** Everything stapled there (key, owner signatures, notafter): namecoin/stapled.ts. */
  stapled?: Stapled;
  /** The name is a Namecoin AIA parent's, but its stapled data is malformed: refused, for this reason. */
  malformed?: string;
  /** The CN named the domain in other than lower case: certified mode (signed over the exact text) does not apply. */
  notLowercase?: boolean;
}

const STAPLED_PREFIX = '\n\nStapled: ';

/** Whether the name holds exactly one CN and one serialNumber (a second of either makes it ambiguous). */
function oneCnOneSerial(name: Uint8Array): boolean {
  let cns = 0;
  let serials = 0;
  for (const rdn of readChildren(readExact(name, Tag.SEQUENCE, 'Name').body)) {
    for (const atv of readChildren(rdn.body)) {
      const [type] = readChildren(atv.body);
      if (type?.tag !== Tag.OID) continue;
      const id = oidToString(type.body);
      if (id === Oid.commonName) cns++;
      else if (id === Oid.serialNumber) serials++;
    }
  }
  return cns === 1 && serials === 1;
}

/**
 * Reads a requested "<domain> Domain AIA Parent CA" name. Undefined when the
 * name is not one (a public CA's name, another Namecoin CA). A Namecoin name
 * whose stapled data is malformed comes back with `malformed` set. Hostile
 * input: bounded, never throws.
 */
export function parseAiaName(name: Uint8Array): AiaRequest | undefined {
  if (name.length > 16384) return undefined;
  let cn: string | undefined;
  let serial: string | undefined;
  let single: boolean;
  try {
    cn = nameAttribute(name, Oid.commonName);
    serial = nameAttribute(name, Oid.serialNumber);
    single = oneCnOneSerial(name);
  } catch {
    return undefined;
  }
  if (cn === undefined || serial === undefined || !serial.startsWith(NAMECOIN_SERIAL) || !cn.endsWith(AIA_SUFFIX)) return undefined;
  const asWritten = cn.slice(0, -AIA_SUFFIX.length);
  const domain = asWritten.toLowerCase();
  if (!isBitName(domain)) return undefined;
  const req: AiaRequest = { domain };
  if (asWritten !== domain) req.notLowercase = true;
  if (!single) return { ...req, malformed: 'the name holds more than one CN or serialNumber' };
  const rest = serial.slice(NAMECOIN_SERIAL.length);
  if (rest === '') return req;
  if (!rest.startsWith(STAPLED_PREFIX)) return { ...req, malformed: 'serialNumber continues with something other than "\\n\\nStapled: "' };
  try {
    const stapled = parseStapled(rest.slice(STAPLED_PREFIX.length));
    keyAlgorithmOid(stapled.key); // must be a SubjectPublicKeyInfo
    return { ...req, stapled, stapledKey: stapled.key };
  } catch (e) {
    return { ...req, malformed: e instanceof StapledError ? e.message : 'stapled "pubb64" is not a SubjectPublicKeyInfo' };
  }
}

/**
 * The keys a domain's records vouch for, for this request: DANE-TA (2) over
 * the SubjectPublicKeyInfo (selector 1); full keys (matching 0) directly,
 * SHA-256 (matching 1) only for a key stapled in the requested name. With a
 * stapled key, only that key (if some record vouches for it).
 */
export function vouchedKeys(records: readonly TlsRecord[], req: AiaRequest): Uint8Array[] {
  const usable = records.filter((r) => r.usage === 2 && r.selector === 1);
  const valid = (spki: Uint8Array): boolean => {
    try {
      keyAlgorithmOid(spki);
      return true;
    } catch {
      return false;
    }
  };
  if (req.stapledKey) {
    const k = req.stapledKey;
    const ok = usable.some((r) => (r.matchingType === 0 && Buffer.from(r.data).equals(k)) || (r.matchingType === 1 && hash('sha256', k, 'buffer').equals(r.data)));
    return ok ? [k] : [];
  }
  return usable.filter((r) => r.matchingType === 0 && valid(r.data)).map((r) => r.data);
}

/** AIA parent certificates for the exact requested name, one per vouched key, valid for about an hour. */
export function synthesizeAiaParents(auth: NamecoinAuthority, name: Uint8Array, req: AiaRequest, keys: readonly Uint8Array[], deps: EngineDeps): IssuedCert[] {
  const now = deps.now().getTime();
  // A stapled "notafter" caps the certificate (namecoin/safetlsa generate_domain_ca.go); the caller refuses a past one.
  const cap = req.stapled?.notAfter ? req.stapled.notAfter.seconds * 1000 : Infinity;
  const notAfter = Math.min(now + 3_600_000, cap);
  return keys.map((spki) =>
    issueCa({
      issuerName: auth.tld.cert.subject,
      issuerKey: auth.tld.key,
      issuerKeyId: auth.tld.cert.keyId,
      subject: name, // the exact bytes asked for: NSS matches issuers byte for byte
      spki,
      notBefore: now - 3_600_000,
      notAfter,
      permitted: req.domain,
      serial: deps.serial(),
    }),
  );
}
