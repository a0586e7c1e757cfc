// docs/browsing-bit.md, tested (issue 20): Debian's unbound, configured with
// the guide's file and the root trust anchor, resolves .bit names from a
// loopback authoritative server (Knot standing in for ncdns: its port
// replaces 5391), also when a forward zone for "." goes nowhere (as
// dnssec-trigger may leave it), and not without the guide's
// domain-insecure line. Then `ncfence doctor --bit-name` through that
// unbound: a site whose record vouches for its key loads, and each way it
// can fail says which step failed and what a browser shows.
// Everything listens on 127.0.0.1, on ports of its own; every process is
// killed afterwards.

import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as dnsPromises } from 'node:dns';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../../src/namecoin/serve.js';
import { startKnot, type Knot } from '../helpers/knot.js';
import { makeNamecoinSite, type NamecoinSite } from '../helpers/namecoinPki.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { startTlsServer, type TlsServer } from '../helpers/tlsServer.js';
import { CLI, P11KIT_TRUST, ROOT } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

const ROOT_KEY = '/usr/share/dns/root.key'; // dns-root-data, which Debian's unbound takes its root trust anchor from

let dir: string;
let knot: Knot;
let site: NamecoinSite; // example.bit, its record pins its key
let stranger: NamecoinSite; // other.bit, whose record pins example.bit's key instead
let unrecorded: NamecoinSite; // norecord.bit: an address, no TLS record
let pki: TestPki; // a public CA (fenced), which issues a .bit certificate
const servers: TlsServer[] = [];
const ports: Record<'example' | 'other' | 'norecord' | 'public', number> = { example: 0, other: 0, norecord: 0, public: 0 };
let closedPort: number;
let svc: Awaited<ReturnType<typeof serve>>;
let socket: string;
let config: string; // a view that asks the service
let configNoService: string; // a view naming a socket nothing listens on
const unbounds: ChildProcess[] = [];

const freePort = (): Promise<number> =>
  new Promise((r) => {
    const s: Server = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });

/** The unbound configuration docs/browsing-bit.md gives (the ```conf block with the stub zone), with the stand-in's port. */
function guideConfig(port: number): string {
  const doc = readFileSync(join(ROOT, 'docs/browsing-bit.md'), 'utf8');
  const block = [...doc.matchAll(/```conf\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('stub-zone:'));
  if (!block || !block.includes('127.0.0.1@5391')) throw new Error('docs/browsing-bit.md has no unbound stub zone for 127.0.0.1@5391');
  return block.replace('127.0.0.1@5391', `127.0.0.1@${port}`);
}

/** Starts unbound with the guide's file included; resolves once it answers on its port (bounded). */
async function startUnbound(name: string, included: string, extra = ''): Promise<number> {
  const d = join(dir, name);
  mkdirSync(d);
  const port = await freePort();
  copyFileSync(ROOT_KEY, join(d, 'root.key'));
  writeFileSync(join(d, 'ncdns.conf'), included);
  writeFileSync(
    join(d, 'unbound.conf'),
    [
      'server:', '  interface: 127.0.0.1', `  port: ${port}`, '  do-ip6: no', '  username: ""', '  chroot: ""', `  directory: "${d}"`, `  pidfile: "${d}/unbound.pid"`,
      '  use-syslog: no', '  logfile: ""', '  verbosity: 0', '  num-threads: 1', '  access-control: 127.0.0.0/8 allow',
      // Validation on, from the root's trust anchor, as Debian's unbound runs (root-auto-trust-anchor-file.conf).
      `  trust-anchor-file: "${d}/root.key"`,
      'remote-control:', '  control-enable: no',
      extra,
      `include: "${d}/ncdns.conf"`, '',
    ].join('\n'),
  );
  const check = await run('unbound-checkconf', [join(d, 'unbound.conf')], { timeoutMs: 30_000 });
  if (check.code !== 0) throw new Error(`unbound-checkconf refused the configuration: ${check.stdout}${check.stderr}`);
  const child = spawn('unbound', ['-d', '-c', join(d, 'unbound.conf')], { stdio: 'ignore' });
  unbounds.push(child);
  const deadline = Date.now() + 15_000;
  const r = new dnsPromises.Resolver({ timeout: 500, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  while (Date.now() < deadline) {
    try {
      await r.resolveSoa('ncfence-probe.invalid');
      return port;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' && code !== 'ETIMEOUT') return port; // it answered (NXDOMAIN, SERVFAIL): it is up
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  throw new Error(`unbound (${name}) did not answer within 15 s`);
}

let unboundPort: number;

test.before(async () => {
  for (const tool of ['unbound', 'unbound-checkconf', 'knotd', 'tstclnt', 'openssl']) await requireTool(tool);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-browsing-'));
  site = await makeNamecoinSite('example.bit');
  stranger = await makeNamecoinSite('other.bit');
  unrecorded = await makeNamecoinSite('norecord.bit');
  pki = await makeTestPki(['www.public.bit']);
  const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');
  knot = await startKnot(
    { 'example.bit': [`2 1 0 ${hex(site.ownerSpkiB64)}`], 'other.bit': [`2 1 0 ${hex(site.ownerSpkiB64)}`] },
    'example.bit',
    ['www.example 600 IN A 127.0.0.1', 'www.other 600 IN A 127.0.0.1', 'www.norecord 600 IN A 127.0.0.1', 'www.public 600 IN A 127.0.0.1'],
  );
  unboundPort = await startUnbound('guide', guideConfig(knot.port));
  for (const [k, chain, key] of [
    ['example', site.chainPem, site.keyPem],
    ['other', stranger.chainPem, stranger.keyPem],
    ['norecord', unrecorded.chainPem, unrecorded.keyPem],
    ['public', pki.leaves.get('www.public.bit')!.chainPem, pki.leaves.get('www.public.bit')!.keyPem],
  ] as const) {
    const s = await startTlsServer({ certChainPem: chain, keyPem: key });
    servers.push(s);
    ports[k] = s.port;
  }
  closedPort = await freePort();
  mkdirSync(join(dir, 'run'), { mode: 0o700 });
  socket = join(dir, 'run', 's.sock');
  svc = await serve({ socket, dns: `127.0.0.1:${knot.port}` });
  for (const [name, service] of [['view', socket], ['view-down', join(dir, 'run', 'nobody-here.sock')]] as const) {
    const b = await run(process.execPath, ['--import', 'tsx', CLI, 'build', '--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`, '--out', join(dir, name), '--service', service], { timeoutMs: 60_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
    if (b.code !== 0) throw new Error(`build failed: ${b.stderr}`);
  }
  config = join(dir, 'view', 'ncfence.conf');
  configNoService = join(dir, 'view-down', 'ncfence.conf');
});

