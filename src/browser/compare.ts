// Compares two roots tokens as a browser sees them: the browser's own
// (stock) and what it uses with ncfence installed. The promise is that they
// differ only by the fence: for every root R the browser trusts, an anchor
// L(R) with exactly R's trust per purpose, R's kinds of trust record and R's
// policy attributes, whose only child is R' (R's subject and key, signed by
// L(R), excluding dNSName `bit` and rfc822Name `bit` and `.bit`); R itself no longer trusted; every other
// object of the token unchanged; nothing else trusted.
//
// This is a checker, written apart from the engine that builds views: it
// parses certificates with pkijs and node:crypto, not with src/engine.

import { X509Certificate } from 'node:crypto';
import * as pkijs from 'pkijs';
import { CKA, CKO, CKT, PKCS_TRUST_PURPOSE_ATTRS, TRUST_PURPOSE_ATTRS, pkcsTrustGrants, trustGrants } from '../pkcs11/constants.js';
import type { UpstreamObject } from '../pkcs11/objects.js';

const NSS_PURPOSES: Record<number, string> = {
  [CKA.TRUST_SERVER_AUTH]: 'serverAuth',
  [CKA.TRUST_CLIENT_AUTH]: 'clientAuth',
  [CKA.TRUST_CODE_SIGNING]: 'codeSigning',
  [CKA.TRUST_EMAIL_PROTECTION]: 'emailProtection',
};
const PKCS_PURPOSES: Record<number, string> = {
  [CKA.PKCS_TRUST_SERVER_AUTH]: 'serverAuth',
  [CKA.PKCS_TRUST_CLIENT_AUTH]: 'clientAuth',
  [CKA.PKCS_TRUST_CODE_SIGNING]: 'codeSigning',
  [CKA.PKCS_TRUST_EMAIL_PROTECTION]: 'emailProtection',
  [CKA.PKCS_TRUST_IPSEC_IKE]: 'ipsecIke',
  [CKA.PKCS_TRUST_TIME_STAMPING]: 'timeStamping',
  [CKA.PKCS_TRUST_OCSP_SIGNING]: 'ocspSigning',
};
const NSS_VALUES: Record<number, string> = {
  [CKT.NSS_TRUSTED_DELEGATOR]: 'anchor',
  [CKT.NSS_TRUSTED]: 'trusted',
  [CKT.NSS_MUST_VERIFY_TRUST]: 'must-verify',
  [CKT.NSS_TRUST_UNKNOWN]: 'unknown',
  [CKT.NSS_NOT_TRUSTED]: 'distrusted',
  [CKT.NSS_VALID_DELEGATOR]: 'valid-delegator',
};
const PKCS_VALUES: Record<number, string> = {
  [CKT.TRUST_ANCHOR]: 'anchor',
  [CKT.TRUSTED]: 'trusted',
  [CKT.TRUST_MUST_VERIFY_TRUST]: 'must-verify',
  [CKT.TRUST_UNKNOWN]: 'unknown',
  [CKT.NOT_TRUSTED]: 'distrusted',
};
const POLICY_ATTRS: [number, string][] = [
  [CKA.NSS_MOZILLA_CA_POLICY, 'MOZILLA_CA_POLICY'],
  [CKA.NSS_SERVER_DISTRUST_AFTER, 'SERVER_DISTRUST_AFTER'],
  [CKA.NSS_EMAIL_DISTRUST_AFTER, 'EMAIL_DISTRUST_AFTER'],
];

const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString('hex') : '-');
const ulong = (b: Uint8Array | undefined): number | undefined => (b && b.length === 8 ? Number(Buffer.from(b).readBigUInt64LE()) : undefined);
const classOf = (o: UpstreamObject): number | undefined => ulong(o.attrs.get(CKA.CLASS));
const labelOf = (o: UpstreamObject): string => Buffer.from(o.attrs.get(CKA.LABEL) ?? new Uint8Array()).toString('utf8').replace(/\0+$/, '');
const idKey = (o: UpstreamObject): string => `${hex(o.attrs.get(CKA.ISSUER))}/${hex(o.attrs.get(CKA.SERIAL_NUMBER))}`;

/** One certificate's trust as the token states it: purposes by name, the kinds of record, and whether it is an anchor. */
interface Trust {
  purposes: Map<string, string>;
  kinds: Set<'nss' | 'pkcs' | 'trusted-attr'>;
  anchor: boolean;
  records: UpstreamObject[];
}

