// Turns an upstream snapshot into the objects of the compiled view.
//
// The module hides every upstream object that grants trust (grantsTrust, the
// module's own rule) and serves the view's objects beside the rest.
// So anchors come only from here, and everything here is fenced.

import { hash } from 'node:crypto';
import { Tag, readChildren, readExact } from '../engine/asn1/der.js';
import { GeneralNameTag } from '../engine/nameConstraints.js';
import { fenceRoot, type EngineDeps, type IssuedCert } from '../engine/crossSign.js';
import { EngineError } from '../engine/errors.js';
import {
  Oid,
  algorithmOid,
  excludedBases,
  keyAlgorithmOid,
  nameAttribute,
  parseCertificate,
  validityTimes,
  type ParsedCertificate,
} from '../engine/asn1/certificate.js';
import { parseTime } from '../engine/asn1/time.js';
import type { KeyFamily, Policy, Purpose, RootAction } from '../policy.js';
import { AUDIENCE, CKA, CKM_SHA256, CKM_SHA_1, CKO, CKT, PKCS_TRUST_PURPOSE_ATTRS, TRUST_PURPOSE_ATTRS, pkcsTrustGrants, trustGrants } from '../pkcs11/constants.js';
import {
  anchorLabel,
  boolBytes,
  boolValue,
  certObject,
  nssTrustRecord,
  pkcsTrustRecord,
  ulongBytes,
  ulongValue,
  type Attribute,
  type UpstreamObject,
  type ViewObject,
} from '../pkcs11/objects.js';
import type { UpstreamSnapshot } from './upstream.js';
import { loadBinding } from '../service/binding.js';

export interface RootDecision {
  label: string;
  sha256: string;
  action: RootAction;
  /** The policy rule that decided: an override id, a select.* key, or "default". */
  rule: string;
  reason: string;
}

export interface PlanSummary {
  upstreamObjects: number;
  rootsFenced: number;
  rootsDropped: RootDecision[];
  /** Roots kept as upstream had them because they already exclude every policy name. */
  rootsPassed: RootDecision[];
  decisions: RootDecision[];
  /** Upstream objects the module passes through unchanged (distrust records, root list, plain certificates). */
  passedThrough: number;
  /** Upstream objects the module hides because they grant trust. */
  hidden: number;
  /** Upstream records that keep distrusting a certificate (NOT_TRUSTED on some purpose). */
  distrustRecords: number;
  viewObjects: number;
}

export interface Plan {
  objects: ViewObject[];
  summary: PlanSummary;
}

const cls = (o: UpstreamObject): number | undefined => ulongValue(o.attrs.get(CKA.CLASS));
// Map keys and equality only (never shown): latin1 maps bytes to a string one
// for one and is cheaper than hex.
const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1') : '');
/** Key of a certificate or trust record: slot, issuer (length-prefixed, so the split is unambiguous) and serial. */
const certKey = (o: UpstreamObject): string => {
  const issuer = o.attrs.get(CKA.ISSUER);
  return `${o.slot}/${issuer?.length ?? -1}/${hex(issuer)}${hex(o.attrs.get(CKA.SERIAL_NUMBER))}`;
};
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (s: string): Uint8Array => encoder.encode(s);

/** Whether an upstream object makes something a trust anchor: the module's own rule (addon/trust.c), by which it hides such objects. */
export function grantsTrust(o: UpstreamObject): boolean {
  const b = loadBinding();
  const attrs: [number, Uint8Array][] = []; // only what the rule reads: a loop, it runs for every object
  for (const t of b.trustAttributes) {
    const v = o.attrs.get(t);
    if (v !== undefined) attrs.push([t, v]);
  }
  return b.grantsTrust(attrs);
}

/**
 * Whether any of `purposes` on `o` has a value `matches` accepts (a value
 * that is not a CK_ULONG counts as -1). A loop, not .some() with a closure:
 * it runs for every upstream object, mostly in V8's interpreter.
 */
function anyPurpose(o: UpstreamObject, purposes: readonly number[], matches: (value: number) => boolean): boolean {
  for (let i = 0; i < purposes.length; i++) {
    const v = o.attrs.get(purposes[i]!);
    if (v !== undefined && matches(ulongValue(v) ?? -1)) return true;
  }
  return false;
}

