// What a slow .bit source costs everything else, and what a first visit to
// a .bit site costs. NSS searches a token on its default session under the
// slot's lock (nss lib/dev/devtoken.c find_objects), so whatever the module
// waits for in C_FindObjectsInit, every other certificate lookup of the
// process waits for too.
//
// 1. NSS process (test/native/nsslookup.c, gcc -O2): an ordinary lookup of a
//    public root by subject (CERT_CreateSubjectCertList, what mozilla::pkix's
//    issuer search calls; C_FindObjectsInit..Final through the module), alone
//    and then while 1 or 4 threads look up distinct Namecoin AIA parent names
//    in a loop, in one process run, against: no service configured (the
//    control: what NSS's own lock contention costs), the real service over a
//    Namecoin Core that never answers, and one that answers in 200 ms and in
//    2 s. Budget: median <= 10 ms, worst <= 250 ms.
// 2. Headless Firefox: a page loading one `.com` script, the same page with
//    8 hostile chains (distinct Namecoin AIA parent names, Namecoin Core
//    never answers) loading beside it, and with 8 chains of an unknown
//    public CA instead (the control: failing handshakes the module asks no
//    one about); rounds rotate the order, each page a fresh Firefox. The
//    `.com` load time (page-measured, handshake included) and what the
//    hostile chains add to it.
// 3. Headless Firefox, a first visit to a Namecoin-anchored `.bit` site (cold
//    service, cold module) with Namecoin Core answering in 5 ms, 200 ms and
//    2 s: whether the first try loads and how long it takes, and whether a
//    reload 2.5 s later loads.
//
//   node --import tsx bench/stall.bench.ts [--out FILE] [--quick]

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../src/compile/build.js';
import { P11KIT_TRUST } from '../src/install/common.js';
import { serve } from '../src/namecoin/serve.js';
import { TARGET_POLICY } from '../src/policy.js';
import { startHungNamecoind, startNamecoind } from '../test/fixtures/namecoind.js';
import { copyFirefoxInstall, probeUrls } from '../test/helpers/firefox.js';
import { buildNssLookup, type NssLookupResult } from '../test/helpers/native.js';
import { makeNamecoinSite } from '../test/helpers/namecoinPki.js';
import { makeTestPki } from '../test/helpers/pki.js';
import { run } from '../test/helpers/run.js';
import { startTlsServer } from '../test/helpers/tlsServer.js';
import { CKBI, MODULE, machineInfo, median, parseArgs, stats, writeJsonAtomic, type Stats } from './lib.js';

const args = parseArgs('stall');
const ORDINARY = args.quick ? 500 : 2000;
const ATTACK_MS = 8000;
const FIREFOX_ROUNDS = args.quick ? 2 : 5;
const FIRST_VISIT_ROUNDS = args.quick ? 1 : 3;
const HOSTILE_CHAINS = 8;
const RELOAD_AFTER_MS = 2500;
const SETTLE_MS = 3000;
const BUDGET = { medianMs: 10, worstMs: 250 };
const ROOT_NICKNAME = 'Builtin Object Token:ISRG Root X1';

const dir = mkdtempSync(join(tmpdir(), 'ncfence-bench-stall-'));
let seq = 0;
const fresh = (): { own: string; socket: string } => {
  const own = join(dir, `r${seq++}`);
  mkdirSync(join(own, 'run'), { recursive: true, mode: 0o700 });
  return { own, socket: join(own, 'run', 's.sock') };
};
const ms = (ns: number[]): Stats => stats(ns.map((x) => x / 1e6));
const fmt = (s: Stats): string => `p50 ${s.p50.toFixed(2)}  p95 ${s.p95.toFixed(2)}  max ${s.max.toFixed(1)} ms`;
const lines: string[] = [];
const say = (line: string): void => {
  lines.push(line);
  process.stdout.write(`${line}\n`);
};

// ---------------------------------------------------------------- 1. NSS

type Source = 'none' | 'hung' | 200 | 2000;