/**
 * Adds one trust record's purposes, keyed by kind (nss:serverAuth,
 * pkcs:serverAuth), so records of two kinds never mask each other; a second
 * record of the same kind for one certificate is itself recorded as a purpose
 * ("nss:records" = 2), since NSS uses whichever it finds first (review).
 */
function recordTrust(t: UpstreamObject, into: Trust): void {
  const nss = classOf(t) === CKO.NSS_TRUST;
  const kind = nss ? 'nss' : 'pkcs';
  into.kinds.add(kind);
  into.records.push(t);
  const same = into.records.filter((r) => classOf(r) === classOf(t)).length;
  if (same > 1) into.purposes.set(`${kind}:records`, String(same));
  for (const type of nss ? TRUST_PURPOSE_ATTRS : PKCS_TRUST_PURPOSE_ATTRS) {
    const v = ulong(t.attrs.get(type));
    if (v === undefined) continue;
    const name = `${kind}:${(nss ? NSS_PURPOSES : PKCS_PURPOSES)[type] ?? `0x${type.toString(16)}`}`;
    const value = (nss ? NSS_VALUES : PKCS_VALUES)[v] ?? `0x${v.toString(16)}`;
    const before = into.purposes.get(name);
    into.purposes.set(name, before === undefined || before === value ? value : `${before}|${value}`);
    if (nss ? trustGrants(v) : pkcsTrustGrants(v)) into.anchor = true;
  }
  const stepUp = t.attrs.get(CKA.TRUST_STEP_UP_APPROVED);
  if (stepUp) into.purposes.set(`${kind}:stepUpApproved`, hex(stepUp));
}

interface Cert {
  obj: UpstreamObject;
  der: Uint8Array;
  x509: X509Certificate;
  /** Subject and key: the CA this certificate is, whoever signed it. */
  key: string;
  /** Subject and issuer as node:crypto prints them (read once: each read calls into OpenSSL). */
  subject: string;
  issuer: string;
  label: string;
  trust: Trust;
}

/** Certificates of a token with the trust its records give each (matched by issuer and serial, as NSS does). */
function certificates(objects: UpstreamObject[]): Cert[] {
  const byId = new Map<string, UpstreamObject[]>();
  for (const o of objects) {
    const c = classOf(o);
    if (c === CKO.NSS_TRUST || c === CKO.TRUST) byId.set(idKey(o), [...(byId.get(idKey(o)) ?? []), o]);
  }
  const out: Cert[] = [];
  for (const o of objects) {
    const der = o.attrs.get(CKA.VALUE);
    if (classOf(o) !== CKO.CERTIFICATE || !der) continue;
    const trust: Trust = { purposes: new Map(), kinds: new Set(), anchor: false, records: [] };
    for (const t of byId.get(idKey(o)) ?? []) recordTrust(t, trust);
    const trusted = o.attrs.get(CKA.TRUSTED);
    if (trusted && trusted.length === 1 && trusted[0] !== 0) {
      trust.kinds.add('trusted-attr');
      trust.anchor = true;
    }
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(Buffer.from(der));
    } catch {
      continue; // not a certificate this checker can read: it cannot be an anchor it accepts either
    }
    out.push({ obj: o, der, x509, key: keyOf(x509), subject: x509.subject, issuer: x509.issuer, label: labelOf(o), trust });
  }
  return out;
}

/** Names of one GeneralName type (2 dNSName, 1 rfc822Name) in the excludedSubtrees of a certificate's NameConstraints (pkijs). */
function excludedOfType(der: Uint8Array, type: number): string[] {
  const cert = pkijs.Certificate.fromBER(Buffer.from(der));
  const ext = cert.extensions?.find((e) => e.extnID === '2.5.29.30');
  const nc = ext?.parsedValue as pkijs.NameConstraints | undefined;
  return (nc?.excludedSubtrees ?? []).filter((s) => s.base.type === type).map((s) => String(s.base.value).toLowerCase());
}

/** dNSNames in the excludedSubtrees of a certificate's NameConstraints. */
export const excludedNames = (der: Uint8Array): string[] => excludedOfType(der, 2);

/**
 * What the fence of `fenced` lacks in a cross-certificate: the DNS name, and
 * the mail host and domain (RFC 5280 4.2.1.10: `bit` is only the host,
 * `.bit` every host under it), which Thunderbird's S/MIME needs.
 */