const isNssNotTrusted = (v: number): boolean => v === CKT.NSS_NOT_TRUSTED;
const isNotTrusted = (v: number): boolean => v === CKT.NOT_TRUSTED;

function distrusts(o: UpstreamObject): boolean {
  switch (cls(o)) {
    case CKO.NSS_TRUST:
      return anyPurpose(o, TRUST_PURPOSE_ATTRS, isNssNotTrusted);
    case CKO.TRUST:
      return anyPurpose(o, PKCS_TRUST_PURPOSE_ATTRS, isNotTrusted);
    default:
      return false;
  }
}

/** Whether a trust record's certificate hash (if it has one) matches the certificate. */
function hashMatches(t: UpstreamObject, value: Uint8Array): boolean {
  // NSS: CKA_CERT_SHA1_HASH. PKCS#11 3.2: CKA_HASH_OF_CERTIFICATE under CKA_NAME_HASH_ALGORITHM (SHA-1 when absent).
  const nss = cls(t) === CKO.NSS_TRUST;
  const h = t.attrs.get(nss ? CKA.CERT_SHA1_HASH : CKA.HASH_OF_CERTIFICATE);
  if (!h) return true;
  const alg = nss || !t.attrs.has(CKA.NAME_HASH_ALGORITHM) ? CKM_SHA_1 : ulongValue(t.attrs.get(CKA.NAME_HASH_ALGORITHM));
  if (alg !== CKM_SHA_1 && alg !== CKM_SHA256) return false; // a hash this engine cannot check: not a root it fences
  return hex(h) === hex(hash(alg === CKM_SHA256 ? 'sha256' : 'sha1', value, 'buffer'));
}

interface Root {
  cert: UpstreamObject;
  trust?: UpstreamObject;
}

/** Certificates to fence: those with a granting trust record (NSS or PKCS#11 3.2), or CKA_TRUSTED. */
function findRoots(objects: UpstreamObject[], dropped: RootDecision[]): Root[] {
  // Loops here and below index rather than use for...of or spreads: a build
  // runs them once per process, mostly in V8's interpreter (see asn1/der.ts).
  const certs = new Map<string, UpstreamObject>();
  for (let i = 0; i < objects.length; i++) {
    const o = objects[i]!;
    if (cls(o) === CKO.CERTIFICATE) certs.set(certKey(o), o);
  }
  const roots = new Map<UpstreamObject, Root>();
  // Certificates whose granting record did not check out: never roots by way
  // of CKA_TRUSTED either (that would trust them for every purpose).
  const refused = new Set<UpstreamObject>();
  for (let i = 0; i < objects.length; i++) {
    const t = objects[i]!;
    const c = cls(t);
    if ((c !== CKO.NSS_TRUST && c !== CKO.TRUST) || !grantsTrust(t)) continue;
    const cert = certs.get(certKey(t));
    const value = cert?.attrs.get(CKA.VALUE);
    if (!cert || !value) {
      dropped.push({ label: labelOf(t), sha256: '', action: 'drop', rule: 'orphan', reason: 'trust record without a matching certificate' });
      continue;
    }
    if (!hashMatches(t, value)) {
      refused.add(cert);
      dropped.push({
        label: labelOf(t),
        sha256: hash('sha256', value, 'hex'),
        action: 'drop',
        rule: 'orphan',
        reason: 'trust record whose certificate hash does not match, or uses a hash algorithm ncfence cannot check',
      });
      continue;
    }
    // A certificate with both kinds of record (an upstream in transition)
    // keeps the first; the module hides both.
    if (!roots.has(cert)) roots.set(cert, { cert, trust: t });
  }
  // Certificates upstream marks CKA_TRUSTED (p11-kit) without a trust record;
  // a malformed CKA_TRUSTED is not a root (the module hides the object).
  for (let i = 0; i < objects.length; i++) {
    const o = objects[i]!;
    if (cls(o) === CKO.CERTIFICATE && boolValue(o.attrs.get(CKA.TRUSTED)) === true && !roots.has(o) && !refused.has(o)) roots.set(o, { cert: o });
  }
  return Array.from(roots.values());
}

function labelOf(o: UpstreamObject): string {
  const l = o.attrs.get(CKA.LABEL);
  return l ? decoder.decode(l).replace(/\0+$/, '') : '(no label)';
}

function append<T>(to: T[], more: readonly T[]): T[] {
  for (let i = 0; i < more.length; i++) to.push(more[i]!);
  return to;
}

