// Every Namecoin TLS convention with chains made by Namecoin's own tool
// (issue 12): ncgencert (github.com/namecoin/ncgencert, built with Debian's
// Go) in hashed mode for example.bit, www.example.bit and a.b.example.bit,
// and in certified mode (stapled owner signatures, no record on chain) for
// example.bit and www.example.bit. The chains, keys and signatures are
// committed under test/data/ncgencert (make.sh there says how they were
// made; the signatures by libsecp256k1, the library Namecoin Core signs
// with). Sources: the rules file, Namecoin Core (the fixture written from its
// RPC documentation) and a real Knot server (TLSA at *.<host>.bit, as ncdns
// serves). Judges: tstclnt (NSS classic with its hostname check, real time),
// vfychain classic and libpkix at a pinned time (the service's clock pinned
// with it, so the committed chains never expire under them), and headless
// Firefox. Refused: a key not in the record, a stapled signature by another
// address, a signature claiming the owner's address made with another key, a
// signature over another domain, over another key, a record under another
// name, a name that moved to another owner, an expired name.

import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../../src/compile/build.js';
import { TARGET_POLICY } from '../../src/policy.js';
import { serve, type ServeOptions } from '../../src/namecoin/serve.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { bitVerdict, makeNssDb, startOpensslServer, tstclnt, vfychain } from '../helpers/nss.js';
import { startKnot } from '../helpers/knot.js';
import { startNamecoind, type Namecoind } from '../fixtures/namecoind.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';

// A first visit may fail closed while the service's answer is on the way (the module waits for it only
// briefly: addon/live.c); a reload then finds it. The probe reloads a script that failed once, so an
// error here means refused twice.
const BIT_RELOAD_MS = 1500;

const DATA = fileURLToPath(new URL('../data/ncgencert/', import.meta.url));
const read = (...p: string[]): string => readFileSync(join(DATA, ...p), 'utf8');
const A = read('owner-a.address').trim();
const B = read('owner-b.address').trim();
/** vfychain's time and the service's clock in the pinned runs: inside every committed chain's validity. */
const AT = '2706011200Z';
const AT_DATE = new Date('2027-06-01T12:00:00Z');

interface Chain {
  dir: string;
  host: string;
}
const C = {
  hashedApex: { dir: 'hashed-apex', host: 'example.bit' },
  hashedWww: { dir: 'hashed-www', host: 'www.example.bit' },
  hashedAb: { dir: 'hashed-ab', host: 'a.b.example.bit' },
  stranger: { dir: 'hashed-stranger', host: 'www.example.bit' },
  certApex: { dir: 'certified-apex', host: 'example.bit' },
  certWww: { dir: 'certified-www', host: 'www.example.bit' },
  byB: { dir: 'certified-by-b', host: 'example.bit' },
  forged: { dir: 'certified-forged', host: 'example.bit' },
  otherDomain: { dir: 'certified-other-domain', host: 'example.bit' },
  otherKey: { dir: 'certified-other-key', host: 'example.bit' },
} satisfies Record<string, Chain>;
const file = (c: Chain, f: string): string => join(DATA, c.dir, f);
/** ncgencert's record for a hashed chain ([2, 1, 1, SHA-256 of the AIA parent key]), from its namecoin.json. */
const record = (c: Chain): [number, number, number, string] => JSON.parse(read(c.dir, 'namecoin.json'));

