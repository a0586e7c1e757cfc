// A failing .bit path says why (issue 13): `serve` checks its sources before
// it serves and names the one that cannot answer in one line; it logs one
// line per lookup with the outcome and each source's reason; `doctor` makes a
// test lookup over the configured socket and fails while nothing answers,
// and `status` agrees with it.

import test from 'ava';
import { createHash } from 'node:crypto';
import { createServer as createTcpServer, type Server } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../../src/namecoin/serve.js';
import { parseCertificate } from '../../src/engine/asn1/certificate.js';
import { makeNamecoinSite, type NamecoinSite } from '../helpers/namecoinPki.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { copyFirefoxInstall } from '../helpers/firefox.js';
import { fromPem } from '../helpers/pem.js';
import { CLI, P11KIT_TRUST } from '../helpers/paths.js';
import { run } from '../helpers/run.js';

let dir: string;
let site: NamecoinSite;
let other: NamecoinSite;
let pki: TestPki;
let closedPort: number;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-serve-diag-'));
  chmodSync(dir, 0o700);
  site = await makeNamecoinSite('example.bit');
  other = await makeNamecoinSite('other.bit');
  pki = await makeTestPki([]);
  // A port nothing listens on: bound, then closed.
  const s: Server = createTcpServer();
  closedPort = await new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
  await new Promise((r) => s.close(r));
});
test.after.always(() => {
  site?.cleanup();
  other?.cleanup();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], timeoutMs = 30_000) => run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeoutMs, env: { ...process.env, NCFENCE_CONFIG: '' } });

const startFailures: { name: string; args: () => string[]; message: RegExp }[] = [
  { name: 'an ncdns that is not running', args: () => ['--dns', `127.0.0.1:${closedPort}`], message: /source dns 127\.0\.0\.1:\d+ cannot answer: DNS server 127\.0\.0\.1:\d+ refused the connection: nothing listens there\. Start it first/ },
  { name: 'an ncdns on another host', args: () => ['--dns', '192.0.2.53:53'], message: /DNS server 192\.0\.2\.53 is not a loopback address/ },
  { name: 'a missing cookie file', args: () => ['--rpc', `http://127.0.0.1:${closedPort}/`, '--rpc-cookie', join(dir, 'no-such-cookie')], message: /RPC cookie file: .*no-such-cookie does not exist \(Namecoin Core writes it when it starts/ },
  { name: 'an RPC URL without a scheme', args: () => ['--rpc', `127.0.0.1:${closedPort}`, '--rpc-cookie', '/dev/null'], message: /RPC url "127\.0\.0\.1:\d+"/ },
  { name: 'an RPC URL to another host', args: () => ['--rpc', 'http://192.0.2.1:8336/', '--rpc-cookie', '/dev/null'], message: /only http:\/\/ to 127\.0\.0\.1, localhost or \[::1\] is allowed/ },
  { name: 'a Namecoin Core that is not running', args: () => { writeFileSync(join(dir, 'cookie'), '__cookie__:abc\n'); return ['--rpc', `http://127.0.0.1:${closedPort}/`, '--rpc-cookie', join(dir, 'cookie')]; }, message: /Namecoin Core at http:\/\/127\.0\.0\.1:\d+\/ refused the connection: nothing listens there/ },
];
for (const c of startFailures) {
  test(`serve refuses to start, in one line, with ${c.name}`, async (t) => {
    const r = await cli(['serve', '--socket', join(dir, `s-${startFailures.indexOf(c)}.sock`), ...c.args()]);
    t.false(r.timedOut, 'serve started anyway');
    t.not(r.code, 0);
    t.regex(r.stderr, c.message);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
}

test('serve logs one line per lookup: vouched, not found with each source\'s reason, refused for a record that vouches for no CA', async (t) => {
  const rules = join(dir, 'rules.json');
  // example.bit is pinned to its owner's key; other.bit only to a SHA-256, which vouches for no CA when the chain staples no key.
  // (A DANE-EE record served here before; the rules file now refuses records ncfence does not use when the service starts.)
  const digest = createHash('sha256').update(Buffer.from(other.ownerSpkiB64, 'base64')).digest('base64');
  writeFileSync(rules, JSON.stringify({ schema: 1, domains: { 'example.bit': [[2, 1, 0, site.ownerSpkiB64]], 'other.bit': [[2, 1, 1, digest]] } }));
  const lines: string[] = [];
  const svc = await serve({ socket: join(dir, 'log.sock'), rules, dns: `127.0.0.1:${closedPort}`, timeoutMs: 500, log: (l) => lines.push(l) });
  try {
    const aiaName = (s: NamecoinSite) => parseCertificate(fromPem(readFileSync(s.domainCaFile, 'utf8'))).issuer;
    t.is((await svc.lookup.answer(aiaName(site))).status, 0);
    t.is((await svc.lookup.answer(aiaName(other))).status, 1);
    const missing = await makeNamecoinSite('missing.bit');
    try {
      t.is((await svc.lookup.answer(parseCertificate(fromPem(readFileSync(missing.domainCaFile, 'utf8'))).issuer)).status, 1);
    } finally {
      missing.cleanup();
    }
  } finally {
    await svc.close();
  }
  t.is(lines.length, 3, lines.join('\n'));
  t.regex(lines[0]!, /^example\.bit: vouched for by rules .*rules\.json \(1 TLS record, ttl 600 s\)$/);
  t.regex(lines[1]!, /^other\.bit: refused \(wrong key\): rules .* has 1 TLS record, none that vouches for a CA key here \(ncfence uses DANE-TA/);
  t.regex(lines[2]!, /^missing\.bit: not found \(no record\): rules .*: no TLS record; dns 127\.0\.0\.1:\d+: source down: .*ECONNREFUSED.*$/);
});

test.serial('doctor makes a test lookup over the configured socket, fails while nothing answers, and status agrees', async (t) => {
  const ff = join(dir, 'firefox');
  await copyFirefoxInstall(ff);
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { mode: 0o700 });
  const socket = join(runDir, 'service.sock');
  const inst = await cli(['install', 'firefox', '--dir', ff, '--service', socket, '--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`], 120_000);
  t.is(inst.code, 0, inst.stderr);
  const down = await cli(['doctor', '--no-firefox', '--dir', ff]);
  t.is(down.code, 1);
  t.regex(down.stdout, new RegExp(`FAIL \\.bit service: ${socket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: nothing listens on .*; \\.bit sites fail until it answers\\n\\s+fix: start it`));
  const downStatus = JSON.parse((await cli(['status', '--json', '--dir', ff])).stdout) as { location: string; service: string }[];
  t.is(downStatus.find((r) => r.location === ff)?.service, 'unreachable');

  const rules = join(dir, 'rules-doctor.json');
  writeFileSync(rules, JSON.stringify({ schema: 1, domains: {} }));
  const svc = await serve({ socket, rules });
  try {
    const up = await cli(['doctor', '--no-firefox', '--dir', ff]);
    t.regex(up.stdout, /ok {3}\.bit service: .* answered a test lookup/);
    const upStatus = JSON.parse((await cli(['status', '--json', '--dir', ff])).stdout) as { location: string; service: string }[];
    t.is(upStatus.find((r) => r.location === ff)?.service, 'reachable');
  } finally {
    await svc.close();
  }
  t.is((await cli(['uninstall', 'firefox', '--dir', ff])).code, 0);
});