function copyAttrs(o: UpstreamObject | undefined, types: readonly number[]): Attribute[] {
  const out: Attribute[] = [];
  for (let i = 0; i < types.length; i++) {
    const t = types[i]!;
    const v = o?.attrs.get(t);
    if (v !== undefined) out.push([t, v]);
  }
  return out;
}

// Trust values every record of a kind shares (never mutated).
const DELEGATOR = ulongBytes(CKT.NSS_TRUSTED_DELEGATOR);
const MUST_VERIFY = ulongBytes(CKT.NSS_MUST_VERIFY_TRUST);
const PKCS_MUST_VERIFY = ulongBytes(CKT.TRUST_MUST_VERIFY_TRUST);

// PKCS#11 3.2 purposes and values as NSS trust attributes and values.
const PKCS_TO_NSS_ATTR = new Map<number, number>([
  [CKA.PKCS_TRUST_SERVER_AUTH, CKA.TRUST_SERVER_AUTH],
  [CKA.PKCS_TRUST_CLIENT_AUTH, CKA.TRUST_CLIENT_AUTH],
  [CKA.PKCS_TRUST_CODE_SIGNING, CKA.TRUST_CODE_SIGNING],
  [CKA.PKCS_TRUST_EMAIL_PROTECTION, CKA.TRUST_EMAIL_PROTECTION],
]);
const PKCS_TO_NSS_VALUE = new Map<number, number>([
  [CKT.TRUST_ANCHOR, CKT.NSS_TRUSTED_DELEGATOR],
  [CKT.TRUSTED, CKT.NSS_TRUSTED],
  [CKT.TRUST_MUST_VERIFY_TRUST, CKT.NSS_MUST_VERIFY_TRUST],
  [CKT.NOT_TRUSTED, CKT.NSS_NOT_TRUSTED],
  [CKT.TRUST_UNKNOWN, CKT.NSS_TRUST_UNKNOWN],
]);

const NSS_PURPOSES_AND_STEP_UP: readonly number[] = [...TRUST_PURPOSE_ATTRS, CKA.TRUST_STEP_UP_APPROVED];

/** R's purposes as NSS trust attributes, whichever kind of record R has. */
function nssPurposes(rootTrust: UpstreamObject): Attribute[] {
  if (cls(rootTrust) !== CKO.TRUST) return copyAttrs(rootTrust, NSS_PURPOSES_AND_STEP_UP);
  const out: Attribute[] = [];
  for (const [pkcs, nss] of PKCS_TO_NSS_ATTR) {
    const v = ulongValue(rootTrust.attrs.get(pkcs));
    const mapped = v === undefined ? undefined : PKCS_TO_NSS_VALUE.get(v);
    if (mapped !== undefined) out.push([nss, ulongBytes(mapped)]);
  }
  return out;
}

/** NSS trust record for the anchor: R's purposes, the anchor's identity and hashes. */
function anchorTrust(anchor: IssuedCert, label: Uint8Array, rootTrust: UpstreamObject | undefined, trustedFor: readonly Purpose[]): Attribute[] {
  // A root trusted only by CKA_TRUSTED (no record says for what): the
  // policy's purposes, the others MUST_VERIFY.
  const purposes: Attribute[] = rootTrust
    ? nssPurposes(rootTrust)
    : (Object.keys(PURPOSE_ATTR) as Purpose[]).map((p) => [PURPOSE_ATTR[p], trustedFor.includes(p) ? DELEGATOR : MUST_VERIFY]);
  return nssTrustRecord(anchor, label, purposes);
}

const POLICY_ATTRS: readonly number[] = [CKA.NSS_MOZILLA_CA_POLICY, CKA.NSS_SERVER_DISTRUST_AFTER, CKA.NSS_EMAIL_DISTRUST_AFTER, CKA.CERTIFICATE_CATEGORY];
const CATEGORY_ATTR: readonly number[] = [CKA.CERTIFICATE_CATEGORY];

