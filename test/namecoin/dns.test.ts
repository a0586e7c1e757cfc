// The ncdns anchor source (src/namecoin/dns.ts) against a real authoritative
// server (Knot DNS, Debian package `knot`) serving a `bit.` zone, and against
// tiny fake TCP servers for the network faults and hostile replies a real
// server will not produce. Every answer is either the exact records or a typed
// EngineError, and every failure comes back well within its time limit.

import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../../src/engine/errors.js';
import { isLoopbackAddress, lookupTlsa } from '../../src/namecoin/dns.js';
import type { TlsAnswer as DnsTlsAnswer, TlsRecord } from '../../src/namecoin/records.js';
import { requireTool } from '../helpers/run.js';
import { freePort, prng } from '../helpers/ports.js';

const HOST = '127.0.0.1';
const TIMEOUT_MS = 2000;

let dir: string;
let knot: { port: number; child: ChildProcess; log: () => string };
const children = new Set<ChildProcess>();
const servers = new Set<FakeServer>();

// Keys and digests for the zone, generated per run.
let spkiExample: Uint8Array;
let shaSha: Uint8Array;
let spkiTwo: Uint8Array;
let spkiSub: Uint8Array;

test.before(async () => {
  await requireTool('knotd');
  dir = mkdtempSync(join(tmpdir(), 'ncfence-dns-test-'));
  spkiExample = newSpki();
  shaSha = sha256(newSpki());
  spkiTwo = newSpki();
  spkiSub = newSpki();
  knot = await startKnot(join(dir, 'knot'), zoneText());
});

