// The service's answer to one question from the module: the PKCS#11
// objects for a requested name (docs/service-protocol.md). Names that are not
// Namecoin's get "not found"; the root and TLD CA come from RAM; an AIA
// parent comes from the domain's TLS records, asked of the sources in order.

import { createHash } from 'node:crypto';
import { bytesEqual } from '../engine/asn1/der.js';
import type { EngineDeps, IssuedCert } from '../engine/crossSign.js';
import { CKA, CKC_X_509, CKO, CKT } from '../pkcs11/constants.js';
import { boolBytes, ulongBytes } from '../compile/upstream.js';
import { parseAiaName, synthesizeAiaParents, vouchedKeys, type AiaRequest, type NamecoinAuthority, type TlsRecord } from './chain.js';
import type { NameOwner } from './rpc.js';
import { certify, certifyingName } from './stapled.js';

export type ServiceObject = [type: number, value: Uint8Array][];

export interface LookupAnswer {
  status: 0 | 1 | 2 | 3;
  ttl: number;
  objects: ServiceObject[];
}

/** One place TLS records come from (local rules, DNS, Namecoin Core). */
export interface TlsSource {
  name: string;
  lookup(domain: string): Promise<{ records: TlsRecord[]; ttl: number; absent?: 'never existed' | 'expired' }>;
  /** Whether it can answer at all (reachable, credentials readable); throws an EngineError saying why not. */
  check?(): Promise<void>;
  /**
   * Who owns the name a domain belongs to. Only a source that knows (Namecoin
   * Core) has it; only such a source can vouch for a stapled signature.
   */
  owner?(domain: string): Promise<NameOwner>;
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
  /** Name owners per source and name, kept for their TTL (bounded like the records). */
  private readonly owners = new Map<string, { owner: NameOwner; expires: number }>();
  /** Certified-mode verdicts per owner and stapled data (bounded). */
  private readonly verdicts = new Map<string, ReturnType<typeof certify>>();

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
      let found: Awaited<ReturnType<TlsSource['lookup']>>;
      try {
        found = await source.lookup(domain);
      } catch (e) {
        reasons.push(`${source.name}: source down: ${(e as Error).message}`); // a source that fails is skipped
        continue;
      }
      if (found.records.length === 0) {
        reasons.push(`${source.name}: no TLS record${found.absent === 'expired' ? ` (${certifyingName(domain)} has expired)` : ''}`);
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

  /**
   * Certified mode: a stapled signature by the name's current owner, asked of
   * the sources that know owners, in order. A verdict per owner and stapled
   * data is kept while the owner is (the key recovery is the costly part).
   */
  private async certified(req: AiaRequest): Promise<{ vouched?: { source: string; address: string; name: string; ttl: number }; kind?: Outcome; reasons: string[] }> {
    const stapled = req.stapled!;
    const reasons: string[] = [];
    let kind: Outcome | undefined;
    const name = certifyingName(req.domain);
    if (req.notLowercase) return { kind: 'bad signature', reasons: [`the name spells ${req.domain} in capitals, and certified mode signs the exact lowercase text`] };
    const now = this.deps.now().getTime();
    for (const source of this.sources) {
      if (!source.owner) {
        reasons.push(`${source.name}: cannot check a stapled signature (it does not know who owns ${name})`);
        continue;
      }
      let owner: NameOwner;
      const hit = this.owners.get(`${source.name}\0${name}`);
      if (hit && hit.expires > now) owner = hit.owner;
      else {
        try {
          owner = await source.owner(req.domain);
        } catch (e) {
          reasons.push(`${source.name}: source down: ${(e as Error).message}`);
          kind ??= 'source down';
          continue;
        }
        if (this.owners.size >= CACHE_LIMIT) this.owners.delete(this.owners.keys().next().value!);
        this.owners.set(`${source.name}\0${name}`, { owner, expires: now + Math.min(owner.ttl, MAX_TTL) * 1000 });
      }
      if (!owner.address) {
        reasons.push(`${source.name}: ${name} ${owner.absent === 'expired' ? 'has expired' : 'does not exist'}, so no one can certify for it`);
        kind = owner.absent === 'expired' ? 'expired name' : 'no record';
        continue;
      }
      const memo = `${owner.address}\0${req.domain}\0${stapled.pubb64}\0${stapled.notAfter?.text ?? ''}\0${JSON.stringify(stapled.sigs)}`;
      let verdict = this.verdicts.get(memo);
      if (!verdict) {
        verdict = certify(stapled, req.domain, owner.address);
        if (this.verdicts.size >= CACHE_LIMIT) this.verdicts.delete(this.verdicts.keys().next().value!);
        this.verdicts.set(memo, verdict);
      }
      if (verdict.ok) return { vouched: { source: source.name, address: owner.address, name, ttl: Math.min(owner.ttl, MAX_TTL) }, reasons };
      reasons.push(`${source.name}: ${verdict.detail}`);
      kind = verdict.kind === 'owner-mismatch' ? 'owner mismatch' : 'bad signature';
    }
    return { kind: kind ?? 'cannot check owner', reasons };
  }

  async answer(name: Uint8Array): Promise<LookupAnswer> {
    const { root, tld } = this.auth;
    if (bytesEqual(name, root.cert.subject)) {
      return { status: 0, ttl: MAX_TTL, objects: [certObject(root.cert, 'Namecoin Root CA', true), rootTrust(root.cert)] };
    }
    if (bytesEqual(name, tld.cert.subject)) return { status: 0, ttl: MAX_TTL, objects: [certObject(tld.cert, '.bit TLD CA', false)] };
    const req = parseAiaName(name);
    if (!req) return { status: 1, ttl: 60, objects: [] };
    const refuse = (kind: Outcome, why: string, ttl = 60): LookupAnswer => {
      this.log?.(`${req.domain}: refused (${kind}): ${why}`);
      return { status: 1, ttl, objects: [] };
    };
    const answerWith = (keys: Uint8Array[], ttl: number): LookupAnswer => {
      const certs = synthesizeAiaParents(this.auth, name, req, keys, this.deps);
      return { status: certs.length ? 0 : 1, ttl, objects: certs.map((c) => certObject(c, `${req.domain} Domain AIA Parent CA`, false)) };
    };
    if (req.malformed) return refuse('malformed', `stapled data in the issuer name: ${req.malformed}`);
    const notAfter = req.stapled?.notAfter?.seconds;
    if (notAfter !== undefined && notAfter * 1000 <= this.deps.now().getTime() + 60_000) return refuse('expired', `the stapled notafter ${req.stapled!.notAfter!.text} has passed`);
    // Encaya's order: a stapled owner signature first, then the name's records.
    let certifiedFailure: { kind: Outcome; reasons: string[] } | undefined;
    if (req.stapled?.sigs?.length) {
      const c = await this.certified(req);
      if (c.vouched) {
        const v = c.vouched;
        this.log?.(`${req.domain}: vouched for by ${v.source} (certified: stapled signature by ${v.address}, the owner of ${v.name}, ttl ${v.ttl} s)`);
        return answerWith([req.stapled.key], v.ttl);
      }
      certifiedFailure = { kind: c.kind!, reasons: c.reasons };
    }
    const { found, reasons } = await this.records(req.domain);
    const certifiedPart = certifiedFailure ? `certified: ${certifiedFailure.reasons.join('; ')}; ` : '';
    if (!found) {
      const allDown = reasons.length > 0 && reasons.every((r) => r.includes(': source down: '));
      const kind = certifiedFailure?.kind ?? (allDown ? 'source down' : reasons.some((r) => r.endsWith(' has expired)')) ? 'expired name' : 'no record');
      this.log?.(`${req.domain}: ${certifiedFailure ? 'refused' : 'not found'} (${kind}): ${certifiedPart}${certifiedFailure ? 'records: ' : ''}${reasons.join('; ') || 'no source'}`);
      return { status: 1, ttl: 60, objects: [] };
    }
    const keys = vouchedKeys(found.records, req);
    const n = found.records.length;
    const recs = `${n} TLS record${n === 1 ? '' : 's'}`;
    if (keys.length === 0) {
      const why = req.stapledKey ? 'none for the key the chain staples' : 'none that vouches for a CA key here (ncfence uses DANE-TA [2, 1, 0] full keys, or [2, 1, 1] hashes of a stapled key)';
      return refuse(certifiedFailure?.kind ?? 'wrong key', `${certifiedPart}${found.source} has ${recs}, ${why}`, found.ttl);
    }
    this.log?.(`${req.domain}: vouched for by ${found.source} (${recs}, ttl ${found.ttl} s)`);
    return answerWith(keys, found.ttl);
  }
}

/** A lookup's outcome, as the service log names it. */
export type Outcome = 'no record' | 'wrong key' | 'bad signature' | 'owner mismatch' | 'expired name' | 'source down' | 'malformed' | 'expired' | 'cannot check owner';