const PURPOSE_ATTR: Record<Purpose, number> = {
  serverAuth: CKA.TRUST_SERVER_AUTH,
  clientAuth: CKA.TRUST_CLIENT_AUTH,
  emailProtection: CKA.TRUST_EMAIL_PROTECTION,
  codeSigning: CKA.TRUST_CODE_SIGNING,
};
const PKCS_PURPOSE_ATTR: Record<Purpose, number> = {
  serverAuth: CKA.PKCS_TRUST_SERVER_AUTH,
  clientAuth: CKA.PKCS_TRUST_CLIENT_AUTH,
  emailProtection: CKA.PKCS_TRUST_EMAIL_PROTECTION,
  codeSigning: CKA.PKCS_TRUST_CODE_SIGNING,
};

/** R's trust record with every purpose outside `trustedFor` made MUST_VERIFY; 'none' if nothing is left, undefined if R has no record. */
function keptTrust(root: Root, trustedFor: readonly Purpose[]): UpstreamObject | undefined | 'none' {
  if (!root.trust) return undefined;
  const pkcs = cls(root.trust) === CKO.TRUST;
  const kept = new Set(trustedFor.map((p) => (pkcs ? PKCS_PURPOSE_ATTR : PURPOSE_ATTR)[p]));
  const grants = pkcs ? pkcsTrustGrants : trustGrants;
  let attrs = root.trust.attrs; // copied only when a purpose has to change
  let any = false;
  const purposes = pkcs ? PKCS_TRUST_PURPOSE_ATTRS : TRUST_PURPOSE_ATTRS;
  for (let i = 0; i < purposes.length; i++) {
    const t = purposes[i]!;
    const v = attrs.get(t);
    if (v === undefined) continue;
    if (v.length !== 8) throw new EngineError('UNSUPPORTED_ROOT', `trust record has a ${v.length}-byte value for 0x${t.toString(16)}, expected a CK_ULONG`);
    if (!grants(ulongValue(v)!)) continue;
    if (kept.has(t)) {
      any = true;
    } else {
      if (attrs === root.trust.attrs) attrs = new Map(attrs);
      attrs.set(t, pkcs ? PKCS_MUST_VERIFY : MUST_VERIFY);
    }
  }
  if (!any) return 'none';
  return attrs === root.trust.attrs ? root.trust : { slot: root.trust.slot, attrs };
}

export interface PlanOptions {
  /**
   * Give each L(R) and R' exactly the kinds of trust marking R had (browser
   * targets): an NSS trust record only when R had one, a PKCS#11 3.2 record
   * only when R had one, CKA_TRUSTED only when R was CKA_TRUSTED. Without
   * it, every L(R) also gets an NSS record and every L(R) and R'
   * CKA_TRUSTED, for the mixed consumers of system modules (NSS and p11-kit
   * programs reading the same module).
   */
  mirrorTrustKinds?: boolean;
}

function fenceObjects(root: Root, parsed: ParsedCertificate, sha256: string, label: string, trust: UpstreamObject | undefined, policy: Policy, deps: EngineDeps, opts: PlanOptions): ViewObject[] {
  const { anchor, cross, crossNss } = fenceRoot(parsed, policy.excludedSubtrees, deps, sha256, policy.nssSubtrees);
  const slot = root.cert.slot;
  const anchorKeyId = anchor.keyId!;
  const rootKeyId = cross.keyId ?? root.cert.attrs.get(CKA.ID) ?? new Uint8Array(0);
  const anchorText = text(anchorLabel(label));
  const mirror = opts.mirrorTrustKinds === true;
  // CKA_TRUSTED on L(R) and R' unless the view mirrors an R that had none.
  const trusted = !mirror || grantsTrust(root.cert) ? true : undefined;
  const pkcsRecord = trust !== undefined && cls(trust) === CKO.TRUST;
  const objects: ViewObject[] = [{ slot, attrs: append(certObject(anchor, anchorText, anchorKeyId, trusted), copyAttrs(root.cert, POLICY_ATTRS)) }];
  if (!mirror || !pkcsRecord) objects.push({ slot, attrs: anchorTrust(anchor, anchorText, trust, policy.trustedFor) });
  const crossObject = (c: IssuedCert, audience?: number): ViewObject => {
    const attrs = append(certObject(c, root.cert.attrs.get(CKA.LABEL) ?? text(label), rootKeyId, trusted), copyAttrs(root.cert, CATEGORY_ATTR));
    if (audience !== undefined) attrs.push([CKA.NCFENCE_AUDIENCE, ulongBytes(audience)]);
    return { slot, attrs };
  };
  // Two forms of R' (docs/policy.md): the module serves exactly one of them
  // in any process, the NSS form unless it knows NSS is absent.
  if (crossNss) objects.push(crossObject(cross, AUDIENCE.PLAIN_FORM), crossObject(crossNss, AUDIENCE.NSS_FORM));
  else objects.push(crossObject(cross));
  // A PKCS#11 3.2 trust record for the anchor, beside the NSS one, when R's own
  // record is of that kind: consumers that read only CKO_TRUST find L(R) too.
  if (pkcsRecord) objects.push({ slot, attrs: pkcsTrustRecord(anchor, anchorText, copyAttrs(trust, PKCS_TRUST_PURPOSE_ATTRS)) });
  return objects;
}