test.after.always(async () => {
  await Promise.all([...servers].map((s) => s.close()));
  await Promise.all([...children].map((c) => stopProcess(c)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- fixtures

function newSpki(): Uint8Array {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * The `bit.` zone as ncdns would present it: TLSA records at the literal
 * wildcard name `*.<name>.bit`. SOA TTL 3600 but MINIMUM 300, so a negative
 * TTL of 300 shows the minimum was used. `deleg.bit` is delegated away, so the
 * server is not authoritative below it and answers there with a referral.
 */
function zoneText(): string {
  return [
    '$ORIGIN bit.',
    '$TTL 3600',
    '@ 3600 IN SOA ns.bit. hostmaster.bit. 1 3600 600 86400 300',
    '@ IN NS ns.bit.',
    'ns IN A 127.0.0.1',
    `*.example 600 IN TLSA 2 1 0 ${hex(spkiExample)}`,
    `*.sha 1200 IN TLSA 2 1 1 ${hex(shaSha)}`,
    `*.two 900 IN TLSA 2 1 0 ${hex(spkiTwo)}`,
    `*.two 900 IN TLSA 2 1 1 ${hex(sha256(spkiTwo))}`,
    `*.www.sub-domain9 450 IN TLSA 2 1 0 ${hex(spkiSub)}`,
    'example2 IN A 127.0.0.1',
    '*.nodata IN A 127.0.0.1',
    'deleg IN NS ns.deleg',
    'ns.deleg IN A 127.0.0.2',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- processes

function knotConfig(d: string, port: number): string {
  return [
    'server:',
    `    rundir: "${d}/run"`,
    `    listen: ${HOST}@${port}`,
    '    udp-workers: 1',
    '    tcp-workers: 1',
    '    background-workers: 1',
    'database:',
    `    storage: "${d}/db"`,
    'log:',
    '  - target: stderr',
    '    any: info',
    'template:',
    '  - id: default',
    `    storage: "${d}"`,
    '    zonefile-sync: -1',
    '    journal-content: none',
    'zone:',
    '  - domain: bit',
    '    file: "bit.zone"',
    '',
  ].join('\n');
}

/** Starts knotd in the foreground on a free port and waits (bounded) until it serves the zone. */
async function startKnot(d: string, zone: string): Promise<typeof knot> {
  mkdirSync(join(d, 'run'), { recursive: true });
  mkdirSync(join(d, 'db'), { recursive: true });
  writeFileSync(join(d, 'bit.zone'), zone);
  let lastLog = '';
  // The free port is found by binding and releasing it, so another process may
  // grab it in between (or hold it for UDP); then try again on another.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = join(d, 'knot.conf');
    writeFileSync(conf, knotConfig(d, port));
    let log = '';
    const child = spawn('knotd', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    if (await serving(child, port, 15_000)) return { port, child, log: () => log };
    await stopProcess(child);
    lastLog = log;
  }
  throw new Error(`knotd did not start serving the bit. zone:\n${lastLog}`);
}

async function serving(child: ChildProcess, port: number, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const a = await lookupTlsa('example.bit', { server: HOST, port, timeoutMs: 1000 });
      if (a.records.length === 1) return true;
    } catch {
      // not listening yet, or the zone is still loading (SERVFAIL)
    }
    await sleep(100);
  }
  return false;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  if (await within(exited, 5000)) return;
  child.kill('SIGKILL');
  await within(exited, 5000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `p` at most `ms`; true if it settled. The timer is cleared so it never holds the process open. */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([p.then(() => true), limit]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- fake servers

/** What a fake server does with one complete query: its reply bytes (sent, then FIN), or its own handling. */
type Responder = (query: Uint8Array, socket: Socket) => Uint8Array | 'silent' | Promise<Uint8Array | 'silent'>;

interface FakeServer {
  port: number;
  connections: number;
  /** Resolves when the client has closed (or destroyed) every connection so far. */
  allClosed(limitMs: number): Promise<boolean>;
  close(): Promise<void>;
}

async function fakeServer(respond: Responder): Promise<FakeServer> {
  const sockets = new Set<Socket>();
  const closings: Promise<void>[] = [];
  const server: Server = createServer((socket) => {
    fake.connections++;
    sockets.add(socket);
    closings.push(new Promise((resolve) => socket.once('close', () => resolve())));
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    readFramed(socket, async (query) => {
      const out = await respond(query, socket);
      if (out !== 'silent' && !socket.destroyed) socket.end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const fake: FakeServer = {
    port: (server.address() as { port: number }).port,
    connections: 0,
    allClosed: (limitMs) => within(Promise.all(closings), limitMs),
    close: () =>
      new Promise<void>((resolve) => {
        servers.delete(fake);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  servers.add(fake);
  return fake;
}

function readFramed(socket: Socket, onMessage: (msg: Uint8Array) => void): void {
  let buf = Buffer.alloc(0);
  let done = false;
  socket.on('data', (chunk: Buffer) => {
    if (done) return;
    buf = Buffer.concat([buf, chunk]);
    if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      done = true;
      onMessage(new Uint8Array(buf.subarray(2, 2 + buf.readUInt16BE(0))));
    }
  });
}

/** One query to a real server, raw bytes in and out (bounded), for the relays and the fuzz templates. */
function rawExchange(port: number, msg: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply from ${HOST}:${port} within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('connect', () => socket.write(frame(msg)));
    readFramed(socket, (reply) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    });
  });
}

/** A relay to knot that rewrites the header flags of knot's real reply in transit. */
function relayWithFlags(edit: (flags: number) => number): Responder {
  return async (query) => {
    const reply = Buffer.from(await rawExchange(knot.port, query));
    reply.writeUInt16BE(edit(reply.readUInt16BE(2)), 2);
    return frame(reply);
  };
}

function frame(msg: Uint8Array, declared = msg.length): Uint8Array {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(declared, 0);
  out.set(msg, 2);
  return out;
}

// ---------------------------------------------------------------- DNS message builder

const FLAGS_AA_REPLY = 0x8400;
const TYPE_TLSA = 52;
const TYPE_SOA = 6;
const PTR_QNAME = Uint8Array.of(0xc0, 0x0c);

interface Rr {
  owner?: Uint8Array; // wire form; default: pointer to the question name
  type: number;
  klass?: number;
  ttl: number;
  rdata: Uint8Array;
}

interface Msg {
  id: number;
  flags?: number;
  question: Uint8Array; // wire form of name + type + class
  qdcount?: number;
  answers?: Rr[];
  authority?: Rr[];
  ancount?: number;
  nscount?: number;
}

function u16(n: number): Uint8Array {
  return Uint8Array.of(n >>> 8, n & 0xff);
}

function u32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

function cat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function wireName(text: string): Uint8Array {
  return cat(...text.split('.').filter(Boolean).map((l) => cat(Uint8Array.of(l.length), Buffer.from(l, 'latin1'))), Uint8Array.of(0));
}

function rr(r: Rr): Uint8Array {
  return cat(r.owner ?? PTR_QNAME, u16(r.type), u16(r.klass ?? 1), u32(r.ttl), u16(r.rdata.length), r.rdata);
}

function message(m: Msg): Uint8Array {
  const an = m.answers ?? [];
  const ns = m.authority ?? [];
  const header = cat(u16(m.id), u16(m.flags ?? FLAGS_AA_REPLY), u16(m.qdcount ?? 1), u16(m.ancount ?? an.length), u16(m.nscount ?? ns.length), u16(0));
  return cat(header, m.question, ...an.map(rr), ...ns.map(rr));
}

function tlsaRdata(usage: number, selector: number, mtype: number, data: Uint8Array): Uint8Array {
  return cat(Uint8Array.of(usage, selector, mtype), data);
}

function soaRdata(minimum: number): Uint8Array {
  return cat(wireName('ns.bit'), wireName('hostmaster.bit'), u32(1), u32(3600), u32(600), u32(86400), u32(minimum));
}

/** The query's id and question, ready to echo. */
function asked(query: Uint8Array): { id: number; question: Uint8Array } {
  return { id: (query[0]! << 8) | query[1]!, question: query.subarray(12) };
}

/** A well-formed authoritative reply with one TLSA record, the base most hostile cases bend. */
function goodReply(query: Uint8Array, patch: Partial<Msg> = {}): Uint8Array {
  const a = asked(query);
  return message({ ...a, answers: [{ type: TYPE_TLSA, ttl: 600, rdata: tlsaRdata(2, 1, 0, Uint8Array.of(1, 2, 3)) }], ...patch });
}

// ---------------------------------------------------------------- assertions

type Expect = { records: TlsRecord[] | (() => TlsRecord[]); ttl: number } | { error: RegExp; code?: 'SOURCE' | 'USAGE' };

async function check(t: ExecutionContext, run: () => Promise<DnsTlsAnswer>, expect: Expect, limitMs = TIMEOUT_MS + 1000): Promise<void> {
  const started = performance.now();
  let outcome: DnsTlsAnswer | unknown;
  let ok = false;
  try {
    outcome = await run();
    ok = true;
  } catch (e) {
    outcome = e;
  }
  const elapsed = performance.now() - started;
  t.true(elapsed < limitMs, `took ${elapsed.toFixed(0)} ms, limit ${limitMs} ms`);
  if ('error' in expect) {
    t.false(ok, `expected an error, got ${JSON.stringify(outcome)}`);
    t.true(outcome instanceof EngineError, `not an EngineError: ${String(outcome)}`);
    const e = outcome as EngineError;
    t.is(e.code, expect.code ?? 'SOURCE');
    t.regex(e.message, expect.error);
  } else {
    if (!ok) return void t.fail(`unexpected error: ${String(outcome)}`);
    const got = outcome as DnsTlsAnswer;
    const want = typeof expect.records === 'function' ? expect.records() : expect.records;
    const order = (rs: TlsRecord[]): TlsRecord[] => [...rs].sort((x, y) => x.matchingType - y.matchingType || hex(x.data).localeCompare(hex(y.data)));
    t.deepEqual(order(got.records).map(plain), order(want).map(plain));
    t.is(got.ttl, expect.ttl);
  }
}

/** Compares data as bytes, whatever Uint8Array subclass carries them. */
function plain(r: TlsRecord): { usage: number; selector: number; matchingType: number; data: string } {
  return { usage: r.usage, selector: r.selector, matchingType: r.matchingType, data: hex(r.data) };
}

const knotOpts = (): { server: string; port: number; timeoutMs: number } => ({ server: HOST, port: knot.port, timeoutMs: TIMEOUT_MS });

// ---------------------------------------------------------------- real server cases

const knotCases: { name: string; domain: string; expect: Expect }[] = [
  { name: 'full-key record: the exact SPKI bytes, ttl 600', domain: 'example.bit', expect: { records: () => [{ usage: 2, selector: 1, matchingType: 0, data: spkiExample }], ttl: 600 } },
  { name: 'SHA-256 record', domain: 'sha.bit', expect: { records: () => [{ usage: 2, selector: 1, matchingType: 1, data: shaSha }], ttl: 1200 } },
  {
    name: 'two records at one name',
    domain: 'two.bit',
    expect: {
      records: () => [
        { usage: 2, selector: 1, matchingType: 0, data: spkiTwo },
        { usage: 2, selector: 1, matchingType: 1, data: sha256(spkiTwo) },
      ],
      ttl: 900,
    },
  },
  { name: 'subdomain with digits and a hyphen', domain: 'www.sub-domain9.bit', expect: { records: () => [{ usage: 2, selector: 1, matchingType: 0, data: spkiSub }], ttl: 450 } },
  { name: 'name without TLSA (NXDOMAIN): empty, negative ttl from SOA MINIMUM', domain: 'example2.bit', expect: { records: [], ttl: 300 } },
  { name: 'name with other data but no TLSA (NODATA): empty', domain: 'nodata.bit', expect: { records: [], ttl: 300 } },
  { name: 'unknown name: empty', domain: 'never-registered.bit', expect: { records: [], ttl: 300 } },
  // Knot is authoritative for bit. but not below the zone cut at deleg.bit: it
  // answers NOERROR with an empty answer, the NS in the authority section and
  // AA clear. Taken at face value that would read as "no records".
  { name: 'non-authoritative referral (delegated name, AA clear) refused', domain: 'deleg.bit', expect: { error: /neither authoritative \(AA\) nor validated \(AD\)/ } },
  { name: 'name below a delegation refused too', domain: 'www.deleg.bit', expect: { error: /neither authoritative/ } },
];

for (const c of knotCases) {
  test(`knot: ${c.name}`, (t) => check(t, () => lookupTlsa(c.domain, knotOpts()), c.expect));
}

// Knot's real replies relayed with the header flags edited, as a caching
// resolver would hand them on (its cached answers carry AA clear, and AD only
// when it validated them).
const relayCases: { name: string; domain: string; edit: (f: number) => number; expect: Expect }[] = [
  { name: 'real records with AA cleared in transit refused', domain: 'example.bit', edit: (f) => f & ~0x0400, expect: { error: /neither authoritative/ } },
  { name: 'real NXDOMAIN with AA cleared refused', domain: 'example2.bit', edit: (f) => f & ~0x0400, expect: { error: /neither authoritative/ } },
  { name: 'AA cleared but AD set (validated by a resolver) accepted', domain: 'example.bit', edit: (f) => (f & ~0x0400) | 0x0020, expect: { records: () => [{ usage: 2, selector: 1, matchingType: 0, data: spkiExample }], ttl: 600 } },
  { name: 'unedited relay accepted (control)', domain: 'two.bit', edit: (f) => f, expect: { records: () => [{ usage: 2, selector: 1, matchingType: 0, data: spkiTwo }, { usage: 2, selector: 1, matchingType: 1, data: sha256(spkiTwo) }], ttl: 900 } },
];

for (const c of relayCases) {
  test(`relay: ${c.name}`, async (t) => {
    const relay = await fakeServer(relayWithFlags(c.edit));
    try {
      await check(t, () => lookupTlsa(c.domain, { server: HOST, port: relay.port, timeoutMs: TIMEOUT_MS }), c.expect);
    } finally {
      await relay.close();
    }
  });
}

// ---------------------------------------------------------------- usage errors

const usageCases: { name: string; domain: unknown; opts?: Partial<{ server: unknown; port: unknown; timeoutMs: unknown }>; error: RegExp }[] = [
  { name: 'uppercase refused', domain: 'Example.bit', error: /label "Example"/ },
  { name: 'not under .bit', domain: 'example.com', error: /not a name under \.bit/ },
  { name: 'suffix that is not a label (orbit)', domain: 'example.orbit', error: /not a name under \.bit/ },
  { name: 'bare TLD', domain: 'bit', error: /not a name under \.bit/ },
  { name: 'empty label', domain: 'a..bit', error: /label ""/ },
  { name: 'leading dot', domain: '.bit', error: /label ""/ },
  { name: 'trailing dot', domain: 'example.bit.', error: /not a name under \.bit/ },
  { name: 'wildcard given by the caller', domain: '*.example.bit', error: /label "\*"/ },
  { name: 'underscore', domain: 'ex_ample.bit', error: /label "ex_ample"/ },
  { name: 'leading hyphen', domain: '-example.bit', error: /label "-example"/ },
  { name: 'trailing hyphen', domain: 'example-.bit', error: /label "example-"/ },
  { name: 'non-ASCII', domain: 'exämple.bit', error: /label "exämple"/ },
  { name: 'space', domain: 'ex ample.bit', error: /label "ex ample"/ },
  { name: 'label of 64 characters', domain: `${'a'.repeat(64)}.bit`, error: /not a lowercase letter-digit-hyphen label/ },
  { name: 'more than 253 characters', domain: `${'a'.repeat(63)}.`.repeat(4) + 'bit', error: /longer than 253 characters/ },
  { name: '253 characters, too long with "*." in front', domain: `${'a'.repeat(61)}.`.repeat(4) + 'a.bit', error: /too long once prefixed/ },
  { name: 'not a string', domain: 42, error: /must be a string/ },
  { name: 'server host name (not an IP)', domain: 'example.bit', opts: { server: 'localhost' }, error: /not an IP address/ },
  // Unauthenticated answers from off this machine would choose the key that vouches (review).
  { name: 'server on another host (IPv4)', domain: 'example.bit', opts: { server: '10.0.0.53' }, error: /10\.0\.0\.53 is not a loopback address/ },
  { name: 'server on another host (IPv6)', domain: 'example.bit', opts: { server: 'fe80::1' }, error: /fe80::1 is not a loopback address/ },
  { name: 'server on another host (IPv4 mapped into IPv6)', domain: 'example.bit', opts: { server: '::ffff:192.0.2.1' }, error: /is not a loopback address/ },
  { name: 'the unspecified address', domain: 'example.bit', opts: { server: '0.0.0.0' }, error: /0\.0\.0\.0 is not a loopback address/ },
  { name: 'port 0', domain: 'example.bit', opts: { port: 0 }, error: /not in 1\.\.65535/ },
  { name: 'port 65536', domain: 'example.bit', opts: { port: 65536 }, error: /not in 1\.\.65535/ },
  { name: 'zero timeout', domain: 'example.bit', opts: { timeoutMs: 0 }, error: /timeout 0 ms/ },
  { name: 'timeout beyond setTimeout range', domain: 'example.bit', opts: { timeoutMs: 2 ** 31 }, error: /timeout 2147483648 ms/ },
];

for (const c of usageCases) {
  test(`usage: ${c.name}`, async (t) => {
    const counter = await fakeServer(() => 'silent');
    try {
      // Cast: these cases pass values the types forbid, as a JavaScript caller could.
      const opts = { server: HOST, port: counter.port, timeoutMs: TIMEOUT_MS, ...c.opts } as { server: string; port: number; timeoutMs: number };
      await check(t, () => lookupTlsa(c.domain as string, opts), { error: c.error, code: 'USAGE' }, 500);
      t.is(counter.connections, 0, 'no connection is made for a refused argument');
    } finally {
      await counter.close();
    }
  });
}

test('usage: 251-character name (the longest that fits) is asked for', async (t) => {
  const domain = `${'a'.repeat(61)}.`.repeat(4) + 'bit';
  t.is(domain.length, 251);
  await check(t, () => lookupTlsa(domain, knotOpts()), { records: [], ttl: 300 });
});

// ---------------------------------------------------------------- network faults

test('network: a server that accepts but never answers is given up on at the timeout, socket closed', async (t) => {
  const silent = await fakeServer(() => 'silent');
  try {
    const started = performance.now();
    await check(t, () => lookupTlsa('example.bit', { server: HOST, port: silent.port, timeoutMs: 400 }), { error: /no complete reply within 400 ms/ }, 400 + 1000);
    t.true(performance.now() - started >= 390, 'did not give up early');
    t.is(silent.connections, 1);
    t.true(await silent.allClosed(2000), 'the client closed its socket');
  } finally {
    await silent.close();
  }
});

test('network: a reply that stalls halfway is given up on at the timeout', async (t) => {
  const stall = await fakeServer((query, socket) => {
    socket.write(frame(goodReply(query)).subarray(0, 20));
    return 'silent';
  });
  try {
    await check(t, () => lookupTlsa('example.bit', { server: HOST, port: stall.port, timeoutMs: 400 }), { error: /no complete reply within 400 ms \(20 bytes received\)/ }, 400 + 1000);
    t.true(await stall.allClosed(2000), 'the client closed its socket');
  } finally {
    await stall.close();
  }
});

test('network: a closed port is refused promptly', async (t) => {
  const port = await freePort();
  await check(t, () => lookupTlsa('example.bit', { server: HOST, port, timeoutMs: TIMEOUT_MS }), { error: /ECONNREFUSED/ }, 1000);
});

test('network: a server that hangs up without a reply', async (t) => {
  const hangup = await fakeServer((_q, socket) => {
    socket.destroy();
    return 'silent';
  });
  try {
    await check(t, () => lookupTlsa('example.bit', { server: HOST, port: hangup.port, timeoutMs: TIMEOUT_MS }), { error: /connection closed after 0 bytes|ECONNRESET/ }, 1000);
  } finally {
    await hangup.close();
  }
});

test('network: a reply trickled a byte at a time is reassembled', async (t) => {
  const trickle = await fakeServer(async (query, socket) => {
    const bytes = frame(goodReply(query));
    for (const b of bytes) {
      if (socket.destroyed) break;
      socket.write(Uint8Array.of(b));
      await sleep(1);
    }
    return new Uint8Array(0);
  });
  try {
    await check(t, () => lookupTlsa('example.bit', { server: HOST, port: trickle.port, timeoutMs: 5000 }), { records: [{ usage: 2, selector: 1, matchingType: 0, data: Uint8Array.of(1, 2, 3) }], ttl: 600 }, 6000);
  } finally {
    await trickle.close();
  }
});

// ---------------------------------------------------------------- hostile replies

/** A reply as raw bytes to send (length prefix included), then the server closes. */
type Hostile = (query: Uint8Array) => Uint8Array;

const hostileCases: { name: string; reply: Hostile; expect: Expect }[] = [
  { name: 'wrong id', reply: (q) => frame(goodReply(q, { id: asked(q).id ^ 1 })), expect: { error: /reply id 0x[0-9a-f]{4} does not match query id/ } },
  { name: 'length prefix promises more than is sent', reply: (q) => frame(goodReply(q), goodReply(q).length + 10), expect: { error: /connection closed after \d+ bytes, before \d+ bytes/ } },
  { name: 'length prefix 0xffff, 100 bytes sent', reply: (q) => frame(goodReply(q), 0xffff), expect: { error: /connection closed after/ } },
  { name: 'only one byte of the length prefix', reply: () => Uint8Array.of(0), expect: { error: /before a 2-byte length prefix/ } },
  { name: 'zero-length reply', reply: () => frame(new Uint8Array(0)), expect: { error: /reply length 0 is shorter than a DNS header/ } },
  { name: 'reply shorter than a header', reply: (q) => frame(goodReply(q).subarray(0, 11)), expect: { error: /reply length 11/ } },
  { name: 'message truncated inside the RDATA', reply: (q) => frame(goodReply(q).subarray(0, goodReply(q).length - 2)), expect: { error: /RDATA at offset \d+ needs 6 bytes/ } },
  { name: 'message truncated inside the question', reply: (q) => frame(goodReply(q).subarray(0, 16)), expect: { error: /malformed reply \(16 bytes\): (name|label)/ } },
  { name: 'ANCOUNT larger than the records present', reply: (q) => frame(goodReply(q, { ancount: 0xffff })), expect: { error: /malformed reply/ } },
  { name: 'RDLENGTH 0xffff past the end', reply: (q) => frame(cat(goodReply(q, { answers: [] , ancount: 1 }), PTR_QNAME, u16(TYPE_TLSA), u16(1), u32(600), u16(0xffff), Uint8Array.of(2, 1, 0))), expect: { error: /RDATA at offset \d+ needs 65535 bytes/ } },
  {
    name: 'compression pointer to itself',
    reply: (q) => frame(goodReply(q, { answers: [{ owner: u16(0xc000 | (12 + asked(q).question.length)), type: TYPE_TLSA, ttl: 1, rdata: tlsaRdata(2, 1, 0, Uint8Array.of(1)) }] })),
    expect: { error: /compression pointer at offset \d+ to \d+ does not point backwards/ },
  },
  {
    name: 'label then a pointer back to the same name (loop)',
    reply: (q) => {
      const at = 12 + asked(q).question.length;
      return frame(goodReply(q, { answers: [{ owner: cat(Uint8Array.of(1, 0x61), u16(0xc000 | at)), type: TYPE_TLSA, ttl: 1, rdata: tlsaRdata(2, 1, 0, Uint8Array.of(1)) }] }));
    },
    expect: { error: /does not point backwards/ },
  },
  {
    name: 'two pointers pointing at each other',
    reply: (q) => {
      const a = asked(q);
      const first = 12 + a.question.length; // answer owner
      const rdata = tlsaRdata(2, 1, 0, Uint8Array.of(1));
      const second = first + 2 + 10 + rdata.length; // authority owner
      return frame(message({ ...a, answers: [{ owner: u16(0xc000 | second), type: TYPE_TLSA, ttl: 1, rdata }], authority: [{ owner: u16(0xc000 | first), type: TYPE_SOA, ttl: 1, rdata: soaRdata(1) }] }));
    },
    expect: { error: /does not point backwards/ },
  },
  {
    name: 'pointers into the middle of the question name are followed (control)',
    reply: (q) => {
      const a = asked(q);
      // owner: pointer to the question's "example" label (offset 14), i.e. "example.bit", not the qname: ignored
      return frame(message({ ...a, answers: [{ owner: u16(0xc000 | 14), type: TYPE_TLSA, ttl: 5, rdata: tlsaRdata(3, 1, 1, Uint8Array.of(9)) }], authority: [{ owner: u16(0xc000 | (14 + 8)), type: TYPE_SOA, ttl: 77, rdata: soaRdata(99) }] }));
    },
    expect: { records: [], ttl: 77 },
  },
  { name: 'pointer past the end', reply: (q) => frame(goodReply(q, { answers: [{ owner: u16(0xffff), type: TYPE_TLSA, ttl: 1, rdata: Uint8Array.of(2, 1, 0, 1) }] })), expect: { error: /does not point backwards/ } },
  { name: 'extended label type 0x40', reply: (q) => frame(goodReply(q, { answers: [{ owner: Uint8Array.of(0x41, 0), type: TYPE_TLSA, ttl: 1, rdata: Uint8Array.of(2, 1, 0, 1) }] })), expect: { error: /label type 0x40/ } },
  { name: 'owner name over 255 octets', reply: (q) => frame(goodReply(q, { answers: [{ owner: wireName(`${'a'.repeat(63)}.`.repeat(5)), type: TYPE_TLSA, ttl: 1, rdata: Uint8Array.of(2, 1, 0, 1) }] })), expect: { error: /longer than 255 octets/ } },
  { name: 'question for another name', reply: (q) => frame(goodReply(q, { question: cat(wireName('*.other.bit'), u16(TYPE_TLSA), u16(1)) })), expect: { error: /reply is for \*\.other\.bit\. type 52 class 1, not the question asked/ } },
  { name: 'question for another type', reply: (q) => frame(goodReply(q, { question: cat(asked(q).question.subarray(0, -4), u16(1), u16(1)) })), expect: { error: /type 1 class 1, not the question asked/ } },
  { name: 'no question', reply: (q) => frame(message({ id: asked(q).id, question: new Uint8Array(0), qdcount: 0 })), expect: { error: /0 questions, expected 1/ } },
  { name: 'two questions', reply: (q) => frame(goodReply(q, { qdcount: 2 })), expect: { error: /2 questions/ } },
  { name: 'QR clear (a query echoed back)', reply: (q) => frame(q), expect: { error: /QR is clear/ } },
  { name: 'opcode not QUERY', reply: (q) => frame(goodReply(q, { flags: FLAGS_AA_REPLY | 0x2000 })), expect: { error: /opcode 4/ } },
  { name: 'TC set', reply: (q) => frame(goodReply(q, { flags: FLAGS_AA_REPLY | 0x0200 })), expect: { error: /TC is set/ } },
  { name: 'SERVFAIL', reply: (q) => frame(goodReply(q, { flags: 0x8002, answers: [] })), expect: { error: /answered SERVFAIL/ } },
  { name: 'REFUSED', reply: (q) => frame(goodReply(q, { flags: 0x8005, answers: [] })), expect: { error: /answered REFUSED/ } },
  { name: 'unknown rcode', reply: (q) => frame(goodReply(q, { flags: 0x840b })), expect: { error: /answered rcode 11/ } },
  { name: 'records with AA and AD clear', reply: (q) => frame(goodReply(q, { flags: 0x8000 })), expect: { error: /neither authoritative/ } },
  { name: 'TLSA RDATA shorter than 3 bytes', reply: (q) => frame(goodReply(q, { answers: [{ type: TYPE_TLSA, ttl: 1, rdata: Uint8Array.of(2, 1) }] })), expect: { error: /TLSA RDATA at offset \d+ has 2 bytes/ } },
  { name: 'NXDOMAIN carrying TLSA records', reply: (q) => frame(goodReply(q, { flags: 0x8403 })), expect: { error: /NXDOMAIN together with TLSA/ } },
  { name: 'SOA with a short RDATA', reply: (q) => frame(goodReply(q, { answers: [], authority: [{ owner: wireName('bit'), type: TYPE_SOA, ttl: 60, rdata: soaRdata(5).subarray(0, 30) }] })), expect: { error: /SOA|name|label/ } },
  { name: 'trailing bytes after the declared message are ignored', reply: (q) => cat(frame(goodReply(q)), Uint8Array.of(0xde, 0xad)), expect: { records: [{ usage: 2, selector: 1, matchingType: 0, data: Uint8Array.of(1, 2, 3) }], ttl: 600 } },
  {
    name: 'ttl is the least of the TLSA TTLs; other owners and types ignored',
    reply: (q) => frame(goodReply(q, { answers: [
      { type: TYPE_TLSA, ttl: 900, rdata: tlsaRdata(2, 1, 0, Uint8Array.of(1)) },
      { type: TYPE_TLSA, ttl: 100, rdata: tlsaRdata(2, 1, 1, Uint8Array.of(2)) },
      { type: 1, ttl: 5, rdata: Uint8Array.of(127, 0, 0, 1) },
      { owner: wireName('other.bit'), type: TYPE_TLSA, ttl: 7, rdata: tlsaRdata(3, 0, 0, Uint8Array.of(3)) },
      { type: TYPE_TLSA, klass: 3, ttl: 8, rdata: tlsaRdata(3, 0, 0, Uint8Array.of(4)) },
    ] })),
    expect: { records: [{ usage: 2, selector: 1, matchingType: 0, data: Uint8Array.of(1) }, { usage: 2, selector: 1, matchingType: 1, data: Uint8Array.of(2) }], ttl: 100 },
  },
  { name: 'TTL with the top bit set counts as 0 (RFC 2181 section 8)', reply: (q) => frame(goodReply(q, { answers: [{ type: TYPE_TLSA, ttl: 0x80000000, rdata: tlsaRdata(2, 1, 0, Uint8Array.of(1)) }] })), expect: { records: [{ usage: 2, selector: 1, matchingType: 0, data: Uint8Array.of(1) }], ttl: 0 } },
  { name: 'names compared ASCII case-insensitively (RFC 4343)', reply: (q) => frame(goodReply(q, { question: cat(wireName('*.EXAMPLE.Bit'), u16(TYPE_TLSA), u16(1)), answers: [{ owner: wireName('*.Example.BIT'), type: TYPE_TLSA, ttl: 30, rdata: tlsaRdata(2, 1, 0, Uint8Array.of(1)) }] })), expect: { records: [{ usage: 2, selector: 1, matchingType: 0, data: Uint8Array.of(1) }], ttl: 30 } },
  { name: 'NODATA without SOA: ttl 60', reply: (q) => frame(goodReply(q, { answers: [] })), expect: { records: [], ttl: 60 } },
  { name: 'SOA of an unrelated zone is not used', reply: (q) => frame(goodReply(q, { answers: [], authority: [{ owner: wireName('com'), type: TYPE_SOA, ttl: 5, rdata: soaRdata(5) }] })), expect: { records: [], ttl: 60 } },
  { name: 'NXDOMAIN ttl is the lesser of SOA TTL and MINIMUM (RFC 2308 section 5)', reply: (q) => frame(goodReply(q, { flags: 0x8403, answers: [], authority: [{ owner: wireName('bit'), type: TYPE_SOA, ttl: 40, rdata: soaRdata(300) }] })), expect: { records: [], ttl: 40 } },
  {
    name: 'a reply of the maximum 65535 bytes is read whole',
    reply: (q) => {
      const base = goodReply(q, { answers: [] });
      const data = new Uint8Array(0xffff - base.length - 2 - 10 - 3).fill(0xab);
      const msg = goodReply(q, { answers: [{ type: TYPE_TLSA, ttl: 60, rdata: tlsaRdata(2, 1, 0, data) }] });
      if (msg.length !== 0xffff) throw new Error(`built ${msg.length} bytes`);
      return frame(msg);
    },
    expect: { records: () => [{ usage: 2, selector: 1, matchingType: 0, data: new Uint8Array(0xffff - 12 - 19 - 2 - 10 - 3).fill(0xab) }], ttl: 60 },
  },
];

for (const c of hostileCases) {
  test(`hostile: ${c.name}`, async (t) => {
    const fake = await fakeServer((q) => c.reply(q));
    try {
      await check(t, () => lookupTlsa('example.bit', { server: HOST, port: fake.port, timeoutMs: TIMEOUT_MS }), c.expect, 1500);
      t.true(await fake.allClosed(2000), 'the client closed its socket');
    } finally {
      await fake.close();
    }
  });
}

// ---------------------------------------------------------------- property test

/** Bends a real reply: 1 to 3 edits (byte flips, pointers, length fields, truncation, garbage). */
function mutate(reply: Uint8Array, rand: () => number): { msg: Uint8Array; declared?: number } {
  let msg: Uint8Array = Uint8Array.from(reply);
  let declared: number | undefined;
  const at = (lo = 2): number => lo + Math.floor(rand() * Math.max(1, msg.length - lo));
  const edits = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < edits; i++) {
    const kind = Math.floor(rand() * 9);
    if (kind === 0) msg[at()] = Math.floor(rand() * 256);
    else if (kind === 1) {
      const p = at();
      msg[p] = (msg[p] ?? 0) ^ (1 << Math.floor(rand() * 8));
    }
    else if (kind === 2) {
      const p = at(12);
      msg[p] = 0xc0 | Math.floor(rand() * 0x40);
      if (p + 1 < msg.length) msg[p + 1] = rand() < 0.5 ? p & 0xff : Math.floor(rand() * 256);
    } else if (kind === 3) {
      const p = Math.min(at(4), msg.length - 2);
      const v = [0xffff, 0, 1, Math.floor(rand() * 0x10000)][Math.floor(rand() * 4)]!;
      msg[p] = v >>> 8;
      msg[p + 1] = v & 0xff;
    } else if (kind === 4) msg = msg.slice(0, Math.floor(rand() * msg.length));
    else if (kind === 5) msg = cat(msg, Uint8Array.from({ length: 1 + Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
    else if (kind === 6) declared = Math.floor(rand() * 0x10000);
    else if (kind === 7) msg[2] = Math.floor(rand() * 256); // flags
    else if (msg.length > 1) {
      const p = Math.floor(rand() * 2); // id
      msg[p] = (msg[p] ?? 0) ^ (1 + Math.floor(rand() * 255));
    }
  }
  return { msg, declared };
}

test('property: 400 mutated real replies give records or a typed EngineError, never a hang', async (t) => {
  // Templates: knot's own replies (with its compression) for the interesting shapes.
  const domains = ['example.bit', 'two.bit', 'example2.bit', 'nodata.bit', 'deleg.bit'];
  const templates = await Promise.all(domains.map(async (d) => ({ domain: d, reply: await rawExchange(knot.port, queryFor(d)) })));
  const rand = prng(0x5eed_2026);
  let current: { msg: Uint8Array; declared?: number } = { msg: new Uint8Array(0) };
  const fake = await fakeServer((query) => {
    const msg = Uint8Array.from(current.msg);
    // The template was captured with id 0; answer with the query's id unless the mutation altered it.
    if (msg.length >= 2) {
      msg[0]! ^= query[0]!;
      msg[1]! ^= query[1]!;
    }
    return frame(msg, current.declared ?? msg.length);
  });
  const tally = new Map<string, number>();
  try {
    for (let i = 0; i < 400; i++) {
      const tpl = templates[Math.floor(rand() * templates.length)]!;
      current = mutate(tpl.reply, rand);
      const started = performance.now();
      let kind: string;
      try {
        const a = await lookupTlsa(tpl.domain, { server: HOST, port: fake.port, timeoutMs: 5000 });
        const shapeOk = Number.isInteger(a.ttl) && a.ttl >= 0 && a.ttl < 2 ** 31 && a.records.every((r) => r.data instanceof Uint8Array && [r.usage, r.selector, r.matchingType].every((n) => Number.isInteger(n) && n >= 0 && n < 256));
        if (!shapeOk) t.fail(`iteration ${i}: ill-formed answer ${JSON.stringify(a)}`);
        kind = 'answer';
      } catch (e) {
        if (!(e instanceof EngineError) || e.code !== 'SOURCE') {
          t.fail(`iteration ${i} (${tpl.domain}, ${Buffer.from(current.msg).toString('hex')}): ${String(e)}`);
          continue;
        }
        if (/no complete reply within/.test(e.message)) t.fail(`iteration ${i}: waited for the timeout on a closed connection`);
        kind = failureKind(e.message);
      }
      const elapsed = performance.now() - started;
      if (elapsed > 1000) t.fail(`iteration ${i} took ${elapsed.toFixed(0)} ms`);
      tally.set(kind, (tally.get(kind) ?? 0) + 1);
    }
  } finally {
    await fake.close();
  }
  t.log([...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join('\n'));
  t.true((tally.get('answer') ?? 0) > 10, 'some mutations still parse');
  t.true(tally.size >= 12, 'the mutations reach many different checks');
});

const FAILURE_KINDS: [string, RegExp][] = [
  ['id mismatch', /reply id 0x/],
  ['question mismatch', /reply is for /],
  ['question count', /questions, expected 1/],
  ['closed before the whole reply', /connection closed after/],
  ['shorter than a header', /shorter than a DNS header/],
  ['neither AA nor AD', /neither authoritative/],
  ['error rcode', /server answered/],
  ['QR clear', /QR is clear/],
  ['opcode', /opcode \d+ is not QUERY/],
  ['TC set', /TC is set/],
  ['bad compression pointer', /compression pointer/],
  ['label type', /label type/],
  ['name over 255 octets', /longer than 255 octets/],
  ['short TLSA RDATA', /TLSA RDATA/],
  ['SOA layout', /SOA RDATA/],
  ['NXDOMAIN with TLSA', /NXDOMAIN together/],
];

/** Names the check that refused a reply, so the tally shows how many checks the mutations reach. */
function failureKind(message: string): string {
  const past = /: ([A-Za-z ]+?) at offset \d+ needs \d+ bytes/.exec(message);
  if (past) return `runs past the end: ${past[1]!}`;
  return FAILURE_KINDS.find(([, re]) => re.test(message))?.[0] ?? `other: ${message}`;
}

/** A query with id 0 for the templates. */
function queryFor(domain: string): Uint8Array {
  return cat(u16(0), u16(0), u16(1), u16(0), u16(0), u16(0), wireName(`*.${domain}`), u16(TYPE_TLSA), u16(1));
}

test('loopback addresses in every spelling are accepted as the DNS server', (t) => {
  for (const a of ['127.0.0.1', '127.53.0.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) t.true(isLoopbackAddress(a), a);
  for (const a of ['128.0.0.1', '::', '::2', '1::1', '::ffff:10.0.0.1', 'localhost']) t.false(isLoopbackAddress(a), a);
});

// The wire format stays hand-written (review: "compare with a maintained
// packet library and keep whichever is better"). dns-packet 5, the usual
// choice, decodes a record whose RDLENGTH runs past the end of the message
// (it takes the bytes that are there: a truncated TLSA looks valid) and
// answers a short TLSA RDATA with a RangeError of Node's rather than its own
// error; the parser here refuses both, naming the offset (the hostile cases
// above). If dns-packet ever refuses them too, this test fails: look again.
test('comparison: dns-packet accepts a record that runs past the end of the message; this parser refuses it', async (t) => {
  const packet = (await import('dns-packet')).default;
  const query = new Uint8Array(packet.encode({ type: 'query', id: 0x1234, flags: 0, questions: [{ type: 'TLSA', name: '*.example.bit' }] }));
  const hostile = cat(goodReply(query, { answers: [], ancount: 1 }), PTR_QNAME, u16(TYPE_TLSA), u16(1), u32(600), u16(0xffff), Uint8Array.of(2, 1, 0));
  const decoded = packet.decode(Buffer.from(hostile));
  t.is(decoded.answers?.length, 1, 'dns-packet decoded the truncated record');
  t.is((decoded.answers![0] as { type: string }).type, 'TLSA');
  const short = cat(goodReply(query, { answers: [], ancount: 1 }), PTR_QNAME, u16(TYPE_TLSA), u16(1), u32(600), u16(2), Uint8Array.of(2, 1));
  const e = t.throws(() => packet.decode(Buffer.from(short)));
  t.is(e?.constructor.name, 'RangeError', 'dns-packet throws Node\'s RangeError on a 2-byte TLSA RDATA');
});
