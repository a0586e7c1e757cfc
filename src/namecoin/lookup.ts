// The service's answer to one question from the module: the PKCS#11
// objects for a requested name (docs/service-protocol.md). Names that are not
// Namecoin's get "not found"; the root and TLD CA come from RAM; an AIA
// parent comes from the domain's TLS records, asked of the sources in order.

import { bytesEqual } from '../engine/asn1/der.js';
import type { EngineDeps, IssuedCert } from '../engine/crossSign.js';
import { CKA, CKT } from '../pkcs11/constants.js';
import { boolBytes, certObject, nssTrustRecord, ulongBytes } from '../pkcs11/objects.js';
import { parseAiaName, synthesizeAiaParents, vouchedKeys, type AiaRequest, type NamecoinAuthority } from './chain.js';
import { bitName } from './names.js';
import type { TlsAnswer, TlsRecord } from './records.js';
import type { NameOwner } from './rpc.js';
import { certify } from './stapled.js';
import { MAX_OBJECTS, type Response, type ServiceObject } from '../service/protocol.js';

/** One place TLS records come from (local rules, DNS, Namecoin Core). */
export interface TlsSource {
  name: string;
  lookup(domain: string): Promise<TlsAnswer>;
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

// A Namecoin CA never carries CKA_NSS_MOZILLA_CA_POLICY: Firefox would take it for a built-in root
// and demand Certificate Transparency (security/certverifier/CertVerifier.cpp), which .bit has not.
const caObject = (c: IssuedCert, label: string, trusted: boolean): ServiceObject => certObject(c, text(label), c.keyId ?? new Uint8Array(0), trusted);

/** The root's trust purposes: a trust anchor for server authentication only. */
const ROOT_PURPOSES: ServiceObject = [
  [CKA.TRUST_SERVER_AUTH, ulongBytes(CKT.NSS_TRUSTED_DELEGATOR)],
  [CKA.TRUST_CLIENT_AUTH, ulongBytes(CKT.NSS_MUST_VERIFY_TRUST)],
  [CKA.TRUST_EMAIL_PROTECTION, ulongBytes(CKT.NSS_MUST_VERIFY_TRUST)],
  [CKA.TRUST_CODE_SIGNING, ulongBytes(CKT.NSS_MUST_VERIFY_TRUST)],
  [CKA.TRUST_STEP_UP_APPROVED, boolBytes(false)],
];

const CACHE_LIMIT = 4096;

/**
 * Data a source gave, and when it was asked for it. Its TTL counts down from
 * then, in whole seconds elapsed (as a DNS cache counts a record's TTL down,
 * RFC 1035 section 3.2.1): whatever is built from it, at any later time,
 * carries only what is left, all the way to the module's cache.
 */
interface Fetched<T> {
  value: T;
  /** deps.now() just before the source was asked: never later than the data. */
  fetchedAt: number;
  /** Seconds from fetchedAt, as the source gave them (capped at MAX_TTL). */
  ttl: number;
  source: string;
}

/** What a source gave at `fetchedAt`, its TTL kept between 1 s and MAX_TTL. */
const fetched = <T>(value: T, fetchedAt: number, ttl: number, source: string): Fetched<T> => ({ value, fetchedAt, ttl: Math.max(1, Math.min(ttl, MAX_TTL)), source });

/** Keeps `value` under `key` in a bounded map, the oldest entry going first. */
function remember<V>(map: Map<string, V>, key: string, value: V): V {
  map.delete(key);
  if (map.size >= CACHE_LIMIT) map.delete(map.keys().next().value!);
  map.set(key, value);
  return value;
}

/** Seconds of a TTL left at `now`; 0 or less once it has run out. */
export function ttlLeft(f: { fetchedAt: number; ttl: number }, now: number): number {
  return f.ttl - Math.floor(Math.max(0, now - f.fetchedAt) / 1000);
}

export class NamecoinLookup {
  /** Records per domain, kept for their TTL (bounded; the oldest entry goes first). */
  private readonly cache = new Map<string, Fetched<TlsRecord[]>>();
  /** Name owners per source and name, kept for their TTL (bounded like the records). */
  private readonly owners = new Map<string, Fetched<NameOwner>>();
  /**
   * Certified-mode verdicts per owner address and stapled data (bounded).
   * A verdict depends on nothing else, so it needs no TTL of its own: it is
   * used only with an unexpired owner entry for that address, and an answer
   * it gives carries what is left of that entry's TTL.
   */
  private readonly verdicts = new Map<string, ReturnType<typeof certify>>();

  constructor(
    private readonly auth: NamecoinAuthority,
    private readonly sources: readonly TlsSource[],
    private readonly deps: EngineDeps,
    /** Receives one line per domain lookup: the outcome and, when nothing vouches, each source's reason. */
    private readonly log?: (line: string) => void,
  ) {}

  /** Records for a domain (their TTL: what is left of the source's), and what each source without them said. */
  private async records(domain: string): Promise<{ found?: { records: TlsRecord[]; ttl: number; source: string }; said: SourceSaid[] }> {
    const hit = this.cache.get(domain);
    const left = hit ? ttlLeft(hit, this.now()) : 0;
    if (hit && left > 0) return { found: { records: hit.value, ttl: left, source: `cache (${hit.source})` }, said: [] };
    const said: SourceSaid[] = [];
    for (const source of this.sources) {
      let found: TlsAnswer;
      const fetchedAt = this.now();
      try {
        found = await source.lookup(domain);
      } catch (e) {
        said.push({ outcome: 'source down', words: `${source.name}: source down: ${(e as Error).message}` });
        continue;
      }
      if (found.records.length === 0) {
        const expired = found.absent === 'expired';
        said.push({ outcome: expired ? 'expired name' : 'no record', words: `${source.name}: no TLS record${expired ? ` (${bitName(domain).name} has expired)` : ''}` });
        continue;
      }
      const entry = remember(this.cache, domain, fetched(found.records, fetchedAt, found.ttl, source.name));
      return { found: { records: found.records, ttl: Math.max(0, ttlLeft(entry, this.now())), source: source.name }, said };
    }
    return { said };
  }

