// A name's TTL counts down from when its source was asked, through the
// service's caches (records, owners) to the TTL of the answer the module
// caches: an answer built from cached data carries what is left of it, not
// the full TTL. So a name that changes hands stops vouching for its former
// owner's certified chains one owner TTL after that owner was fetched (10
// minutes with Namecoin Core), not up to twice that.
//
// The service's lookup (src/namecoin/lookup.ts) on a clock the test moves,
// with ncgencert's certified and hashed chains (test/data/ncgencert) and
// sources that count how often they are asked.

import test from 'ava';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCertificate } from '../../src/engine/asn1/certificate.js';
import { defaultEngineDeps } from '../../src/engine/crossSign.js';
import { createAuthority } from '../../src/namecoin/chain.js';
import { NamecoinLookup, type TlsSource } from '../../src/namecoin/lookup.js';
import type { Response as LookupAnswer } from '../../src/service/protocol.js';
import { fromPem } from '../helpers/pem.js';

const DATA = fileURLToPath(new URL('../data/ncgencert/', import.meta.url));
const read = (...p: string[]): string => readFileSync(join(DATA, ...p), 'utf8');
const A = read('owner-a.address').trim();
const B = read('owner-b.address').trim();
/** The Domain CA's issuer name, as the server sends it (what a verifier asks the module for). */
const issuerOf = (d: string): Uint8Array => parseCertificate(fromPem(read(d, 'caCert.pem'))).issuer;
const aiaKey = (d: string): Uint8Array => new Uint8Array(createPublicKey(read(d, 'caAIAKey.pem')).export({ type: 'spki', format: 'der' }));

const T0 = new Date('2027-06-01T12:00:00Z').getTime();

interface World {
  now: number;
  /** Who owns d/example now. */
  owner: string;
  ownerAsked: number;
  recordsAsked: number;
  /** How long a fetch takes, on the test's clock. */
  fetchMs: number;
}

/** A Namecoin Core stand-in: owners (TTL 600, as name_show's) and, for hashed mode, one record for example.bit. */
function source(w: World, ttl: number, records: boolean): TlsSource {
  return {
    name: 'rpc fake',
    lookup: async () => {
      w.recordsAsked++;
      w.now += w.fetchMs;
      return { records: records ? [{ usage: 2, selector: 1, matchingType: 0, data: aiaKey('hashed-apex') }] : [], ttl };
    },
    owner: async () => {
      w.ownerAsked++;
      w.now += w.fetchMs;
      return { name: 'd/example', address: w.owner, ttl };
    },
  };
}

async function lookupIn(w: World, { ttl = 600, records = true } = {}): Promise<(name: Uint8Array) => Promise<LookupAnswer>> {
  const deps = await defaultEngineDeps();
  deps.now = () => new Date(w.now);
  const lookup = new NamecoinLookup(createAuthority(deps), [source(w, ttl, records)], deps);
  return (name) => lookup.answer(name);
}

const world = (): World => ({ now: T0, owner: A, ownerAsked: 0, recordsAsked: 0, fetchMs: 0 });

test('certified: an answer vouched for by a cached owner carries what is left of the owner TTL, and the former owner stops at one TTL', async (t) => {
  const w = world();
  const answer = await lookupIn(w, { records: false });
  const chain = issuerOf('certified-apex');
  const steps: { at: number; ttl: number; status: number; expiresAt: number }[] = [];
  const ask = async (at: number): Promise<void> => {
    w.now = T0 + at * 1000;
    const a = await answer(chain);
    steps.push({ at, ttl: a.ttl, status: a.status, expiresAt: at + a.ttl });
  };
  await ask(0);
  w.owner = B; // the name changes hands; the service still has A cached
  await ask(1);
  await ask(300);
  await ask(599);
  await ask(600);
  t.deepEqual(
    steps.map(({ at, ttl, status }) => ({ at, ttl, status })),
    [
      { at: 0, ttl: 600, status: 0 },
      { at: 1, ttl: 599, status: 0 },
      { at: 300, ttl: 300, status: 0 },
      { at: 599, ttl: 1, status: 0 },
      { at: 600, ttl: 60, status: 1 },
    ],
  );
  t.is(w.ownerAsked, 2, 'the owner is asked again only when its TTL has run out');
  for (const s of steps.filter((x) => x.status === 0)) t.true(s.expiresAt <= 600, `the answer at ${s.at} s lives until ${s.expiresAt} s, past the owner entry's 600 s`);
});

test('hashed mode: an answer from cached records carries what is left of their TTL', async (t) => {
  const w = world();
  const answer = await lookupIn(w);
  const chain = issuerOf('hashed-apex');
  const at = async (s: number): Promise<LookupAnswer> => {
    w.now = T0 + s * 1000;
    return answer(chain);
  };
  const ttls = [];
  for (const s of [0, 250, 599]) ttls.push((await at(s)).ttl);
  t.deepEqual(ttls, [600, 350, 1]);
  t.is(w.recordsAsked, 1);
  t.is((await at(600)).ttl, 600, 'expired: asked again, full TTL from the new fetch');
  t.is(w.recordsAsked, 2);
});

test('a source that takes time: the TTL counts from when it was asked, not from when it answered', async (t) => {
  for (const [chain, what] of [
    [issuerOf('certified-apex'), 'owner'],
    [issuerOf('hashed-apex'), 'records'],
  ] as const) {
    const w = { ...world(), fetchMs: 5_000 };
    const a = await (await lookupIn(w))(chain);
    t.is(a.status, 0, what);
    t.is(a.ttl, 595, `${what}: 5 s of a 600 s TTL went by while the source answered`);
  }
});

test('a TTL that ran out while the source answered gives an answer the module must not keep (TTL 0)', async (t) => {
  const w = { ...world(), fetchMs: 3_000 };
  const a = await (await lookupIn(w, { ttl: 2 }))(issuerOf('hashed-apex'));
  t.is(a.status, 0);
  t.is(a.ttl, 0);
});
