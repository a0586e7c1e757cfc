// Turns an upstream snapshot into the objects of the compiled view.
//
// The module hides every upstream object that grants trust (see grantsTrust,
// mirrored in addon/classify.c) and serves the view's objects beside the rest.
// So anchors come only from here, and everything here is fenced.

import { createHash } from 'node:crypto';
import { fenceRoot, type EngineDeps } from '../engine/crossSign.js';
import { EngineError } from '../engine/errors.js';
import { subjectKeyId, type ParsedCertificate } from '../engine/asn1/certificate.js';
import { CKA, CKC_X_509, CKO, CKT, TRUST_PURPOSE_ATTRS, trustGrants } from '../pkcs11/constants.js';
import { boolBytes, boolValue, ulongBytes, ulongValue, type UpstreamObject, type UpstreamSnapshot } from './upstream.js';

export interface ViewObject {
  slot: number;
  attrs: [type: number, value: Uint8Array][];
}

export interface DroppedRoot {
  label: string;
  sha256: string;
  reason: string;
}

export interface PlanSummary {
  upstreamObjects: number;
  rootsFenced: number;
  rootsDropped: DroppedRoot[];
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
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');
const sha1 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha1').update(b).digest());
const md5 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('md5').update(b).digest());
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Whether an upstream object makes something a trust anchor; the module applies the same rule. */
export function grantsTrust(o: UpstreamObject): boolean {
  switch (cls(o)) {
    case CKO.CERTIFICATE:
      return boolValue(o.attrs.get(CKA.TRUSTED)) === true;
    case CKO.NSS_TRUST:
      return TRUST_PURPOSE_ATTRS.some((t) => {
        const v = o.attrs.get(t);
        return v !== undefined && trustGrants(ulongValue(v) ?? -1);
      });
    case CKO.X_TRUST_ASSERTION: {
      const v = ulongValue(o.attrs.get(CKA.X_ASSERTION_TYPE));
      return v !== CKT.X_DISTRUSTED_CERTIFICATE;
    }
    default:
      return false;
  }
}

function distrusts(o: UpstreamObject): boolean {
  return cls(o) === CKO.NSS_TRUST && TRUST_PURPOSE_ATTRS.some((t) => ulongValue(o.attrs.get(t)) === CKT.NSS_NOT_TRUSTED);
}

interface Root {
  cert: UpstreamObject;
  trust?: UpstreamObject;
}

/** Certificates to fence: those with a granting NSS trust record, or CKA_TRUSTED. */
function findRoots(objects: UpstreamObject[], dropped: DroppedRoot[]): Root[] {
  const certs = new Map<string, UpstreamObject>();
  for (const o of objects) {
    if (cls(o) === CKO.CERTIFICATE) certs.set(`${o.slot}/${hex(o.attrs.get(CKA.ISSUER))}/${hex(o.attrs.get(CKA.SERIAL_NUMBER))}`, o);
  }
  const roots = new Map<UpstreamObject, Root>();
  for (const t of objects) {
    if (cls(t) !== CKO.NSS_TRUST || !grantsTrust(t)) continue;
    const cert = certs.get(`${t.slot}/${hex(t.attrs.get(CKA.ISSUER))}/${hex(t.attrs.get(CKA.SERIAL_NUMBER))}`);
    const value = cert?.attrs.get(CKA.VALUE);
    const hash = t.attrs.get(CKA.CERT_SHA1_HASH);
    if (!cert || !value || (hash && hex(hash) !== hex(sha1(value)))) {
      dropped.push({ label: labelOf(t), sha256: '', reason: 'trust record without a matching certificate' });
      continue;
    }
    roots.set(cert, { cert, trust: t });
  }
  for (const o of objects) {
    if (cls(o) === CKO.CERTIFICATE && grantsTrust(o) && !roots.has(o)) roots.set(o, { cert: o });
  }
  return [...roots.values()];
}

function labelOf(o: UpstreamObject): string {
  const l = o.attrs.get(CKA.LABEL);
  return l ? new TextDecoder().decode(l).replace(/\0+$/, '') : '(no label)';
}

function copyAttrs(o: UpstreamObject | undefined, types: number[]): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  for (const t of types) {
    const v = o?.attrs.get(t);
    if (v !== undefined) out.push([t, v]);
  }
  return out;
}

function certObject(cert: ParsedCertificate, label: string, id: Uint8Array): [number, Uint8Array][] {
  return [
    [CKA.CLASS, ulongBytes(CKO.CERTIFICATE)],
    [CKA.TOKEN, boolBytes(true)],
    [CKA.PRIVATE, boolBytes(false)],
    [CKA.MODIFIABLE, boolBytes(false)],
    [CKA.LABEL, text(label)],
    [CKA.CERTIFICATE_TYPE, ulongBytes(CKC_X_509)],
    [CKA.SUBJECT, cert.subject],
    [CKA.ID, id],
    [CKA.ISSUER, cert.issuer],
    [CKA.SERIAL_NUMBER, cert.serial],
    [CKA.VALUE, cert.der],
    [CKA.TRUSTED, boolBytes(true)],
  ];
}