  private now(): number {
    return this.deps.now().getTime();
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
    const name = bitName(req.domain).name;
    if (req.notLowercase) return { kind: 'bad signature', reasons: [`the name spells ${req.domain} in capitals, and certified mode signs the exact lowercase text`] };
    for (const source of this.sources) {
      if (!source.owner) {
        reasons.push(`${source.name}: cannot check a stapled signature (it does not know who owns ${name})`);
        continue;
      }
      // The owner as last fetched: an answer it vouches for lives only as long as what is left of its TTL,
      // so a name that changes hands stops vouching for its former owner's chains one TTL after that owner was fetched.
      const key = `${source.name}\0${name}`;
      let entry = this.owners.get(key);
      if (!entry || ttlLeft(entry, this.now()) <= 0) {
        const fetchedAt = this.now();
        let owner: NameOwner;
        try {
          owner = await source.owner(req.domain);
        } catch (e) {
          reasons.push(`${source.name}: source down: ${(e as Error).message}`);
          kind ??= 'source down';
          continue;
        }
        entry = remember(this.owners, key, fetched(owner, fetchedAt, owner.ttl, source.name));
      }
      const owner = entry.value;
      if (!owner.address) {
        reasons.push(`${source.name}: ${name} ${owner.absent === 'expired' ? 'has expired' : 'does not exist'}, so no one can certify for it`);
        kind = owner.absent === 'expired' ? 'expired name' : 'no record';
        continue;
      }
      const memo = `${owner.address}\0${req.domain}\0${stapled.pubb64}\0${stapled.notAfter?.text ?? ''}\0${JSON.stringify(stapled.sigs)}`;
      const verdict = this.verdicts.get(memo) ?? remember(this.verdicts, memo, certify(stapled, req.domain, owner.address));
      if (verdict.ok) return { vouched: { source: source.name, address: owner.address, name, ttl: Math.max(0, ttlLeft(entry, this.now())) }, reasons };
      reasons.push(`${source.name}: ${verdict.detail}`);
      kind = verdict.kind === 'owner-mismatch' ? 'owner mismatch' : 'bad signature';
    }
    return { kind: kind ?? 'cannot check owner', reasons };
  }

  /** The root with its trust record, and (tldObjects) the TLD CA: constant for the service's life. */
  private rootObjects(): ServiceObject[] {
    const root = this.auth.root.cert;
    return [caObject(root, 'Namecoin Root CA', true), nssTrustRecord(root, text('Namecoin Root CA'), ROOT_PURPOSES)];
  }

  private tldObjects(): ServiceObject[] {
    return [caObject(this.auth.tld.cert, '.bit TLD CA', false)];
  }

  async answer(name: Uint8Array): Promise<Response> {
    const { root, tld } = this.auth;
    if (bytesEqual(name, root.cert.subject)) return { status: 0, ttl: MAX_TTL, objects: this.rootObjects() };
    if (bytesEqual(name, tld.cert.subject)) return { status: 0, ttl: MAX_TTL, objects: this.tldObjects() };
    const req = parseAiaName(name);
    if (!req) return { status: 1, ttl: 60, objects: [] };
    const refuse = (kind: Outcome, why: string, ttl = 60): Response => {
      this.log?.(`${req.domain}: refused (${kind}): ${why}`);
      return { status: 1, ttl, objects: [] };
    };
    // The chain above an AIA parent comes with it: a verifier asks for the TLD CA and the root next, and
    // the module keeps these for searches naming them (addon/live.c), so a site whose source is slow
    // costs one round trip to verify, not one per level.
    const answerWith = (keys: Uint8Array[], ttl: number): Response => {
      const above = [...this.tldObjects(), ...this.rootObjects()];
      const certs = synthesizeAiaParents(this.auth, name, req, keys.slice(0, MAX_OBJECTS - above.length), this.deps);
      const objects = certs.map((c) => caObject(c, `${req.domain} Domain AIA Parent CA`, false));
      return { status: certs.length ? 0 : 1, ttl, objects: certs.length ? [...objects, ...above] : [] };
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
    const { found, said } = await this.records(req.domain);
    const certifiedPart = certifiedFailure ? `certified: ${certifiedFailure.reasons.join('; ')}; ` : '';
    if (!found) {
      const kind = certifiedFailure?.kind ?? recordsOutcome(said);
      this.log?.(`${req.domain}: ${certifiedFailure ? 'refused' : 'not found'} (${kind}): ${certifiedPart}${certifiedFailure ? 'records: ' : ''}${said.map((x) => x.words).join('; ') || 'no source'}`);
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

/** A lookup's outcome, as the service log names it (docs/namecoin.md). */
export type Outcome = 'no record' | 'wrong key' | 'bad signature' | 'owner mismatch' | 'expired name' | 'source down' | 'malformed' | 'expired' | 'cannot check owner';

/** What a source without records said: an outcome (one that fails, EngineError 'SOURCE' or else, is down), and words for the log. */
type SourceSaid = { outcome: Extract<Outcome, 'no record' | 'expired name' | 'source down'>; words: string };

/** No records from any source: "source down" only when every source failed; an expired name before "no record". */
function recordsOutcome(said: readonly SourceSaid[]): Outcome {
  if (said.length > 0 && said.every((x) => x.outcome === 'source down')) return 'source down';
  return said.some((x) => x.outcome === 'expired name') ? 'expired name' : 'no record';
}
