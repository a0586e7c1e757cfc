// One rule for what a .bit name is (src/namecoin/names.ts), and typed source
// outcomes in the service log (src/namecoin/lookup.ts).
//
// 1. Every part that takes a .bit name agrees on each name: the chain code
//    reading the issuer name a verifier asks for (parseAiaName), the DNS
//    source, the Namecoin Core source, the rules file and `doctor --bit-name`.
//    They once disagreed: the DNS source refused "_" below the registered
//    name while the chain code asked it, so _x.example.bit was logged as
//    "source down"; 123.bit and a--b.bit went the other way.
// 2. _x.example.bit, a record under the map key "_x" (ifa-0001 allows "_" in
//    map keys; ncdns serves them), verifies through every source in NSS's
//    tstclnt, with a chain made as ncgencert makes it. (The AIA parent's
//    name constraint was built with the policy's DNS-name check, which
//    refuses "_": the log said "vouched for" and the module got no answer.)
// 3. Each source's failures reach the log as the right outcome word
//    (docs/namecoin.md): a name with no record, an expired name, a source
//    that is down or answers something refused.

import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { oid, seq, set, tlv, Tag, utf8 } from '../../src/engine/asn1/der.js';
import { EngineError } from '../../src/engine/errors.js';
import { parseBitName as parseDoctorBitName } from '../../src/install/bitcheck.js';
import { NAMECOIN_SERIAL, parseAiaName } from '../../src/namecoin/chain.js';
import { lookupTlsa } from '../../src/namecoin/dns.js';
import { nameShowTls } from '../../src/namecoin/rpc.js';
import { loadRules } from '../../src/namecoin/rulesSource.js';
import { serve, type ServeOptions } from '../../src/namecoin/serve.js';
import { TARGET_POLICY } from '../../src/policy.js';
import { startNamecoind, type Namecoind } from '../fixtures/namecoind.js';
import { startKnot, type Knot } from '../helpers/knot.js';
import { makeNamecoinSite, type NamecoinSite } from '../helpers/namecoinPki.js';
import { bitVerdict, makeNssDb, startOpensslServer, tstclnt } from '../helpers/nss.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { requireTool } from '../helpers/run.js';
import { freePort as unusedPort } from '../helpers/ports.js';

let dir: string;
let pki: TestPki;
let config: string;
let socket: string;
let site: NamecoinSite;
let node: Namecoind;
let closedPort: number;
const HOST = '_x.example.bit';