async function nssScenario(nsslookup: string, source: Source, threads: number): Promise<Record<string, unknown>> {
  const { own, socket } = fresh();
  const view = await build({ upstream: CKBI, upstreamParams: '', outDir: join(own, 'view'), service: source === 'none' ? undefined : socket });
  let stop = async (): Promise<void> => undefined;
  if (source !== 'none') {
    const core = source === 'hung' ? await startHungNamecoind() : Object.assign(await startNamecoind({ auth: 'cookie' }), { delayMs: source });
    const svc = await serve({ socket, rpc: core.url, rpcCookie: core.cookieFile });
    stop = async () => (await svc.close(), await core.close());
  }
  try {
    const r = await run(nsslookup, [MODULE, ROOT_NICKNAME, String(ORDINARY), String(threads), '0', String(ATTACK_MS)], {
      env: { ...process.env, NCFENCE_CONFIG: view.config },
      timeoutMs: 600_000,
    });
    if (r.code !== 0) throw new Error(`nsslookup failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as NssLookupResult;
    const alone = ms(out.alone_ns);
    const attack = ms(out.attack_ns);
    const within = attack.p50 <= BUDGET.medianMs && attack.max <= BUDGET.worstMs;
    const what = source === 'none' ? 'no service (control)' : source === 'hung' ? 'Namecoin Core never answers' : `Namecoin Core answers in ${source} ms`;
    say(`${what}, ${threads} hostile thread${threads > 1 ? 's' : ''}:`);
    say(`  alone:        ${fmt(alone)}   (${out.alone_found}/${out.alone_ns.length} found)`);
    say(`  under attack: ${fmt(attack)}   (${out.attack_found}/${out.attack_done} found, ${out.hostile_done} hostile lookups, ${out.hostile_found} found anything)${source === 'none' ? '' : within ? '   within budget' : '   OVER BUDGET'}`);
    return { source, hostileThreads: threads, aloneMs: alone, attackMs: attack, found: { alone: out.alone_found, attack: out.attack_found, of: out.attack_done }, hostileLookups: out.hostile_done, hostileFound: out.hostile_found, withinBudget: within };
  } finally {
    await stop();
  }
}

// ---------------------------------------------------------------- 2. and 3. Firefox

async function firefoxSections(): Promise<{ hostile: Record<string, unknown>; firstVisit: Record<string, unknown>[] }> {
  const pki = await makeTestPki(['www.example.com']);
  const legit = await makeNamecoinSite('example.bit');
  const hostileSites = await Promise.all(Array.from({ length: HOSTILE_CHAINS }, (_, i) => makeNamecoinSite(`h${i}.bit`)));
  const com = pki.leaves.get('www.example.com')!;
  const comServer = await startTlsServer({ certChainPem: com.chainPem, keyPem: com.keyPem });
  const bitServer = await startTlsServer({ certChainPem: legit.chainPem, keyPem: legit.keyPem });
  const hostileServers = await Promise.all(hostileSites.map((s) => startTlsServer({ certChainPem: s.chainPem, keyPem: s.keyPem })));
  const unknown = await makeTestPki(['www.unknown.example.org'], '/O=ncfence bench/CN=Unknown Public Root CA');
  const stranger = unknown.leaves.get('www.unknown.example.org')!;
  const controlServers = await Promise.all(hostileSites.map(() => startTlsServer({ certChainPem: stranger.chainPem, keyPem: stranger.keyPem })));
  const hosts = ['www.example.com', 'www.example.bit', ...hostileSites.map((s) => `www.${s.domain}`), ...controlServers.map((_, i) => `www.u${i}.example.org`)];
  const { own, socket } = fresh();
  // The policy a browser's install takes (default.json), as in `ncfence install firefox`: build on its own
  // would take p11-kit.json for this upstream, whose NSS form Firefox refuses the .com under.
  const view = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(own, 'view'), service: socket, policyFile: TARGET_POLICY.browser });
  const firefox = await copyFirefoxInstall(join(own, 'firefox'), MODULE);
  // The loads start 3 s after the page, once the browser has settled from its start-up.
  const probe = (urls: string[], retryAfterMs?: number) =>
    probeUrls({ firefox, urls, hosts, timeoutMs: 90_000, env: { NCFENCE_CONFIG: view.config }, retryAfterMs, startAfterMs: SETTLE_MS });
  try {
    // 2. 8 hostile chains beside a .com load, against a Namecoin Core that never answers; and, as a
    // control, 8 chains that fail for a reason that is not Namecoin's (an unknown public CA: the module
    // asks no one), which shows what 8 failing handshakes cost the page by themselves.
    const core = await startHungNamecoind();
    const svc = await serve({ socket, rpc: core.url, rpcCookie: core.cookieFile });
    const kinds = ['alone', 'control', 'hostile'] as const;
    const comMs: Record<(typeof kinds)[number], number[]> = { alone: [], control: [], hostile: [] };
    let hostileLoaded = 0;
    let comFailed = 0;
    try {
      for (let round = 0; round < FIREFOX_ROUNDS; round++) {
        const comUrl = `https://www.example.com:${comServer.port}/c.js?r=${round}`;
        const others = {
          alone: [] as string[],
          control: controlServers.map((srv, i) => `https://www.u${i}.example.org:${srv.port}/u.js?r=${round}`),
          hostile: hostileSites.map((site, i) => `https://www.${site.domain}:${hostileServers[i]!.port}/h.js?r=${round}`),
        };
        // A different order each round, so drift in machine load falls on all three.
        for (let k = 0; k < kinds.length; k++) {
          const kind = kinds[(k + round) % kinds.length]!;
          const url = `${comUrl}&${kind}`;
          const r = await probe([...others[kind], url]);
          if (r.results[url] !== 'load') comFailed++;
          if (kind === 'hostile') hostileLoaded += others.hostile.filter((u) => r.results[u] === 'load').length;
          comMs[kind].push(r.ms[url]!);
        }
      }
    } finally {
      await svc.close();
      await core.close();
    }
    const added = comMs.hostile.map((h, i) => h - comMs.alone[i]!);
    const addedOverControl = comMs.hostile.map((h, i) => h - comMs.control[i]!);
    const hostile = {
      rounds: FIREFOX_ROUNDS,
      hostileChains: HOSTILE_CHAINS,
      comMsAlone: stats(comMs.alone),
      comMsWithControlChains: stats(comMs.control),
      comMsWithHostileChains: stats(comMs.hostile),
      addedMsPaired: stats(added),
      addedMsMedian: median(added),
      addedOverControlMsMedian: median(addedOverControl),
      comFailed,
      hostileLoaded,
    };
    say(`Firefox, .com script load (handshake included), ${FIREFOX_ROUNDS} rounds, fresh browser each:`);
    say(`  page alone:                                        ${fmt(hostile.comMsAlone)}`);
    say(`  + ${HOSTILE_CHAINS} chains of an unknown public CA (control):       ${fmt(hostile.comMsWithControlChains)}`);
    say(`  + ${HOSTILE_CHAINS} hostile Namecoin chains (source never answers): ${fmt(hostile.comMsWithHostileChains)}`);
    say(`  added by the hostile chains (paired, median): ${hostile.addedMsMedian.toFixed(1)} ms (${hostile.addedOverControlMsMedian.toFixed(1)} ms over the control); .com failed ${comFailed} times, hostile chains loaded ${hostileLoaded} times`);

    // 3. First visit to a .bit site, Namecoin Core answering in 5 ms, 200 ms, 2 s.
    const firstVisit: Record<string, unknown>[] = [];
    for (const delay of [5, 200, 2000]) {
      const outcomes: { first: string; firstMs: number; final: string; comMs: number }[] = [];
      for (let round = 0; round < FIRST_VISIT_ROUNDS; round++) {
        const node = await startNamecoind({ auth: 'cookie' });
        node.setName('d/example', JSON.stringify({ map: { '*': { tls: [[2, 1, 0, legit.ownerSpkiB64]] } } }));
        node.delayMs = delay;
        const service = await serve({ socket, rpc: node.url, rpcCookie: node.cookieFile });
        try {
          const bitUrl = `https://www.example.bit:${bitServer.port}/b.js?d=${delay}&r=${round}`;
          const comUrl = `https://www.example.com:${comServer.port}/c.js?d=${delay}&r=${round}`;
          const r = await probe([bitUrl, comUrl], RELOAD_AFTER_MS);
          outcomes.push({ first: r.firstTry[bitUrl]!, firstMs: r.firstTry[bitUrl] === 'load' ? r.ms[bitUrl]! : Number.NaN, final: r.results[bitUrl]!, comMs: r.ms[comUrl]! });
        } finally {
          await service.close();
          await node.close();
        }
      }
      const loadedFirst = outcomes.filter((o) => o.first === 'load');
      const entry = {
        sourceDelayMs: delay,
        rounds: outcomes.length,
        firstTryLoaded: loadedFirst.length,
        firstTryMs: loadedFirst.length ? stats(loadedFirst.map((o) => o.firstMs)) : null,
        loadedAfterReload: outcomes.filter((o) => o.first !== 'load' && o.final === 'load').length,
        neverLoaded: outcomes.filter((o) => o.final !== 'load').length,
        comMsSamePage: stats(outcomes.map((o) => o.comMs)),
        outcomes,
      };
      firstVisit.push(entry);
      say(
        `Firefox, first visit to www.example.bit, Namecoin Core answering in ${delay} ms: first try loaded ${entry.firstTryLoaded}/${entry.rounds}` +
          (entry.firstTryMs ? ` (p50 ${entry.firstTryMs.p50.toFixed(1)} ms; .com on the same page p50 ${entry.comMsSamePage.p50.toFixed(1)} ms)` : '') +
          `, loaded after a reload ${RELOAD_AFTER_MS / 1000} s later ${entry.loadedAfterReload}, never ${entry.neverLoaded}`,
      );
    }
    return { hostile, firstVisit };
  } finally {
    await Promise.all([comServer, bitServer, ...hostileServers, ...controlServers].map((s) => s.close()));
    for (const made of [pki, unknown, legit, ...hostileSites]) made.cleanup();
  }
}

try {
  const nsslookup = await buildNssLookup(dir, '-O2');
  say(`stall bench: an ordinary NSS lookup of ${ROOT_NICKNAME} (ms), ${ORDINARY} alone, then up to ${ORDINARY} over ${ATTACK_MS / 1000} s of attack`);
  const nss: Record<string, unknown>[] = [];
  for (const source of ['none', 'hung', 200, 2000] as Source[]) for (const threads of [1, 4]) nss.push(await nssScenario(nsslookup, source, threads));
  const { hostile, firstVisit } = await firefoxSections();
  writeJsonAtomic(args.out, {
    bench: 'stall',
    machine: machineInfo(),
    parameters: { ordinary: ORDINARY, attackMs: ATTACK_MS, firefoxSettleMs: SETTLE_MS, firefoxRounds: FIREFOX_ROUNDS, firstVisitRounds: FIRST_VISIT_ROUNDS, hostileChains: HOSTILE_CHAINS, reloadAfterMs: RELOAD_AFTER_MS, budget: BUDGET },
    results: { nss, firefoxHostileChains: hostile, firefoxFirstVisit: firstVisit },
    summary: lines,
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