function missingExclusions(der: Uint8Array, fenced: string): string[] {
  const dns = excludedNames(der);
  const mail = excludedOfType(der, 1);
  return [...(dns.includes(fenced) ? [] : [`DNS ${fenced}`]), ...[fenced, `.${fenced}`].filter((m) => !mail.includes(m)).map((m) => `e-mail ${m}`)];
}

const keyOf = (c: X509Certificate): string => `${c.subject}\n${c.publicKey.export({ type: 'spki', format: 'der' }).toString('hex')}`;

function policyOf(o: UpstreamObject): Map<string, string> {
  return new Map(POLICY_ATTRS.map(([t, n]) => [n, hex(o.attrs.get(t))]));
}

function describeMap(m: Map<string, string>): string {
  return [...m].map(([k, v]) => `${k}=${v}`).sort().join(',');
}

export interface RootDifference {
  label: string;
  what: string;
}

export interface RootComparison {
  /** Roots the browser trusts on its own. */
  stockRoots: number;
  /** Of those, how many have an anchor L(R) with exactly R's trust and policy. */
  matched: number;
  missing: RootDifference[];
  /** Anchors that are no L(R) of a stock root (including stock roots trusted directly). */
  extra: RootDifference[];
  /** L(R) whose purposes, kinds of record or policy attributes differ from R's. */
  differences: RootDifference[];
  /** R' that does not exclude `bit` as a DNS name and as a mail host and domain. */
  unfenced: RootDifference[];
  /** Stock roots the installed token still trusts as themselves. */
  originalsTrusted: RootDifference[];
  /** Other objects (root list, distrust records, untrusted certificates) missing or changed. */
  otherObjects: RootDifference[];
}

export function totalDifferences(c: RootComparison): number {
  return c.missing.length + c.extra.length + c.differences.length + c.unfenced.length + c.originalsTrusted.length + c.otherObjects.length;
}

/** The fenced counterpart of each anchor in `installed`: L(R) -> R' (issued by L(R)'s key, the only such certificate). */
function crossOf(anchor: Cert, certs: Cert[]): Cert | undefined {
  const children = certs.filter((c) => c.issuer === anchor.subject && c.key !== anchor.key && c.x509.verify(anchor.x509.publicKey));
  return children.length === 1 ? children[0] : undefined;
}

function sameObject(a: UpstreamObject, b: UpstreamObject): boolean {
  if (a.attrs.size !== b.attrs.size) return false;
  for (const [t, v] of a.attrs) if (hex(b.attrs.get(t)) !== hex(v)) return false;
  return true;
}

const objectKey = (o: UpstreamObject): string => `${classOf(o)}/${idKey(o)}/${hex(o.attrs.get(CKA.VALUE))}/${labelOf(o)}`;