let dir: string;
let pki: TestPki;
let config: string;
let socket: string;
let db: string;
let node: Namecoind;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-ncgencert-'));
  chmodSync(dir, 0o700);
  pki = await makeTestPki([]);
  mkdirSync(join(dir, 'run'), { mode: 0o700 });
  socket = join(dir, 'run', 'service.sock');
  // Firefox reads this view: the browser targets' policy (build's own default for this upstream is p11-kit.json, which mozilla::pkix cannot read).
  config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out'), service: socket, policyFile: TARGET_POLICY.browser })).config;
  db = await makeNssDb(join(dir, 'db'), 'ncfence', MODULE, '', env());
  node = await startNamecoind({ auth: 'cookie' });
});
test.after.always(async () => {
  await node?.close();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function env(): NodeJS.ProcessEnv {
  return { ...process.env, NCFENCE_CONFIG: config };
}

/** d/example's value holding the hashed records where ncgencert -host says: the "tls" of "*.<host>". */
function hashedValue(chains: Chain[]): string {
  const root: { map: Record<string, unknown> } = { map: {} };
  for (const c of chains) {
    const labels = c.host.replace(/\.?example\.bit$/, '').split('.').filter(Boolean).reverse();
    let at = root;
    for (const l of [...labels, '*']) at = (at.map[l] ??= { map: {} }) as typeof root;
    (at as unknown as { tls: unknown[] }).tls = [record(c)];
  }
  return JSON.stringify(root);
}

type Source = Omit<ServeOptions, 'socket'> & { cleanup?: () => Promise<void> };
const rulesSource = (chains: Chain[]): Source => {
  const f = join(dir, `rules-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify({ schema: 1, domains: Object.fromEntries(chains.map((c) => [c.host, [record(c)]])) }));
  return { rules: f };
};
const rpcSource = (names: Record<string, { value: string; address?: string; expired?: boolean }>): Source => {
  for (const n of ['d/example', 'd/other']) node.deleteName(n);
  for (const [n, v] of Object.entries(names)) node.setName(n, v.value, { address: v.address, expired: v.expired });
  return { rpc: node.url, rpcCookie: node.cookieFile };
};
const dnsSource = async (chains: Chain[]): Promise<Source> => {
  const rrs = Object.fromEntries(chains.map((c) => [c.host, [`2 1 1 ${Buffer.from(record(c)[3], 'base64').toString('hex')}`]]));
  const knot = await startKnot(rrs, chains[0]!.host);
  return { dns: `127.0.0.1:${knot.port}`, cleanup: () => knot.stop() };
};

type Judge = 'tstclnt' | 'classic' | 'libpkix';
const JUDGES: Judge[] = ['tstclnt', 'classic', 'libpkix'];

/** Each chain's verdict by `judge`, with one service from `source` (its clock pinned for vfychain), and the service's log lines. */
async function verdicts(source: Source | (() => Promise<Source>), judge: Judge, chains: Chain[]): Promise<{ ok: boolean[]; log: string[] }> {
  const s = typeof source === 'function' ? await source() : source;
  const log: string[] = [];
  const svc = await serve({ socket, ...s, log: (l) => log.push(l), now: judge === 'tstclnt' ? undefined : () => AT_DATE });
  try {
    const ok: boolean[] = [];
    for (const c of chains) {
      if (judge === 'tstclnt') {
        const server = await startOpensslServer(file(c, 'cert.pem'), file(c, 'key.pem'), file(c, 'caCert.pem'));
        try {
          ok.push((await bitVerdict(() => tstclnt(server.port, c.host, { module: MODULE }, env()))).ok);
        } finally {
          server.stop();
        }
      } else {
        ok.push((await bitVerdict(() => vfychain(db, file(c, 'cert.pem'), file(c, 'caCert.pem'), judge === 'libpkix', env(), AT))).ok);
      }
    }
    return { ok, log };
  } finally {
    await svc.close();
    await s.cleanup?.();
  }
}

const HASHED = [C.hashedApex, C.hashedWww, C.hashedAb];
const HASHED_SOURCES: [string, () => Promise<Source>][] = [
  ['the rules file', async () => rulesSource(HASHED)],
  ['Namecoin Core', async () => rpcSource({ 'd/example': { value: hashedValue(HASHED) } })],
  ['DNS (Knot, as ncdns serves it)', () => dnsSource(HASHED)],
];

for (const [name, source] of HASHED_SOURCES) {
  for (const judge of JUDGES) {
    test.serial(`hashed mode through ${name}, ${judge}: ncgencert's apex, depth-1 and depth-2 chains verify; a key not in the record does not`, async (t) => {
      const r = await verdicts(source, judge, [...HASHED, C.stranger]);
      t.deepEqual(r.ok, [true, true, true, false], r.log.join('\n'));
      t.regex(r.log.at(-1)!, /^www\.example\.bit: refused \(wrong key\): .*none for the key the chain staples/);
    });
  }
}

