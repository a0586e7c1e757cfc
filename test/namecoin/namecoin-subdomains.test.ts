// Subdomains with a CA of their own (issue 12, first convention): a chain made
// the way `ncgencert -host www.example.bit` makes it (issuer "www.example.bit
// Domain AIA Parent CA", Domain CA permitted to that host), its record in the
// name's map (`d/example` = {"map": {"www": {"map": {"*": {"tls": [...]}}}}}),
// at depth 1 and 2, through every source: the rules file (subdomain keys),
// Namecoin Core (the fixture from its documented RPC; the value walked as
// ncdns walks it) and DNS (a real Knot server serving TLSA at *.<host>.bit,
// as ncdns does). Judges: tstclnt (NSS classic with its hostname check),
// vfychain libpkix, and headless Firefox. Refused: a key not in the record,
// the apex's record for a subdomain (no inheritance), a record under another
// name.

import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { TARGET_POLICY } from '../../src/policy.js';
import { serve, type ServeOptions } from '../../src/namecoin/serve.js';
import { makeNamecoinSite, type NamecoinSite } from '../helpers/namecoinPki.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { bitVerdict, makeNssDb, startOpensslServer, tstclnt, vfychain } from '../helpers/nss.js';
import { startKnot, type Knot } from '../helpers/knot.js';
import { startNamecoind, type Namecoind } from '../fixtures/namecoind.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';

// A first visit may fail closed while the service's answer is on the way (the module waits for it only
// briefly: addon/live.c); a reload then finds it. The probe reloads a script that failed once, so an
// error here means refused twice.
const BIT_RELOAD_MS = 1500;

let dir: string;
let pki: TestPki;
let config: string;
let socket: string;
let db: string;
let node: Namecoind;
const sites = new Map<string, NamecoinSite>();
const HOSTS = ['www.example.bit', 'a.b.example.bit'];

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-nmc-sub-'));
  chmodSync(dir, 0o700);
  for (const h of HOSTS) sites.set(h, await makeNamecoinSite(h, h));
  sites.set('stranger', await makeNamecoinSite('www.example.bit', 'www.example.bit'));
  pki = await makeTestPki([]);
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { mode: 0o700 });
  socket = join(runDir, 'service.sock');
  // Firefox reads this view: the browser targets' policy (build's own default for this upstream is p11-kit.json, which mozilla::pkix cannot read).
  config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out'), service: socket, policyFile: TARGET_POLICY.browser })).config;
  db = await makeNssDb(join(dir, 'db'), 'ncfence', MODULE, '', { ...process.env, NCFENCE_CONFIG: config });
  node = await startNamecoind({ auth: 'cookie' });
});
test.after.always(async () => {
  await node?.close();
  for (const s of sites.values()) s.cleanup();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ ...process.env, NCFENCE_CONFIG: config });
const owner = (host: string): string => sites.get(host)!.ownerSpkiB64;
const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');

/** The d/example value holding each host's record where ncgencert -host says: the "tls" of "*.<host>". */
function valueFor(records: Record<string, string>): string {
  const root: { map: Record<string, unknown> } = { map: {} };
  for (const [host, key] of Object.entries(records)) {
    const labels = host.replace(/\.?example\.bit$/, '').split('.').filter(Boolean).reverse();
    let node = root;
    for (const l of [...labels, '*']) {
      const next = (node.map[l] as { map: Record<string, unknown> } | undefined) ?? { map: {} };
      node.map[l] = next;
      node = next;
    }
    (node as unknown as { tls: unknown[] }).tls = [[2, 1, 0, key]];
  }
  return JSON.stringify(root);
}

async function verdicts(source: () => Promise<Omit<ServeOptions, 'socket'> & { cleanup?: () => Promise<void> }>, judge: (host: string, site: NamecoinSite) => Promise<boolean>, hosts: [string, NamecoinSite][]): Promise<boolean[]> {
  const s = await source();
  const svc = await serve({ socket, ...s });
  try {
    const out: boolean[] = [];
    for (const [host, site] of hosts) out.push(await judge(host, site));
    return out;
  } finally {
    await svc.close();
    await s.cleanup?.();
  }
}

async function tstclntJudge(host: string, site: NamecoinSite): Promise<boolean> {
  const server = await startOpensslServer(site.leafFile, site.keyFile, site.domainCaFile);
  try {
    return (await bitVerdict(() => tstclnt(server.port, host, { module: MODULE }, env()))).ok;
  } finally {
    server.stop();
  }
}

async function libpkixJudge(_host: string, site: NamecoinSite): Promise<boolean> {
  return (await bitVerdict(() => vfychain(db, site.leafFile, site.domainCaFile, true, env()))).ok;
}

type Source = {
  name: string;
  /**
   * The verdict for the subdomain when only the apex has a record. ncdns says no (its "*" stands
   * for one label: backend/backend.go _findNCValue); Knot, a standard server, applies the RFC 4592
   * wildcard *.example.bit to *.www.example.bit as well. The DNS source relays its server's
   * answer, so it inherits exactly when the server does. Same owner either way: not a way around.
   */
  apexOnlyVouches: boolean;
  vouching: () => Promise<Omit<ServeOptions, 'socket'> & { cleanup?: () => Promise<void> }>; apexOnly: () => Promise<Omit<ServeOptions, 'socket'> & { cleanup?: () => Promise<void> }>; otherName: () => Promise<Omit<ServeOptions, 'socket'> & { cleanup?: () => Promise<void> }> };