test.before(async () => {
  await requireTool('knotd');
  dir = mkdtempSync(join(tmpdir(), 'ncfence-bit-names-'));
  chmodSync(dir, 0o700);
  site = await makeNamecoinSite(HOST, HOST);
  pki = await makeTestPki([]);
  mkdirSync(join(dir, 'run'), { mode: 0o700 });
  socket = join(dir, 'run', 'service.sock');
  config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out'), service: socket, policyFile: TARGET_POLICY.browser })).config;
  await makeNssDb(join(dir, 'db'), 'ncfence', MODULE, '', { ...process.env, NCFENCE_CONFIG: config });
  node = await startNamecoind({ auth: 'cookie' });
  closedPort = await unusedPort();
});
test.after.always(async () => {
  await node?.close();
  site?.cleanup();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The issuer name a verifier asks the module for, at the top of a chain for `domain`. */
const aiaName = (domain: string): Uint8Array =>
  seq(set(seq(oid('2.5.4.3'), utf8(`${domain} Domain AIA Parent CA`))), set(seq(oid('2.5.4.5'), tlv(Tag.PRINTABLE_STRING, new TextEncoder().encode(NAMECOIN_SERIAL)))));

/** Whether a source call refused the name itself (USAGE) rather than trying to ask about it. */
async function refusesName(ask: () => Promise<unknown>): Promise<boolean> {
  try {
    await ask();
    return false;
  } catch (e) {
    if (!(e instanceof EngineError)) throw e;
    return e.code === 'USAGE';
  }
}

let files = 0;
/** A rules file pinning the owner's key for each of `domains`. */
function rulesFile(...domains: string[]): string {
  const f = join(dir, `rules-${files++}.json`);
  writeFileSync(f, JSON.stringify({ schema: 1, domains: Object.fromEntries(domains.map((d) => [d, [[2, 1, 0, site.ownerSpkiB64]]])) }));
  return f;
}

/** What each part says of a name: true when it takes it as a .bit name. */
async function verdicts(domain: string): Promise<Record<string, boolean>> {
  const rules = rulesFile(domain);
  return {
    chain: parseAiaName(aiaName(domain))?.domain === domain,
    dns: !(await refusesName(() => lookupTlsa(domain, { server: '127.0.0.1', port: closedPort, timeoutMs: 2000 }))),
    rpc: !(await refusesName(() => nameShowTls(domain, { url: `http://127.0.0.1:${closedPort}/`, auth: { user: 'u', password: 'p' }, timeoutMs: 2000 }))),
    rules: (() => {
      try {
        return loadRules(rules).has(domain);
      } catch {
        return false;
      }
    })(),
    doctor: (() => {
      try {
        return parseDoctorBitName(domain).host === domain;
      } catch {
        return false;
      }
    })(),
  };
}

/** A name of exactly n characters: labels of at most 60 characters, then example.bit. */
function nameOfLength(n: number): string {
  const labels: string[] = [];
  for (let left = n - 'example.bit'.length; left > 0; left -= labels.at(-1)!.length + 1) labels.push('a'.repeat(Math.min(60, left - 1)));
  return [...labels, 'example.bit'].join('.');
}

const nameCases: { name: string; domain: string; ok: boolean }[] = [
  { name: 'underscore label below the registered name (ifa-0001 map key)', domain: '_x.example.bit', ok: true },
  { name: 'underscore at the end of a label below it', domain: 'x_.www.example.bit', ok: true },
  { name: 'all-digit label below it', domain: '123.example.bit', ok: true },
  { name: 'plain subdomain (control)', domain: 'www.example.bit', ok: true },
  { name: 'punycode registered name', domain: 'xn--bcher-kva.bit', ok: true },
  { name: 'underscore in the registered name (not a d/ name)', domain: 'ex_ample.bit', ok: false },
  { name: 'all-digit registered name (ifa-0001 forbids d/123)', domain: '123.bit', ok: false },
  { name: 'two hyphens in the registered name, not punycode', domain: 'a--b.bit', ok: false },
  { name: 'leading hyphen below the registered name', domain: '-x.example.bit', ok: false },
  { name: 'wildcard label', domain: '*.example.bit', ok: false },
  { name: 'label of 64 characters below the registered name', domain: `${'a'.repeat(64)}.example.bit`, ok: false },
  { name: '251 characters: *.<name> still fits DNS', domain: nameOfLength(251), ok: true },
  { name: '252 characters: *.<name> would not', domain: nameOfLength(252), ok: false },
];

for (const c of nameCases) {
  test(`one rule for .bit names: ${c.name}`, async (t) => {
    if (/^\d+ characters/.test(c.name)) t.is(c.domain.length, Number.parseInt(c.name, 10), 'as long as the case says');
    const got = await verdicts(c.domain);
    t.deepEqual(got, { chain: c.ok, dns: c.ok, rpc: c.ok, rules: c.ok, doctor: c.ok }, c.domain);
  });
}

type Sources = Omit<ServeOptions, 'socket'> & { cleanup?: () => Promise<void> };

/** The d/example value holding `spki` where `ncgencert -host _x.example.bit` says: the "tls" of "*._x". */
const underscoreValue = (spki: string): string => JSON.stringify({ map: { _x: { map: { '*': { tls: [[2, 1, 0, spki]] } } } } });

const SOURCES: { name: string; make: () => Promise<Sources> }[] = [
  {
    name: 'rules file',
    make: async () => ({ rules: rulesFile(HOST) }),
  },
  {
    name: 'Namecoin Core',
    make: async () => {
      node.setName('d/example', underscoreValue(site.ownerSpkiB64));
      return { rpc: node.url, rpcCookie: node.cookieFile };
    },
  },
  {
    name: 'DNS (Knot, serving TLSA at *._x.example.bit as ncdns does)',
    make: async () => {
      const knot: Knot = await startKnot({ [HOST]: [`2 1 0 ${Buffer.from(site.ownerSpkiB64, 'base64').toString('hex')}`] }, 'example.bit');
      return { dns: `127.0.0.1:${knot.port}`, cleanup: () => knot.stop() };
    },
  },
];

for (const s of SOURCES) {
  test.serial(`${HOST} through ${s.name}: vouched for, and NSS's tstclnt accepts the chain`, async (t) => {
    const sources = await s.make();
    const log: string[] = [];
    const svc = await serve({ socket, ...sources, log: (l) => log.push(l) });
    const server = await startOpensslServer(site.leafFile, site.keyFile, site.domainCaFile);
    try {
      const verdict = await bitVerdict(() => tstclnt(server.port, HOST, { module: MODULE }, { ...process.env, NCFENCE_CONFIG: config }));
      t.true(verdict.ok, `${verdict.output.slice(-1000)}\n${log.join('\n')}`);
      t.true(log.some((l) => l.startsWith(`${HOST}: vouched for by `)), log.join('\n'));
    } finally {
      server.stop();
      await svc.close();
      await sources.cleanup?.();
    }
  });
}

/** The service's log line for one lookup of `domain`, with `sources` in the given order. */
async function logLineFor(domain: string, sources: Sources): Promise<string> {
  const log: string[] = [];
  const svc = await serve({ socket, ...sources, log: (l) => log.push(l) });
  try {
    const answer = await svc.lookup.answer(aiaName(domain));
    if (answer.status !== 1) throw new Error(`${domain}: status ${answer.status}, expected not found`);
  } finally {
    await svc.close();
    await sources.cleanup?.();
  }
  if (log.length !== 1) throw new Error(`${domain}: ${log.length} log lines: ${log.join(' | ')}`);
  return log[0]!;
}

const closedDns = (): Sources => ({ dns: `127.0.0.1:${closedPort}` });
const closedRpc = (): Sources => ({ rpc: `http://127.0.0.1:${closedPort}/`, rpcUser: 'u', rpcPassword: 'p' });
const liveRpc = (names: Record<string, { value: string; expired?: boolean }>): Sources => {
  for (const n of ['d/example', 'd/gone', 'd/broken']) node.deleteName(n);
  for (const [n, v] of Object.entries(names)) node.setName(n, v.value, { expired: v.expired });
  return { rpc: node.url, rpcCookie: node.cookieFile };
};
const knotWith = async (records: Record<string, string[]>): Promise<Sources> => {
  const knot = await startKnot(records, Object.keys(records)[0]!);
  return { dns: `127.0.0.1:${knot.port}`, cleanup: () => knot.stop() };
};
const KEY_HEX = (): string => Buffer.from(site.ownerSpkiB64, 'base64').toString('hex');

const outcomeCases: { name: string; domain: string; sources: () => Promise<Sources>; outcome: string; words: RegExp[] }[] = [
  { name: 'rules file without the name', domain: 'missing.bit', sources: async () => ({ rules: rulesFile('example.bit') }), outcome: 'no record', words: [/rules \S+: no TLS record$/] },
  { name: 'DNS: no such name (NXDOMAIN)', domain: 'missing.bit', sources: () => knotWith({ 'example.bit': [`2 1 0 ${KEY_HEX()}`] }), outcome: 'no record', words: [/dns \S+: no TLS record$/] },
  // Knot would answer *._y.example.bit from a wildcard *.example.bit (RFC 4592), so the zone holds another name.
  { name: 'DNS: no such name below the registered one, with an underscore', domain: '_y.example.bit', sources: () => knotWith({ 'other.bit': [`2 1 0 ${KEY_HEX()}`] }), outcome: 'no record', words: [/dns \S+: no TLS record$/] },
  { name: 'DNS: server down', domain: 'example.bit', sources: async () => closedDns(), outcome: 'source down', words: [/dns \S+: source down: .*ECONNREFUSED|dns \S+: source down: .*refused/] },
  { name: 'Namecoin Core: name never existed', domain: 'missing.bit', sources: async () => liveRpc({}), outcome: 'no record', words: [/rpc \S+: no TLS record$/] },
  { name: 'Namecoin Core: name expired', domain: 'gone.bit', sources: async () => liveRpc({ 'd/gone': { value: underscoreValue(site.ownerSpkiB64), expired: true } }), outcome: 'expired name', words: [/rpc \S+: no TLS record \(d\/gone has expired\)$/] },
  { name: 'Namecoin Core: a value it refuses whole', domain: 'broken.bit', sources: async () => liveRpc({ 'd/broken': { value: '{"tls": [[2, 1, 1, "AAAA"]]}' } }), outcome: 'source down', words: [/rpc \S+: source down: d\/broken: name value: tls\[0\]\[3\]/] },
  { name: 'Namecoin Core: down', domain: 'example.bit', sources: async () => closedRpc(), outcome: 'source down', words: [/rpc \S+: source down: /] },
  { name: 'every source down', domain: 'example.bit', sources: async () => ({ ...closedDns(), ...closedRpc() }), outcome: 'source down', words: [/dns \S+: source down: /, /rpc \S+: source down: /] },
  { name: 'one source down, one with no record', domain: 'missing.bit', sources: async () => ({ ...closedDns(), ...liveRpc({}) }), outcome: 'no record', words: [/dns \S+: source down: /, /rpc \S+: no TLS record$/] },
  { name: 'one source down, one with the name expired', domain: 'gone.bit', sources: async () => ({ ...closedDns(), ...liveRpc({ 'd/gone': { value: '{}', expired: true } }) }), outcome: 'expired name', words: [/dns \S+: source down: /, /rpc \S+: no TLS record \(d\/gone has expired\)$/] },
];

for (const c of outcomeCases) {
  test.serial(`log outcome: ${c.name} -> ${c.outcome}`, async (t) => {
    const line = await logLineFor(c.domain, await c.sources());
    const head = `${c.domain}: not found (${c.outcome}): `;
    t.true(line.startsWith(head), line);
    const parts = line.slice(head.length).split('; ');
    t.is(parts.length, c.words.length, line);
    c.words.forEach((w, i) => t.regex(parts[i]!, w));
  });
}