/** NSS trust record for the anchor: R's purposes, the anchor's identity and hashes. */
function anchorTrust(anchor: ParsedCertificate, label: string, rootTrust: UpstreamObject | undefined): [number, Uint8Array][] {
  const purposes: [number, Uint8Array][] = rootTrust
    ? copyAttrs(rootTrust, [...TRUST_PURPOSE_ATTRS, CKA.TRUST_STEP_UP_APPROVED])
    : [CKA.TRUST_SERVER_AUTH, CKA.TRUST_CLIENT_AUTH, CKA.TRUST_EMAIL_PROTECTION, CKA.TRUST_CODE_SIGNING].map((t) => [
        t,
        ulongBytes(CKT.NSS_TRUSTED_DELEGATOR),
      ]);
  return [
    [CKA.CLASS, ulongBytes(CKO.NSS_TRUST)],
    [CKA.TOKEN, boolBytes(true)],
    [CKA.PRIVATE, boolBytes(false)],
    [CKA.MODIFIABLE, boolBytes(false)],
    [CKA.LABEL, text(label)],
    [CKA.ISSUER, anchor.subject],
    [CKA.SERIAL_NUMBER, anchor.serial],
    [CKA.CERT_SHA1_HASH, sha1(anchor.der)],
    [CKA.CERT_MD5_HASH, md5(anchor.der)],
    ...purposes,
  ];
}

const POLICY_ATTRS = [CKA.NSS_MOZILLA_CA_POLICY, CKA.NSS_SERVER_DISTRUST_AFTER, CKA.NSS_EMAIL_DISTRUST_AFTER, CKA.CERTIFICATE_CATEGORY];

function fenceObjects(root: Root, excluded: readonly Uint8Array[], deps: EngineDeps): ViewObject[] {
  const rootDer = root.cert.attrs.get(CKA.VALUE);
  if (!rootDer) throw new EngineError('UNSUPPORTED_ROOT', `root ${labelOf(root.cert)} has no CKA_VALUE`);
  const { anchor, cross } = fenceRoot(rootDer, excluded, deps);
  const label = labelOf(root.cert);
  const slot = root.cert.slot;
  const anchorKeyId = subjectKeyId(anchor)!;
  const rootKeyId = subjectKeyId(cross) ?? root.cert.attrs.get(CKA.ID) ?? new Uint8Array(0);
  const out: ViewObject[] = [
    { slot, attrs: [...certObject(anchor, `ncfence anchor for ${label}`, anchorKeyId), ...copyAttrs(root.cert, POLICY_ATTRS)] },
    { slot, attrs: anchorTrust(anchor, `ncfence anchor for ${label}`, root.trust) },
    { slot, attrs: [...certObject(cross, label, rootKeyId), ...copyAttrs(root.cert, [CKA.CERTIFICATE_CATEGORY])] },
  ];
  if (grantsTrust(root.cert)) {
    // Upstream marks R itself as an anchor (p11-kit): serve R without it.
    out.push({ slot, attrs: [...root.cert.attrs.entries()].map(([t, v]) => [t, t === CKA.TRUSTED ? boolBytes(false) : v]) });
  }
  return out;
}

/** Fences every root upstream trusts; roots the engine cannot rewrite are dropped (never passed unfenced). */
export function planView(snapshot: UpstreamSnapshot, excluded: readonly Uint8Array[], deps: EngineDeps): Plan {
  const dropped: DroppedRoot[] = [];
  const objects: ViewObject[] = [];
  let fenced = 0;
  for (const root of findRoots(snapshot.objects, dropped)) {
    try {
      objects.push(...fenceObjects(root, excluded, deps));
      fenced++;
    } catch (e) {
      if (!(e instanceof EngineError)) throw e;
      const value = root.cert.attrs.get(CKA.VALUE) ?? new Uint8Array(0);
      dropped.push({ label: labelOf(root.cert), sha256: createHash('sha256').update(value).digest('hex'), reason: e.message });
    }
  }
  const hidden = snapshot.objects.filter(grantsTrust).length;
  return {
    objects,
    summary: {
      upstreamObjects: snapshot.objects.length,
      rootsFenced: fenced,
      rootsDropped: dropped,
      passedThrough: snapshot.objects.length - hidden,
      hidden,
      distrustRecords: snapshot.objects.filter(distrusts).length,
      viewObjects: objects.length,
    },
  };
}