/** Upstream's own objects for a root the policy passes: the module hides them, so the view serves copies. */
function passObjects(root: Root): ViewObject[] {
  const out: ViewObject[] = [];
  if (root.trust) out.push({ slot: root.trust.slot, attrs: [...root.trust.attrs.entries()] });
  if (grantsTrust(root.cert)) out.push({ slot: root.cert.slot, attrs: [...root.cert.attrs.entries()] });
  return out;
}

/** R as upstream has it but without CKA_TRUSTED, for upstreams that mark R itself as an anchor (p11-kit). */
function untrustedCopy(root: Root): ViewObject[] {
  if (!grantsTrust(root.cert)) return [];
  return [{ slot: root.cert.slot, attrs: [...root.cert.attrs.entries()].map(([t, v]) => [t, t === CKA.TRUSTED ? boolBytes(false) : v]) }];
}

const WEAK_SIGNATURES = new Set<string>([Oid.md2WithRsa, Oid.md5WithRsa, Oid.sha1WithRsa, Oid.ecdsaWithSha1, Oid.dsaWithSha1]);

function keyFamily(cert: ParsedCertificate): KeyFamily {
  switch (keyAlgorithmOid(cert.spki)) {
    case Oid.rsaEncryption:
      return 'rsa';
    case Oid.rsassaPss:
      return 'rsa-pss';
    case Oid.ecPublicKey:
      return 'ec';
    default:
      return 'other';
  }
}

/**
 * A GeneralSubtree base as a comparable key: its tag and content, names
 * (rfc822Name, dNSName: IA5String) lower-cased, as verifiers compare them.
 */
function baseKey(tag: number, value: Uint8Array): string {
  const ia5 = tag === GeneralNameTag.rfc822Name || tag === GeneralNameTag.dNSName;
  return `${tag}:${ia5 ? new TextDecoder().decode(value).toLowerCase() : Buffer.from(value).toString('hex')}`;
}

/**
 * Whether the root's own NameConstraints already exclude every subtree the
 * policy puts in any R' (DNS names, their absolute forms, mail domains and
 * IP ranges, the NSS form's included): only then may R pass unfenced.
 */
export function alreadyExcludes(cert: ParsedCertificate, policy: Pick<Policy, 'excludedSubtrees' | 'nssSubtrees'>): boolean {
  const have = new Set(excludedBases(cert).map((b) => baseKey(b.tag, b.value)));
  return [...policy.excludedSubtrees, ...policy.nssSubtrees].every((s) => {
    const [base] = readChildren(readExact(s, Tag.SEQUENCE, 'GeneralSubtree').body);
    return base !== undefined && have.has(baseKey(base.tag, base.body));
  });
}

type Verdict = Pick<RootDecision, 'action' | 'rule' | 'reason'>;

const FENCE: Verdict = { action: 'fence', rule: 'default', reason: 'trusted root' };

/** Whether every select rule, whatever rules there are, says "fence". */
function fencesEverything(s: Policy['select']): boolean {
  return Object.values(s).every((v: RootAction | Record<string, RootAction>) => (typeof v === 'string' ? v === 'fence' : Object.values(v).every((a) => a === 'fence')));
}

