// The service's answer to one question from the module: the PKCS#11
// objects for a requested name (docs/service-protocol.md). Names that are not
// Namecoin's get "not found"; the root and TLD CA come from RAM; an AIA
// parent comes from the domain's TLS records, asked of the sources in order.

import { createHash } from 'node:crypto';
import { bytesEqual } from '../engine/asn1/der.js';
import type { EngineDeps, IssuedCert } from '../engine/crossSign.js';
import { CKA, CKC_X_509, CKO, CKT } from '../pkcs11/constants.js';
import { boolBytes, ulongBytes } from '../compile/upstream.js';
import { parseAiaName, synthesizeAiaParents, vouchedKeys, type NamecoinAuthority, type TlsRecord } from './chain.js';

export type ServiceObject = [type: number, value: Uint8Array][];

export interface LookupAnswer {
  status: 0 | 1 | 2 | 3;
  ttl: number;
  objects: ServiceObject[];
}

/** One place TLS records come from (local rules, DNS, Namecoin Core). */
export interface TlsSource {
  name: string;
  lookup(domain: string): Promise<{ records: TlsRecord[]; ttl: number }>;
  /** Whether it can answer at all (reachable, credentials readable); throws an EngineError saying why not. */
  check?(): Promise<void>;
}

const MAX_TTL = 3000; // under the AIA parent's one-hour validity
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function certObject(c: IssuedCert, label: string, trusted: boolean): ServiceObject {
  // No CKA_NSS_MOZILLA_CA_POLICY: Firefox would then demand CT for .bit (NOTES.md).
  return [
    [CKA.CLASS, ulongBytes(CKO.CERTIFICATE)],
    [CKA.TOKEN, boolBytes(true)],
    [CKA.PRIVATE, boolBytes(false)],
    [CKA.MODIFIABLE, boolBytes(false)],
    [CKA.LABEL, text(label)],
    [CKA.CERTIFICATE_TYPE, ulongBytes(CKC_X_509)],
    [CKA.SUBJECT, c.subject],
    [CKA.ID, c.keyId ?? new Uint8Array(0)],
    [CKA.ISSUER, c.issuer],
    [CKA.SERIAL_NUMBER, c.serial],
    [CKA.VALUE, c.der],
    [CKA.TRUSTED, boolBytes(trusted)],
  ];
}

/** The root's trust record: a trust anchor for server authentication only. */
function rootTrust(c: IssuedCert): ServiceObject {
  return [
    [CKA.CLASS, ulongBytes(CKO.NSS_TRUST)],
    [CKA.TOKEN, boolBytes(true)],
    [CKA.PRIVATE, boolBytes(false)],
    [CKA.MODIFIABLE, boolBytes(false)],
    [CKA.LABEL, text('Namecoin Root CA')],
    [CKA.ISSUER, c.subject],
    [CKA.SERIAL_NUMBER, c.serial],
    [CKA.CERT_SHA1_HASH, new Uint8Array(createHash('sha1').update(c.der).digest())],
    [CKA.CERT_MD5_HASH, new Uint8Array(createHash('md5').update(c.der).digest())],
    [CKA.TRUST_SERVER_AUTH, ulongBytes(CKT.NSS_TRUSTED_DELEGATOR)],
    [CKA.TRUST_CLIENT_AUTH, ulongBytes(CKT.NSS_MUST_VERIFY_TRUST)],
    [CKA.TRUST_EMAIL_PROTECTION, ulongBytes(CKT.NSS_MUST_VERIFY_TRUST)],
    [CKA.TRUST_CODE_SIGNING, ulongBytes(CKT.NSS_MUST_VERIFY_TRUST)],
    [CKA.TRUST_STEP_UP_APPROVED, boolBytes(false)],
  ];
}

const CACHE_LIMIT = 4096;

export class NamecoinLookup {
  /** Records per domain, kept for their TTL (bounded; the oldest entry goes first). */
  private readonly cache = new Map<string, { records: TlsRecord[]; ttl: number; expires: number; source: string }>();

  constructor(
    private readonly auth: NamecoinAuthority,
    private readonly sources: readonly TlsSource[],
    private readonly deps: EngineDeps,
    /** Receives one line per domain lookup: the outcome and, when nothing vouches, each source's reason. */
    private readonly log?: (line: string) => void,
  ) {}

  /** Records for a domain, and what each source said (for the log line). */
  private async records(domain: string): Promise<{ found?: { records: TlsRecord[]; ttl: number; source: string }; reasons: string[] }> {
    const now = this.deps.now().getTime();
    const hit = this.cache.get(domain);
    if (hit && hit.expires > now) return { found: { records: hit.records, ttl: Math.max(1, Math.floor((hit.expires - now) / 1000)), source: `cache (${hit.source})` }, reasons: [] };
    const reasons: string[] = [];
    for (const source of this.sources) {
      let found: { records: TlsRecord[]; ttl: number };
      try {
        found = await source.lookup(domain);
      } catch (e) {
        reasons.push(`${source.name}: ${(e as Error).message}`); // a source that fails is skipped
        continue;
      }
      if (found.records.length === 0) {
        reasons.push(`${source.name}: no TLS record`);
        continue;
      }
      const ttl = Math.max(1, Math.min(found.ttl, MAX_TTL));
      if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(domain, { records: found.records, ttl, expires: now + ttl * 1000, source: source.name });
      return { found: { records: found.records, ttl, source: source.name }, reasons };
    }
    return { reasons };
  }

  /** The Namecoin root's subject (what a verifier asks for at the top of a .bit chain). */
  rootName(): Uint8Array {
    return this.auth.root.cert.subject;
  }

  async answer(name: Uint8Array): Promise<LookupAnswer> {
    const { root, tld } = this.auth;
    if (bytesEqual(name, root.cert.subject)) {
      return { status: 0, ttl: MAX_TTL, objects: [certObject(root.cert, 'Namecoin Root CA', true), rootTrust(root.cert)] };
    }
    if (bytesEqual(name, tld.cert.subject)) return { status: 0, ttl: MAX_TTL, objects: [certObject(tld.cert, '.bit TLD CA', false)] };
    const req = parseAiaName(name);
    if (!req) return { status: 1, ttl: 60, objects: [] };
    const { found, reasons } = await this.records(req.domain);
    if (!found) {
      this.log?.(`${req.domain}: not found (${reasons.join('; ') || 'no source'})`);
      return { status: 1, ttl: 60, objects: [] };
    }
    const certs = synthesizeAiaParents(this.auth, name, req, vouchedKeys(found.records, req), this.deps);
    this.log?.(
      certs.length
        ? `${req.domain}: vouched for by ${found.source} (${found.records.length} TLS record${found.records.length === 1 ? '' : 's'}, ttl ${found.ttl} s)`
        : `${req.domain}: refused: ${found.source} has ${found.records.length} TLS record${found.records.length === 1 ? '' : 's'}, none that vouches for a CA key here (ncfence uses DANE-TA [2, 1, 0] full keys, or [2, 1, 1] hashes of a stapled key)`,
    );
    return { status: certs.length ? 0 : 1, ttl: found.ttl, objects: certs.map((c) => certObject(c, `${req.domain} Domain AIA Parent CA`, false)) };
  }
}