const CERTIFIED_REFUSED: [Chain, RegExp][] = [
  [C.byB, new RegExp(`refused \\(owner mismatch\\): certified: rpc \\S+: stapled signature is by ${B}, not by the owner ${A}`)],
  [C.forged, /refused \(bad signature\): certified: rpc .*does not verify for example\.bit and this key \(signed by another key\)/],
  [C.otherDomain, /refused \(bad signature\): .*signed by another key/],
  [C.otherKey, /refused \(bad signature\): .*signed by another key/],
];

for (const judge of JUDGES) {
  test.serial(`certified mode through Namecoin Core, ${judge}: the owner's stapled signature vouches at the apex and a subdomain, with no record on chain; other signers, forged, other-domain and other-key signatures do not`, async (t) => {
    const chains = [C.certApex, C.certWww, ...CERTIFIED_REFUSED.map(([c]) => c)];
    const r = await verdicts(rpcSource({ 'd/example': { value: '{}', address: A } }), judge, chains);
    t.deepEqual(r.ok, [true, true, false, false, false, false], r.log.join('\n'));
    t.log(r.log.join('\n'));
    t.regex(r.log.join('\n'), new RegExp(`^example\\.bit: vouched for by rpc \\S+ \\(certified: stapled signature by ${A}, the owner of d/example`, 'm'));
    t.regex(r.log.join('\n'), /^www\.example\.bit: vouched for by rpc \S+ \(certified: /m);
    for (const [c, want] of CERTIFIED_REFUSED) t.true(r.log.some((l) => want.test(l)), `${c.dir}: ${want}\n${r.log.join('\n')}`);
  });
}

test.serial('certified mode: sources that do not know the owner (rules file, DNS) refuse, and the log says why', async (t) => {
  for (const source of [() => Promise.resolve(rulesSource([])), () => dnsSource([C.hashedApex])]) {
    const r = await verdicts(source, 'tstclnt', [C.certApex]);
    t.deepEqual(r.ok, [false]);
    t.regex(r.log.join('\n'), /^example\.bit: refused \(cannot check owner\): certified: (rules|dns) \S+: cannot check a stapled signature \(it does not know who owns d\/example\)/m);
  }
});

test.serial('a name that moved: a record under another name, a certified chain after the name changed hands (the new owner\'s own signature then vouches)', async (t) => {
  const moved = await verdicts(rpcSource({ 'd/example': { value: '{}', address: B }, 'd/other': { value: hashedValue([C.hashedApex]) } }), 'tstclnt', [C.hashedApex, C.certApex, C.byB]);
  t.deepEqual(moved.ok, [false, false, true], moved.log.join('\n'));
  t.true(moved.log.some((l) => /^example\.bit: not found \(no record\): rpc \S+: no TLS record/.test(l)), moved.log.join('\n'));
  t.true(moved.log.some((l) => new RegExp(`^example\\.bit: refused \\(owner mismatch\\): certified: .*by ${A}, not by the owner ${B}`).test(l)), moved.log.join('\n'));
});

test.serial('an expired name vouches for nothing: neither its record nor its former owner\'s signature', async (t) => {
  const r = await verdicts(rpcSource({ 'd/example': { value: hashedValue([C.hashedApex]), address: A, expired: true } }), 'libpkix', [C.hashedApex, C.certApex]);
  t.deepEqual(r.ok, [false, false], r.log.join('\n'));
  t.true(r.log.some((l) => /^example\.bit: not found \(expired name\): rpc \S+: no TLS record \(d\/example has expired\)/.test(l)), r.log.join('\n'));
  t.true(r.log.some((l) => /^example\.bit: refused \(expired name\): certified: rpc \S+: d\/example has expired/.test(l)), r.log.join('\n'));
});

test.serial('Namecoin Core down: the log says so, and nothing verifies', async (t) => {
  const s = rpcSource({ 'd/example': { value: hashedValue([C.hashedApex]), address: A } });
  const r = await verdicts({ ...s, rpc: 'http://127.0.0.1:9/' }, 'tstclnt', [C.hashedApex, C.certApex]);
  t.deepEqual(r.ok, [false, false]);
  t.true(r.log.some((l) => /^example\.bit: not found \(source down\): rpc \S+: source down: /.test(l)), r.log.join('\n'));
  t.true(r.log.some((l) => /^example\.bit: refused \(source down\): certified: rpc \S+: source down: /.test(l)), r.log.join('\n'));
});

test.serial('headless Firefox through Namecoin Core: ncgencert chains load in hashed mode (apex, depth 1, depth 2) and certified mode (apex, depth 1); a stranger key, another signer and a forged signature do not', async (t) => {
  const { copyFirefoxInstall, probeUrls } = await import('../helpers/firefox.js');
  const { startTlsServer } = await import('../helpers/tlsServer.js');
  const firefox = await copyFirefoxInstall(join(dir, 'firefox'), MODULE);
  const picked = [...HASHED, C.certApex, C.certWww, C.stranger, C.byB, C.forged];
  const servers = await Promise.all(picked.map((c) => startTlsServer({ certChainPem: read(c.dir, 'chain.pem'), keyPem: read(c.dir, 'key.pem') })));
  const log: string[] = [];
  const svc = await serve({ socket, ...rpcSource({ 'd/example': { value: hashedValue(HASHED), address: A } }), log: (l) => log.push(l) });
  try {
    const urls = picked.map((c, i) => `https://${c.host}:${servers[i]!.port}/s${i}.js`);
    const r = await probeUrls({ firefox, urls, hosts: [...new Set(picked.map((c) => c.host))], timeoutMs: 60_000, env: { NCFENCE_CONFIG: config }, retryAfterMs: BIT_RELOAD_MS });
    t.deepEqual(
      urls.map((u) => r.results[u]),
      ['load', 'load', 'load', 'load', 'load', 'error', 'error', 'error'],
      `${r.output.slice(-1500)}\n${log.join('\n')}`,
    );
  } finally {
    await svc.close();
    await Promise.all(servers.map((s) => s.close()));
  }
});

for (const [name, source] of HASHED_SOURCES.filter(([n]) => n !== 'Namecoin Core')) {
  test.serial(`headless Firefox through ${name}: ncgencert's hashed chains load at the apex, depth 1 and depth 2; a stranger key and a certified chain (this source cannot check owners) do not`, async (t) => {
    const { copyFirefoxInstall, probeUrls } = await import('../helpers/firefox.js');
    const { startTlsServer } = await import('../helpers/tlsServer.js');
    const firefox = await copyFirefoxInstall(join(dir, `firefox-${name.split(' ')[0]}`), MODULE);
    const picked = [...HASHED, C.stranger, C.certWww];
    const servers = await Promise.all(picked.map((c) => startTlsServer({ certChainPem: read(c.dir, 'chain.pem'), keyPem: read(c.dir, 'key.pem') })));
    const s = await source();
    const log: string[] = [];
    const svc = await serve({ socket, ...s, log: (l) => log.push(l) });
    try {
      const urls = picked.map((c, i) => `https://${c.host}:${servers[i]!.port}/f${i}.js`);
      const r = await probeUrls({ firefox, urls, hosts: [...new Set(picked.map((c) => c.host))], timeoutMs: 60_000, env: { NCFENCE_CONFIG: config }, retryAfterMs: BIT_RELOAD_MS });
      t.deepEqual(urls.map((u) => r.results[u]), ['load', 'load', 'load', 'error', 'error'], `${r.output.slice(-1500)}\n${log.join('\n')}`);
    } finally {
      await svc.close();
      await s.cleanup?.();
      await Promise.all(servers.map((x) => x.close()));
    }
  });
}