/** The policy's verdict for one root: overrides first, then the select rules in a fixed order. */
function decide(cert: ParsedCertificate, sha256: string, policy: Policy, now: Date): Verdict {
  const o = policy.overrides.find((x) => x.sha256 === sha256);
  if (o) return { action: o.action, rule: o.id, reason: o.reason };
  const s = policy.select;
  // Each property is computed only when its rule could change the outcome
  // (the default policy fences everything, so it computes none of them,
  // and skips making the list too).
  if (fencesEverything(s)) return FENCE;
  const checks: [string, RootAction, () => boolean, string][] = [
    ['expired', s.expired, () => parseTime(validityTimes(cert.validity).notAfter) < now.getTime(), 'root has expired'],
    ['alreadyExcluded', s.alreadyExcluded, () => alreadyExcludes(cert, policy), 'root already excludes every policy name'],
    ['weakSignature', s.weakSignature, () => WEAK_SIGNATURES.has(algorithmOid(cert.signatureAlgorithm)), 'self-signature uses MD2, MD5 or SHA-1'],
    ['noCommonName', s.noCommonName, () => nameAttribute(cert.subject, Oid.commonName) === undefined, 'subject has no CN'],
  ];
  if (Object.values(s.keyTypes).some((a) => a !== 'fence')) {
    const family = keyFamily(cert);
    checks.unshift([`keyTypes.${family}`, s.keyTypes[family], () => true, `${family} key`]);
  }
  for (let i = 0; i < checks.length; i++) {
    const c = checks[i]!;
    if (c[1] !== 'fence' && c[2]()) return { action: c[1], rule: `select.${c[0]}`, reason: c[3] };
  }
  return FENCE;
}

function planRoot(root: Root, policy: Policy, deps: EngineDeps, opts: PlanOptions): { decision: RootDecision; objects: ViewObject[] } {
  const value = root.cert.attrs.get(CKA.VALUE) ?? new Uint8Array(0);
  const base = { label: labelOf(root.cert), sha256: hash('sha256', value, 'hex') };
  const drop = (rule: string, reason: string) => ({ decision: { ...base, action: 'drop' as const, rule, reason }, objects: untrustedCopy(root) });
  let verdict: Verdict;
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(value);
    verdict = decide(cert, base.sha256, policy, deps.now());
  } catch (e) {
    if (!(e instanceof EngineError)) throw e;
    return drop('malformed', e.message);
  }
  if (verdict.action === 'drop') return drop(verdict.rule, verdict.reason);
  if (verdict.action === 'pass') {
    if (!alreadyExcludes(cert, policy)) {
      throw new EngineError('POLICY', `${policy.file}: ${verdict.rule}: "pass" would leave root ${base.label} (${base.sha256}) unfenced: its own NameConstraints do not exclude every name in the policy's "excluded"${policy.nssSubtrees.length ? ' and "excludedForNss"' : ''}`);
    }
    return { decision: { ...base, ...verdict }, objects: passObjects(root) };
  }
  try {
    const trust = keptTrust(root, policy.trustedFor);
    if (trust === 'none' || (!root.trust && policy.trustedFor.length === 0)) return drop('trustedFor', 'trusted only for purposes outside the policy\'s trustedFor');
    return { decision: { ...base, ...verdict }, objects: append(fenceObjects(root, cert, base.sha256, base.label, trust, policy, deps, opts), untrustedCopy(root)) };
  } catch (e) {
    if (!(e instanceof EngineError)) throw e;
    return drop('engine', e.message);
  }
}

/** Applies the policy to every root upstream trusts; a root that is not fenced or passed is never trusted. */
export function planView(snapshot: Pick<UpstreamSnapshot, 'objects'> & Partial<UpstreamSnapshot>, policy: Policy, deps: EngineDeps, opts: PlanOptions = {}): Plan {
  const orphans: RootDecision[] = [];
  const objects: ViewObject[] = [];
  const decisions: RootDecision[] = [];
  const roots = findRoots(snapshot.objects, orphans);
  for (let i = 0; i < roots.length; i++) {
    const r = planRoot(roots[i]!, policy, deps, opts);
    decisions.push(r.decision);
    append(objects, r.objects);
  }
  decisions.push(...orphans);
  const hidden = snapshot.objects.filter(grantsTrust).length;
  return {
    objects,
    summary: {
      upstreamObjects: snapshot.objects.length,
      rootsFenced: decisions.filter((d) => d.action === 'fence').length,
      rootsDropped: decisions.filter((d) => d.action === 'drop'),
      rootsPassed: decisions.filter((d) => d.action === 'pass'),
      decisions,
      passedThrough: snapshot.objects.length - hidden,
      hidden,
      distrustRecords: snapshot.objects.filter(distrusts).length,
      viewObjects: objects.length,
    },
  };
}