test.after.always(async () => {
  for (const u of unbounds) if (u.exitCode === null) u.kill('SIGKILL');
  await svc?.close();
  for (const s of servers) await s.close();
  await knot?.stop();
  site?.cleanup();
  stranger?.cleanup();
  unrecorded?.cleanup();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function resolveThrough(port: number, name: string, timeoutMs = 8000): Promise<string> {
  const r = new dnsPromises.Resolver({ timeout: timeoutMs, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  try {
    return (await r.resolve4(name)).join(',');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'error';
  }
}

test('unbound with the guide\'s file resolves .bit names from the loopback server for bit., and answers NXDOMAIN for a name it does not have', async (t) => {
  t.is(await resolveThrough(unboundPort, 'www.example.bit'), '127.0.0.1');
  t.is(await resolveThrough(unboundPort, 'nothing-here.bit'), 'ENOTFOUND');
});

test('the stub zone wins over a forward zone for "." that goes nowhere (dnssec-trigger\'s forwarding)', async (t) => {
  const port = await startUnbound('forward-dead', guideConfig(knot.port), `forward-zone:\n  name: "."\n  forward-addr: 127.0.0.1@${closedPort}`);
  t.is(await resolveThrough(port, 'www.example.bit'), '127.0.0.1');
});

test('without the guide\'s domain-insecure line, the validating unbound does not resolve .bit names (the root has no bit.)', async (t) => {
  const withoutLine = guideConfig(knot.port).replace(/^\s*domain-insecure:.*\n/m, '');
  t.notRegex(withoutLine, /domain-insecure/);
  const port = await startUnbound('no-insecure', withoutLine, `forward-zone:\n  name: "."\n  forward-addr: 127.0.0.1@${closedPort}`);
  t.not(await resolveThrough(port, 'www.example.bit', 6000), '127.0.0.1');
});

interface DoctorCase {
  name: string;
  args: () => string[];
  config?: () => string;
  code: number;
  lines: RegExp[];
}

const doctorCases: DoctorCase[] = [
  {
    name: 'a site whose record vouches for its key: every step passes and NSS accepts it',
    args: () => ['--bit-name', `www.example.bit:${ports.example}`, '--resolver', `127.0.0.1:${unboundPort}`],
    code: 0,
    lines: [
      /^ {2}ok {3}name resolves: www\.example\.bit is 127\.0\.0\.1 \(asked the DNS server 127\.0\.0\.1:\d+\)$/m,
      /^ {2}ok {3}site answers: 127\.0\.0\.1:\d+ sent 2 certificates$/m,
      /^ {2}ok {3}Namecoin chain: the site's chain is issued by "example\.bit Domain AIA Parent CA"/m,
      /^ {2}ok {3}\.bit service \(NCFENCE_CONFIG=.*\): .*s\.sock vouches for the key that signed example\.bit's Domain CA/m,
      /^ {2}ok {3}what a browser gets \(NCFENCE_CONFIG=.*\): NSS, through .*libncfence\.so, accepts the chain: a browser using this install loads https:\/\/www\.example\.bit:\d+\/$/m,
    ],
  },
  {
    name: 'a record for another key: the service answers with that key, which did not sign the site, and a browser shows unknown issuer',
    args: () => ['--bit-name', `www.other.bit:${ports.other}`, '--resolver', `127.0.0.1:${unboundPort}`],
    code: 1,
    lines: [
      /^ {2}FAIL \.bit service \(.*\): .*s\.sock answered with the key other\.bit's TLS record pins, but the site's Domain CA is signed by another key$/m,
      /^ {2}FAIL what a browser gets \(.*\): NSS, through .*, refuses the chain: a browser shows "Warning: Potential Security Risk Ahead" \(SEC_ERROR_UNKNOWN_ISSUER\)/m,
      /^ {7}fix: /m,
    ],
  },
  {
    name: 'a name with no TLS record: the service has no anchor, a browser shows unknown issuer',
    args: () => ['--bit-name', `www.norecord.bit:${ports.norecord}`, '--resolver', `127.0.0.1:${unboundPort}`],
    code: 1,
    lines: [/^ {2}FAIL \.bit service \(.*\): .*s\.sock: it has no anchor for this key; its log .* names the reason/m, /SEC_ERROR_UNKNOWN_ISSUER/],
  },
  {
    name: 'a public CA\'s certificate for a .bit name: not a Namecoin chain, refused by the fence',
    args: () => ['--bit-name', `www.public.bit:${ports.public}`, '--resolver', `127.0.0.1:${unboundPort}`],
    code: 1,
    lines: [/^ {2}FAIL Namecoin chain: the chain the site sends does not lead to a Namecoin "Domain AIA Parent CA"/m, /SEC_ERROR_CERT_NOT_IN_NAME_SPACE/],
  },
  {
    name: 'a name the resolver does not have: stops at the first step, with the guide as the fix',
    args: () => ['--bit-name', 'missing.bit', '--resolver', `127.0.0.1:${unboundPort}`],
    code: 1,
    lines: [/^ {2}FAIL name resolves: asked the DNS server 127\.0\.0\.1:\d+: missing\.bit does not exist there \(NXDOMAIN\)$/m, /fix: a browser shows "Server Not Found": .*docs\/browsing-bit\.md/],
  },
  {
    name: 'nothing listens on the site\'s port',
    args: () => ['--bit-name', `www.example.bit:${closedPort}`, '--resolver', `127.0.0.1:${unboundPort}`],
    code: 1,
    lines: [/^ {2}FAIL site answers: 127\.0\.0\.1:\d+: .*refused the connection: nothing listens there$/m],
  },
  {
    name: 'the service named in the configuration is not running',
    args: () => ['--bit-name', `www.example.bit:${ports.example}`, '--resolver', `127.0.0.1:${unboundPort}`],
    config: () => configNoService,
    code: 1,
    lines: [/^ {2}FAIL \.bit service \(.*\): .*nobody-here\.sock (does not exist|refused the connection)/m, /SEC_ERROR_UNKNOWN_ISSUER/],
  },
  {
    name: 'through the system resolver, which has no bit.',
    args: () => ['--bit-name', 'ncfence-no-such-name.bit'],
    code: 1,
    lines: [/^ {2}FAIL name resolves: asked the system resolver: ncfence-no-such-name\.bit /m],
  },
];

for (const c of doctorCases) {
  test(`doctor --bit-name: ${c.name}`, async (t) => {
    const r = await run(process.execPath, ['--import', 'tsx', CLI, 'doctor', ...c.args()], { timeoutMs: 90_000, env: { ...process.env, NCFENCE_CONFIG: c.config?.() ?? config } });
    t.false(r.timedOut);
    t.is(r.code, c.code, r.stdout + r.stderr);
    for (const re of c.lines) t.regex(r.stdout, re);
    t.is(r.stderr, '');
  });
}

test('doctor --bit-name refuses what is not a .bit name, in one line', async (t) => {
  const r = await run(process.execPath, ['--import', 'tsx', CLI, 'doctor', '--bit-name', 'www.example.com'], { timeoutMs: 30_000 });
  t.is(r.code, 2);
  t.is(r.stderr.trim(), 'ncfence: --bit-name www.example.com: not a .bit name (e.g. --bit-name www.example.bit, or www.example.bit:8443)');
});