/** The browser's own token against the one it uses with ncfence; `bit` is the name the fence must exclude. */
export function compareRootPrograms(stock: UpstreamObject[], installed: UpstreamObject[], fenced = 'bit'): RootComparison {
  const stockCerts = certificates(stock);
  const roots = stockCerts.filter((c) => c.trust.anchor);
  const rootByKey = new Map(roots.map((r) => [r.key, r]));
  const seen = certificates(installed);
  const out: RootComparison = { stockRoots: roots.length, matched: 0, missing: [], extra: [], differences: [], unfenced: [], originalsTrusted: [], otherObjects: [] };
  const fencedRoots = new Set<Cert>();
  const crosses = new Set<Cert>();
  const anchorObjects = new Set<UpstreamObject>();
  // R' is CKA_TRUSTED for p11-kit consumers in views of system modules: a
  // certificate anchored by that attribute alone that is the cross-certificate
  // of an anchor with a trust record is the fenced root, not another anchor
  // (the anchor's own kinds of record show the difference, if any).
  const recordAnchors = seen.filter((c) => c.trust.anchor && (c.trust.kinds.has('nss') || c.trust.kinds.has('pkcs')));
  const crossOfRecordAnchor = new Set(recordAnchors.map((l) => crossOf(l, seen)).filter((c): c is Cert => c !== undefined));
  for (const a of seen.filter((c) => c.trust.anchor)) {
    if (!recordAnchors.includes(a) && crossOfRecordAnchor.has(a)) continue;
    const original = roots.find((r) => hex(r.der) === hex(a.der));
    const cross = original ? undefined : crossOf(a, seen);
    const root = cross ? rootByKey.get(cross.key) : undefined;
    if (original) {
      out.originalsTrusted.push({ label: original.label, what: 'the original root is still a trust anchor' });
      continue;
    }
    if (!cross || !root) {
      out.extra.push({ label: a.label, what: cross ? `anchor for ${cross.label}, which the browser does not trust on its own` : 'anchor with no single fenced cross-certificate under it' });
      continue;
    }
    if (fencedRoots.has(root)) {
      out.extra.push({ label: a.label, what: `a second anchor for ${root.label}` });
      continue;
    }
    fencedRoots.add(root);
    crosses.add(cross);
    anchorObjects.add(a.obj);
    for (const r of a.trust.records) anchorObjects.add(r);
    const lacks = missingExclusions(cross.der, fenced);
    if (lacks.length > 0) out.unfenced.push({ label: root.label, what: `its cross-certificate does not exclude ${lacks.join(', ')}` });
    const diffs: string[] = [];
    if (describeMap(a.trust.purposes) !== describeMap(root.trust.purposes)) diffs.push(`purposes ${describeMap(a.trust.purposes)} (browser: ${describeMap(root.trust.purposes)})`);
    if ([...a.trust.kinds].sort().join() !== [...root.trust.kinds].sort().join()) diffs.push(`trust records ${[...a.trust.kinds].sort()} (browser: ${[...root.trust.kinds].sort()})`);
    if (describeMap(policyOf(a.obj)) !== describeMap(policyOf(root.obj))) diffs.push(`policy ${describeMap(policyOf(a.obj))} (browser: ${describeMap(policyOf(root.obj))})`);
    if (diffs.length > 0) out.differences.push({ label: root.label, what: diffs.join('; ') });
    else out.matched++;
  }
  for (const r of roots) if (!fencedRoots.has(r) && !out.originalsTrusted.some((o) => o.label === r.label)) out.missing.push({ label: r.label, what: 'no fenced anchor for this root' });
  // Every stock object that does not grant trust (root list, distrust
  // records, certificates) must be there unchanged.
  const granting = new Set(roots.flatMap((r) => r.trust.records));
  const installedByKey = new Map<string, UpstreamObject[]>();
  for (const o of installed) installedByKey.set(objectKey(o), [...(installedByKey.get(objectKey(o)) ?? []), o]);
  for (const o of stock) {
    if (granting.has(o)) continue;
    if (!(installedByKey.get(objectKey(o)) ?? []).some((i) => sameObject(i, o))) out.otherObjects.push({ label: labelOf(o) || `class 0x${(classOf(o) ?? 0).toString(16)}`, what: 'missing or changed' });
  }
  // And nothing else: every installed object is a stock object, an anchor, its record or a cross-certificate.
  const stockByKey = new Map<string, UpstreamObject[]>();
  for (const o of stock) stockByKey.set(objectKey(o), [...(stockByKey.get(objectKey(o)) ?? []), o]);
  const crossObjects = new Set([...crosses].map((c) => c.obj));
  for (const o of installed) {
    if (anchorObjects.has(o) || crossObjects.has(o)) continue;
    if ((stockByKey.get(objectKey(o)) ?? []).some((s) => sameObject(s, o))) continue;
    if (seen.some((c) => c.obj === o && c.trust.anchor)) continue; // already counted above
    out.otherObjects.push({ label: labelOf(o) || `class 0x${(classOf(o) ?? 0).toString(16)}`, what: 'added' });
  }
  return out;
}

/** One line a person understands. */
export function summarize(c: RootComparison, browser: string): string {
  const n = totalDifferences(c);
  if (n === 0) return `all ${c.stockRoots} roots ${browser} trusts on its own are fenced with the same purposes and policy; nothing missing, nothing added`;
  const parts = [
    c.missing.length && `${c.missing.length} of its roots missing`,
    c.extra.length && `${c.extra.length} anchors it does not have`,
    c.originalsTrusted.length && `${c.originalsTrusted.length} roots trusted unfenced`,
    c.unfenced.length && `${c.unfenced.length} cross-certificates without the .bit exclusion`,
    c.differences.length && `${c.differences.length} roots with other purposes or policy`,
    c.otherObjects.length && `${c.otherObjects.length} other objects missing, changed or added`,
  ].filter(Boolean);
  return `${n} differences from the ${c.stockRoots} roots ${browser} trusts on its own: ${parts.join(', ')}`;
}