const rulesFile = (name: string, domains: Record<string, string>): string => {
  const f = join(dir, `${name}.json`);
  writeFileSync(f, JSON.stringify({ schema: 1, domains: Object.fromEntries(Object.entries(domains).map(([d, k]) => [d, [[2, 1, 0, k]]])) }));
  return f;
};
const knotSource = async (records: Record<string, string>): Promise<{ dns: string; cleanup: () => Promise<void> }> => {
  const knot: Knot = await startKnot(Object.fromEntries(Object.entries(records).map(([d, k]) => [d, [`2 1 0 ${hex(k)}`]])), Object.keys(records)[0]!);
  return { dns: `127.0.0.1:${knot.port}`, cleanup: () => knot.stop() };
};
const rpcSource = (name: string, value: string): Omit<ServeOptions, 'socket'> => {
  node.setName(name, value);
  return { rpc: node.url, rpcCookie: node.cookieFile };
};

const SOURCES: Source[] = [
  {
    name: 'rules file',
    apexOnlyVouches: false,
    vouching: async () => ({ rules: rulesFile('vouching', { 'www.example.bit': owner('www.example.bit'), 'a.b.example.bit': owner('a.b.example.bit') }) }),
    apexOnly: async () => ({ rules: rulesFile('apex', { 'example.bit': owner('www.example.bit') }) }),
    otherName: async () => ({ rules: rulesFile('other', { 'www.other.bit': owner('www.example.bit') }) }),
  },
  {
    name: 'Namecoin Core',
    apexOnlyVouches: false,
    vouching: async () => rpcSource('d/example', valueFor({ 'www.example.bit': owner('www.example.bit'), 'a.b.example.bit': owner('a.b.example.bit') })),
    apexOnly: async () => rpcSource('d/example', JSON.stringify({ map: { '*': { tls: [[2, 1, 0, owner('www.example.bit')]] } } })),
    otherName: async () => {
      node.setName('d/example', JSON.stringify({}));
      return rpcSource('d/other', valueFor({ 'www.example.bit': owner('www.example.bit') }));
    },
  },
  {
    name: 'DNS (Knot, as ncdns serves it)',
    apexOnlyVouches: true,
    vouching: () => knotSource({ 'www.example.bit': owner('www.example.bit'), 'a.b.example.bit': owner('a.b.example.bit') }),
    apexOnly: () => knotSource({ 'example.bit': owner('www.example.bit') }),
    otherName: () => knotSource({ 'www.other.bit': owner('www.example.bit') }),
  },
];

for (const s of SOURCES) {
  test.serial(`subdomains through ${s.name}: depth 1 and 2 verify in NSS classic and libpkix; a key not in the record does not`, async (t) => {
    const hosts: [string, NamecoinSite][] = [...HOSTS.map((h) => [h, sites.get(h)!] as [string, NamecoinSite]), ['www.example.bit', sites.get('stranger')!]];
    t.deepEqual(await verdicts(s.vouching, tstclntJudge, hosts), [true, true, false], 'tstclnt: www, a.b, a stranger key for www');
    t.deepEqual(await verdicts(s.vouching, libpkixJudge, hosts), [true, true, false], 'vfychain -pp');
  });

  test.serial(`subdomains through ${s.name}: ${s.apexOnlyVouches ? 'the server\'s own wildcard decides inheritance' : 'the apex\'s record does not vouch for a subdomain'}; a record under another name never does`, async (t) => {
    const www: [string, NamecoinSite][] = [['www.example.bit', sites.get('www.example.bit')!]];
    t.deepEqual(await verdicts(s.apexOnly, tstclntJudge, www), [s.apexOnlyVouches], 'inheritance as the source has it');
    t.deepEqual(await verdicts(s.otherName, tstclntJudge, www), [false], 'a record moved to another name');
  });
}

test.serial('subdomains through Namecoin Core in headless Firefox: www.example.bit and a.b.example.bit load, a stranger key does not', async (t) => {
  const { copyFirefoxInstall, probeUrls } = await import('../helpers/firefox.js');
  const { startTlsServer } = await import('../helpers/tlsServer.js');
  const firefox = await copyFirefoxInstall(join(dir, 'firefox'), MODULE);
  const picked: [string, NamecoinSite][] = [['www.example.bit', sites.get('www.example.bit')!], ['a.b.example.bit', sites.get('a.b.example.bit')!], ['www.example.bit', sites.get('stranger')!]];
  const servers = await Promise.all(picked.map(([, site]) => startTlsServer({ certChainPem: site.chainPem, keyPem: site.keyPem })));
  const svc = await serve({ socket, ...rpcSource('d/example', valueFor({ 'www.example.bit': owner('www.example.bit'), 'a.b.example.bit': owner('a.b.example.bit') })) });
  try {
    const urls = picked.map(([host], i) => `https://${host}:${servers[i]!.port}/s${i}.js`);
    const r = await probeUrls({ firefox, urls, hosts: HOSTS, timeoutMs: 60_000, env: { NCFENCE_CONFIG: config }, retryAfterMs: BIT_RELOAD_MS });
    t.deepEqual(urls.map((u) => r.results[u]), ['load', 'load', 'error'], r.output.slice(-2000));
  } finally {
    await svc.close();
    await Promise.all(servers.map((s) => s.close()));
  }
});
