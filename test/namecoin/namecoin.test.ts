// Namecoin anchors end to end through the real module: the live service
// (ncfence serve, rules source) answers the module's lookups for a
// Namecoin-style chain; tstclnt against a real TLS server is the judge.
// The fake public hierarchy (served by p11-kit-trust) stays fenced.

import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { TARGET_POLICY } from '../../src/policy.js';
import { serve } from '../../src/namecoin/serve.js';
import { makeNamecoinSite, type NamecoinSite } from '../helpers/namecoinPki.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { bitVerdict, startOpensslServer, tstclnt } from '../helpers/nss.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';

// A first visit may fail closed while the service's answer is on the way (the module waits for it only
// briefly: addon/live.c); a reload then finds it. The probe reloads a script that failed once, so an
// error here means refused twice.
const BIT_RELOAD_MS = 1500;

let dir: string;
let site: NamecoinSite;
let other: NamecoinSite;
let pki: TestPki;
let config: string;
let socket: string;
let rulesFile: string;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-nmc-test-'));
  site = await makeNamecoinSite('example.bit');
  other = await makeNamecoinSite('other.bit');
  pki = await makeTestPki(['www.example.bit', 'www.example.com']);
  const run = join(dir, 'run');
  mkdirSync(run, { mode: 0o700 });
  socket = join(run, 'service.sock');
  rulesFile = join(dir, 'rules.json');
  // Firefox reads this view: the browser targets' policy (build's own default for this upstream is p11-kit.json, which mozilla::pkix cannot read).
  config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out'), service: socket, policyFile: TARGET_POLICY.browser })).config;
  chmodSync(dir, 0o700);
});
test.after.always(() => {
  site?.cleanup();
  other?.cleanup();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function writeRules(domains: Record<string, string[]>): void {
  const doc = { schema: 1, domains: Object.fromEntries(Object.entries(domains).map(([d, keys]) => [d, keys.map((k) => [2, 1, 0, k])])) };
  writeFileSync(rulesFile, JSON.stringify(doc));
}

async function check(leafFile: string, keyFile: string, chainFile: string, host: string): Promise<{ ok: boolean; output: string }> {
  const server = await startOpensslServer(leafFile, keyFile, chainFile);
  try {
    return await bitVerdict(() => tstclnt(server.port, host, { module: MODULE }, { ...process.env, NCFENCE_CONFIG: config }));
  } finally {
    server.stop();
  }
}

const cases: { name: string; rules: () => Record<string, string[]>; service: boolean; ok: boolean }[] = [
  { name: 'the record vouches for the owner key: .bit loads', rules: () => ({ 'example.bit': [site.ownerSpkiB64] }), service: true, ok: true },
  { name: 'a key not in the record fails', rules: () => ({ 'example.bit': [other.ownerSpkiB64] }), service: true, ok: false },
  { name: 'no record fails', rules: () => ({}), service: true, ok: false },
  { name: "another domain's record cannot vouch", rules: () => ({ 'other.bit': [site.ownerSpkiB64] }), service: true, ok: false },
  { name: 'service stopped: .bit fails', rules: () => ({ 'example.bit': [site.ownerSpkiB64] }), service: false, ok: false },
];

for (const c of cases) {
  test.serial(`namecoin: ${c.name}`, async (t) => {
    writeRules(c.rules());
    const svc = c.service ? await serve({ socket, rules: rulesFile }) : undefined;
    try {
      const v = await check(site.leafFile, site.keyFile, site.domainCaFile, 'www.example.bit');
      t.is(v.ok, c.ok, v.output);
      // Public sites are unaffected either way.
      const leaf = pki.leaves.get('www.example.com')!;
      t.true((await check(leaf.certFile, leaf.keyFile, pki.interFile, 'www.example.com')).ok);
      // A public-CA certificate for the .bit name fails in every case.
      const pub = pki.leaves.get('www.example.bit')!;
      const p = await check(pub.certFile, pub.keyFile, pki.interFile, 'www.example.bit');
      t.false(p.ok, p.output);
    } finally {
      await svc?.close();
    }
  });
}

test.serial('namecoin: headless Firefox loads the .bit site through the live service, and not without it', async (t) => {
  const { copyFirefoxInstall, probeUrls } = await import('../helpers/firefox.js');
  const { startTlsServer } = await import('../helpers/tlsServer.js');
  const firefox = await copyFirefoxInstall(join(dir, 'firefox'), MODULE);
  const nmc = await startTlsServer({ certChainPem: site.chainPem, keyPem: site.keyPem });
  const pubLeaf = pki.leaves.get('www.example.com')!;
  const pub = await startTlsServer({ certChainPem: pubLeaf.chainPem, keyPem: pubLeaf.keyPem });
  const bitUrl = `https://www.example.bit:${nmc.port}/nmc.js`;
  const comUrl = `https://www.example.com:${pub.port}/pub.js`;
  const probe = (n: number) =>
    probeUrls({ firefox, urls: [`${bitUrl}?${n}`, `${comUrl}?${n}`], hosts: ['www.example.bit', 'www.example.com'], timeoutMs: 60_000, env: { NCFENCE_CONFIG: config }, retryAfterMs: BIT_RELOAD_MS });
  writeRules({ 'example.bit': [site.ownerSpkiB64] });
  try {
    const svc = await serve({ socket, rules: rulesFile });
    let up;
    try {
      up = await probe(1);
    } finally {
      await svc.close();
    }
    t.is(up.results[`${bitUrl}?1`], 'load', up.output.slice(-2000));
    t.is(up.results[`${comUrl}?1`], 'load');
    const down = await probe(2);
    t.is(down.results[`${bitUrl}?2`], 'error', 'service stopped: the .bit site fails');
    t.is(down.results[`${comUrl}?2`], 'load', 'service stopped: public sites still load');
  } finally {
    await nmc.close();
    await pub.close();
  }
});

test.serial('namecoin: the service started by systemd socket activation answers the module', async (t) => {
  const { spawn } = await import('node:child_process');
  const { CLI } = await import('../helpers/paths.js');
  writeRules({ 'example.bit': [site.ownerSpkiB64] });
  // systemd-socket-activate listens like a .socket unit and starts the service on the first connection.
  const activator = spawn('systemd-socket-activate', ['-l', socket, process.execPath, '--import', 'tsx', CLI, 'serve', '--socket', socket, '--rules', rulesFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let log = '';
  activator.stderr.on('data', (d: Buffer) => (log += d.toString()));
  try {
    for (let i = 0; i < 50 && !log.includes('Listening on'); i++) await new Promise((r) => setTimeout(r, 100));
    t.regex(log, /Listening on/);
    // The first connection starts the service, which takes about a second; the module asks and does not
    // wait that long (addon/live.c), so that visit may fail closed. The service answers it, and the visits after it verify.
    await check(site.leafFile, site.keyFile, site.domainCaFile, 'www.example.bit');
    for (let i = 0; i < 100 && !/serving \.bit anchors/.test(log); i++) await new Promise((r) => setTimeout(r, 100));
    t.regex(log, /serving \.bit anchors/);
    const v = await check(site.leafFile, site.keyFile, site.domainCaFile, 'www.example.bit');
    t.true(v.ok, v.output + log);
  } finally {
    try {
      process.kill(-activator.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    await new Promise((r) => setTimeout(r, 300));
    try {
      process.kill(-activator.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(socket, { force: true });
  }
});

test.serial('namecoin: the DNS source (a real Knot server with a bit. zone) vouches, and a removed record fails', async (t) => {
  const { startKnot } = await import('../helpers/knot.js');
  const hexKey = Buffer.from(site.ownerSpkiB64, 'base64').toString('hex');
  for (const [records, ok] of [[{ 'example.bit': [`2 1 0 ${hexKey}`] }, true], [{ 'other.bit': [`2 1 0 ${hexKey}`] }, false]] as const) {
    const knot = await startKnot(records, Object.keys(records)[0]!);
    const svc = await serve({ socket, dns: `127.0.0.1:${knot.port}` });
    try {
      const v = await check(site.leafFile, site.keyFile, site.domainCaFile, 'www.example.bit');
      t.is(v.ok, ok, v.output);
    } finally {
      await svc.close();
      await knot.stop();
    }
  }
});

test.serial('namecoin: the Namecoin Core RPC source (a fixture of its documented RPC) vouches through name_show', async (t) => {
  const { startNamecoind } = await import('../fixtures/namecoind.js');
  const node = await startNamecoind({ auth: 'cookie' });
  try {
    // Compact JSON: a default node shows values in its "ascii" encoding only.
    node.setName('d/example', JSON.stringify({ map: { '*': { tls: [[2, 1, 0, site.ownerSpkiB64]] } } }));
    const svc = await serve({ socket, rpc: node.url, rpcCookie: node.cookieFile });
    try {
      const v = await check(site.leafFile, site.keyFile, site.domainCaFile, 'www.example.bit');
      t.true(v.ok, v.output);
      t.deepEqual(node.calls.map((c) => c.method), ['name_show']);
    } finally {
      await svc.close();
    }
  } finally {
    await node.close();
  }
});

test.serial('namecoin: searches by value, by class only and the empty template find what the service answered', async (t) => {
  const { execFile } = await import('node:child_process');
  const { createRequire } = await import('node:module');
  writeRules({ 'example.bit': [site.ownerSpkiB64] });
  const svc = await serve({ socket, rules: rulesFile });
  // The module runs in a child process: this one serves its lookups.
  const script = `
    const pk = require(process.env.PKCS11JS);
    const p = new pk.PKCS11(); p.load(process.env.MODULE); p.C_Initialize({ flags: 2 });
    const [slot] = p.C_GetSlotList(true); const s = p.C_OpenSession(slot, pk.CKF_SERIAL_SESSION);
    const find = (t) => { p.C_FindObjectsInit(s, t); const r = []; for (let h = p.C_FindObjects(s, 100); h.length; h = p.C_FindObjects(s, 100)) r.push(...h); p.C_FindObjectsFinal(s); return r; };
    const label = (h) => p.C_GetAttributeValue(s, h, [{ type: pk.CKA_LABEL }])[0].value.toString();
    const cert = Buffer.alloc(8); cert.writeBigUInt64LE(1n);
    const rootName = Buffer.from(process.env.ROOT_NAME, 'hex');
    const bySubject = find([{ type: pk.CKA_CLASS, value: cert }, { type: pk.CKA_SUBJECT, value: rootName }]);
    const value = p.C_GetAttributeValue(s, bySubject[0], [{ type: pk.CKA_VALUE }])[0].value;
    const byValue = find([{ type: pk.CKA_VALUE, value }]);
    const classOnly = find([{ type: pk.CKA_CLASS, value: cert }]).map(label);
    const empty = find([]).map(label);
    process.stdout.write(JSON.stringify({ bySubject: bySubject.map(label), byValue: byValue.map(label), classOnly, empty }));
    p.C_Finalize();`;
  try {
    const env = {
      ...process.env,
      NCFENCE_CONFIG: config,
      PKCS11JS: createRequire(import.meta.url).resolve('pkcs11js'),
      MODULE,
      ROOT_NAME: Buffer.from(svc.lookup.rootName()).toString('hex'),
    };
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['-e', script], { env, timeout: 30_000 }, (e, so, se) => (e ? reject(new Error(`${e.message}\n${se}`)) : resolve(so))),
    );
    const r = JSON.parse(out) as Record<string, string[]>;
    t.deepEqual(r.bySubject, ['Namecoin Root CA']);
    t.deepEqual(r.byValue, ['Namecoin Root CA']);
    t.true(r.classOnly!.includes('Namecoin Root CA'));
    t.true(r.empty!.includes('Namecoin Root CA'));
  } finally {
    await svc.close();
  }
});

test.serial('namecoin: the module starts the service on demand when configured, and then verifies', async (t) => {
  const { DIST_CLI } = await import('../helpers/paths.js');
  const { readFileSync, readdirSync, existsSync } = await import('node:fs');
  t.true(existsSync(DIST_CLI), 'npm ci builds dist/');
  writeRules({ 'example.bit': [site.ownerSpkiB64] });
  const onDemand = join(dir, 'on-demand.conf');
  writeFileSync(onDemand, `${readFileSync(config, 'utf8')}service-command = ${DIST_CLI} serve --socket ${socket} --rules ${rulesFile}\nservice-timeout-ms = 8000\n`);
  let started = 0;
  try {
    const server = await startOpensslServer(site.leafFile, site.keyFile, site.domainCaFile);
    try {
      // The first visit starts the service and does not wait for it (a search never waits past the
      // module's small budget: addon/live.c), so it may fail closed; once the service listens, visits verify.
      const env = { ...process.env, NCFENCE_CONFIG: onDemand };
      const first = await tstclnt(server.port, 'www.example.bit', { module: MODULE }, env);
      for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
      t.true(existsSync(socket), `the module started the service (first visit: ${first.ok ? 'verified' : 'failed closed'})`);
      const v = await tstclnt(server.port, 'www.example.bit', { module: MODULE }, env);
      t.true(v.ok, v.output);
    } finally {
      server.stop();
    }
  } finally {
    // The started service outlives the module by design; this test stops it.
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(socket)) {
          process.kill(Number(pid), 'SIGTERM');
          started++;
        }
      } catch {
        // gone already
      }
    }
  }
  t.is(started, 1, 'exactly one service was started by the module');
});
