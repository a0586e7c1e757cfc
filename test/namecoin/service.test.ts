// The live service's transport (docs/service-protocol.md): the frame codec on
// its own (round trips and every bound), then the Unix-socket server over a
// real socket: round trip, private modes, a peer with another uid refused by
// SO_PEERCRED, stale-socket cleanup, unsafe directories refused, malformed and
// slow frames cut off without an answer, failing and hanging handlers answered
// with status 3, bounded concurrency, and a fixed-seed mutation run.

import test, { type ExecutionContext } from 'ava';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { EngineError } from '../../src/engine/errors.js';
import { CKA, CKO } from '../../src/pkcs11/constants.js';
import {
  MAX_ATTRIBUTE_LENGTH,
  MAX_ATTRIBUTES,
  MAX_NAME_LENGTH,
  MAX_OBJECTS,
  MAX_REQUEST_BODY,
  MAX_RESPONSE_BODY,
  MAX_TTL_SECONDS,
  Status,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  readFrameHeader,
  type Response,
  type ServiceObject,
} from '../../src/service/protocol.js';
import { peerUid, startService, type Service, type ServiceOptions } from '../../src/service/server.js';
import { requireTool, run } from '../helpers/run.js';
import { prng } from '../helpers/ports.js';

const NOBODY = 65534;
let base: string;
let clientScript: string;
let seq = 0;

test.before(async () => {
  await requireTool('setpriv');
  base = mkdtempSync(join(tmpdir(), 'ncfence-service-'));
  // Traversable so the uid-65534 client can reach its script and (when a test loosens it) a socket.
  chmodSync(base, 0o755);
  clientScript = join(base, 'client.mjs');
  writeFileSync(clientScript, CLIENT_SCRIPT, { mode: 0o644 });
});
test.after.always(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

/** A fresh socket path whose directory does not exist yet. */
const freshSocket = (label: string): string => join(base, `${label}-${seq++}`, 's.sock');

// ---- byte helpers ----

const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
};
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
const u64 = (v: number): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const MAGIC = Buffer.from('NCFS');
/** A frame with the right magic and the true body length. */
const frame = (...body: Uint8Array[]): Buffer => {
  const b = Buffer.concat(body);
  return Buffer.concat([MAGIC, u32(b.length), b]);
};
/** A request body built field by field, so each field can be made wrong. */
const requestFrame = (o: { version?: number; kind?: number; nameLength?: number; name: Uint8Array; extra?: Uint8Array }): Buffer =>
  frame(u16(o.version ?? 1), u16(o.kind ?? 1), u32(o.nameLength ?? o.name.length), o.name, o.extra ?? new Uint8Array());
const NAME = Buffer.from('3011310f300d06035504030c066578616d706c65', 'hex'); // SEQUENCE { SET { CN=example } }

const throwsUpstream = (t: ExecutionContext, f: () => unknown): void => {
  const e = t.throws(f);
  t.true(e instanceof EngineError, String(e));
  t.is((e as EngineError).code, 'UPSTREAM');
};

// ---- codec: round trips ----

const object = (attrs: number, valueLength: number, fill = 0xab): ServiceObject =>
  Array.from({ length: attrs }, (_, i): [number, Uint8Array] => [i, new Uint8Array(valueLength).fill(fill)]);
const certObject: ServiceObject = [
  [CKA.CLASS, u64(CKO.CERTIFICATE)],
  [CKA.TOKEN, Uint8Array.of(1)],
  [CKA.SUBJECT, NAME],
  [CKO.NSS_TRUST, new Uint8Array()],
];

const requestRoundTrips = [
  { name: 'shortest name (1 byte)', bytes: Uint8Array.of(0x30) },
  { name: 'ordinary DER name', bytes: NAME },
  { name: 'longest name (16384 bytes)', bytes: new Uint8Array(MAX_NAME_LENGTH).fill(7) },
];
for (const c of requestRoundTrips) {
  test(`codec: request round trip, ${c.name}`, (t) => {
    const f = encodeRequest({ name: c.bytes });
    t.deepEqual(f.subarray(0, 4), Uint8Array.from(MAGIC));
    t.is(f.length, 8 + 8 + c.bytes.length);
    t.deepEqual(decodeRequest(f).name, Uint8Array.from(c.bytes));
  });
}

const responseRoundTrips: { name: string; res: Response }[] = [
  { name: 'not found, no objects, ttl 0', res: { status: Status.NOT_FOUND, ttl: 0, objects: [] } },
  { name: 'bad request', res: { status: Status.BAD_REQUEST, ttl: 0, objects: [] } },
  { name: 'unavailable, longest ttl', res: { status: Status.UNAVAILABLE, ttl: MAX_TTL_SECONDS, objects: [] } },
  { name: 'ok with a certificate object (CK_ULONG 8 bytes, CK_BBOOL 1 byte, empty value)', res: { status: Status.OK, ttl: 300, objects: [certObject] } },
  { name: 'an object with no attributes', res: { status: Status.OK, ttl: 1, objects: [[]] } },
  { name: '16 objects of 32 attributes', res: { status: Status.OK, ttl: 60, objects: Array.from({ length: MAX_OBJECTS }, () => object(MAX_ATTRIBUTES, 16)) } },
  { name: 'largest attribute type (u32 max)', res: { status: Status.OK, ttl: 60, objects: [[[0xffffffff, Uint8Array.of(1)]]] } },
  {
    name: 'attributes of 65536 bytes up to the frame bound',
    res: { status: Status.OK, ttl: 60, objects: Array.from({ length: 15 }, () => object(1, MAX_ATTRIBUTE_LENGTH)) },
  },
];
for (const c of responseRoundTrips) {
  test(`codec: response round trip, ${c.name}`, (t) => {
    const f = encodeResponse(c.res);
    t.true(f.length - 8 <= MAX_RESPONSE_BODY);
    const back = decodeResponse(f);
    t.is(back.status, c.res.status);
    t.is(back.ttl, c.res.ttl);
    t.deepEqual(
      back.objects.map((o) => o.map(([k, v]) => [k, Buffer.from(v).toString('hex')])),
      c.res.objects.map((o) => o.map(([k, v]) => [k, Buffer.from(v).toString('hex')])),
    );
  });
}

test('codec: decoded values are plain copies, not views of the frame (even when the frame is a Buffer)', (t) => {
  const f = Buffer.from(encodeRequest({ name: NAME }));
  const { name } = decodeRequest(f);
  f.fill(0);
  t.false(Buffer.isBuffer(name));
  t.deepEqual(name, Uint8Array.from(NAME));
  const r = Buffer.from(encodeResponse({ status: 0, ttl: 1, objects: [certObject] }));
  const res = decodeResponse(r);
  r.fill(0);
  t.deepEqual(res.objects[0]?.[2]?.[1], Uint8Array.from(NAME));
});

test('codec: encoding is little-endian field by field', (t) => {
  t.is(Buffer.from(encodeRequest({ name: Uint8Array.of(0x30, 0x00) })).toString('hex'), '4e4346530a000000' + '0100' + '0100' + '02000000' + '3000');
  t.is(
    Buffer.from(encodeResponse({ status: 1, ttl: 0x0102, objects: [[[0x101, Uint8Array.of(9)]]] })).toString('hex'),
    '4e43465319000000' + '0100' + '0100' + '02010000' + '01000000' + '01000000' + '01010000' + '01000000' + '09',
  );
});

test('codec: readFrameHeader waits for 8 bytes, refuses a bad magic at its first wrong byte and an oversized length at once', (t) => {
  t.is(readFrameHeader(new Uint8Array(), 'request'), undefined);
  t.is(readFrameHeader(Uint8Array.from(Buffer.from('NCF')), 'request'), undefined);
  throwsUpstream(t, () => readFrameHeader(Uint8Array.from(Buffer.from('X')), 'request'));
  throwsUpstream(t, () => readFrameHeader(Uint8Array.from(Buffer.from('NCFX')), 'request'));
  t.is(readFrameHeader(Buffer.concat([MAGIC, u32(MAX_REQUEST_BODY)]), 'request'), MAX_REQUEST_BODY);
  throwsUpstream(t, () => readFrameHeader(Buffer.concat([MAGIC, u32(MAX_REQUEST_BODY + 1)]), 'request'));
  t.is(readFrameHeader(Buffer.concat([MAGIC, u32(MAX_RESPONSE_BODY)]), 'response'), MAX_RESPONSE_BODY);
  throwsUpstream(t, () => readFrameHeader(Buffer.concat([MAGIC, u32(MAX_RESPONSE_BODY + 1)]), 'response'));
});

// ---- codec: every bound, encode side ----

const tooMany = (n: number): ServiceObject[] => Array.from({ length: n }, () => []);
const badEncodes: { name: string; f: () => unknown }[] = [
  { name: 'request: empty name', f: () => encodeRequest({ name: new Uint8Array() }) },
  { name: 'request: name of 16385 bytes', f: () => encodeRequest({ name: new Uint8Array(MAX_NAME_LENGTH + 1) }) },
  { name: 'response: status 4', f: () => encodeResponse({ status: 4 as Response['status'], ttl: 0, objects: [] }) },
  { name: 'response: ttl 3601', f: () => encodeResponse({ status: 0, ttl: MAX_TTL_SECONDS + 1, objects: [] }) },
  { name: 'response: negative ttl', f: () => encodeResponse({ status: 0, ttl: -1, objects: [] }) },
  { name: 'response: fractional ttl', f: () => encodeResponse({ status: 0, ttl: 1.5, objects: [] }) },
  { name: 'response: 17 objects', f: () => encodeResponse({ status: 0, ttl: 0, objects: tooMany(MAX_OBJECTS + 1) }) },
  { name: 'response: 33 attributes', f: () => encodeResponse({ status: 0, ttl: 0, objects: [object(MAX_ATTRIBUTES + 1, 1)] }) },
  { name: 'response: attribute of 65537 bytes', f: () => encodeResponse({ status: 0, ttl: 0, objects: [object(1, MAX_ATTRIBUTE_LENGTH + 1)] }) },
  { name: 'response: negative attribute type', f: () => encodeResponse({ status: 0, ttl: 0, objects: [[[-1, Uint8Array.of(1)]]] }) },
  { name: 'response: attribute type above u32', f: () => encodeResponse({ status: 0, ttl: 0, objects: [[[2 ** 32, Uint8Array.of(1)]]] }) },
  {
    name: 'response: every field in bounds but the body over 1 MiB (16 x 65536)',
    f: () => encodeResponse({ status: 0, ttl: 0, objects: Array.from({ length: MAX_OBJECTS }, () => object(1, MAX_ATTRIBUTE_LENGTH)) }),
  },
];
for (const c of badEncodes) test(`codec: encode refuses ${c.name}`, (t) => throwsUpstream(t, c.f));

// ---- codec: every bound, decode side ----

const head = (status: number, ttl: number, count: number): Buffer => Buffer.concat([u16(1), u16(status), u32(ttl), u32(count)]);
const attr = (type: number, value: Uint8Array): Buffer => Buffer.concat([u32(type), u32(value.length), value]);
const badRequests: { name: string; bytes: Buffer }[] = [
  { name: 'empty frame', bytes: Buffer.alloc(0) },
  { name: 'shorter than the header', bytes: Buffer.from('NCFS\x01') },
  { name: 'bad magic', bytes: Buffer.concat([Buffer.from('NCFT'), requestFrame({ name: NAME }).subarray(4)]) },
  { name: 'body length over 65536', bytes: Buffer.concat([MAGIC, u32(MAX_REQUEST_BODY + 1), Buffer.alloc(MAX_REQUEST_BODY + 1)]) },
  { name: 'body shorter than announced', bytes: requestFrame({ name: NAME }).subarray(0, 20) },
  { name: 'bytes after the frame', bytes: Buffer.concat([requestFrame({ name: NAME }), Buffer.of(0)]) },
  { name: 'empty body', bytes: frame() },
  { name: 'version 0', bytes: requestFrame({ version: 0, name: NAME }) },
  { name: 'version 2', bytes: requestFrame({ version: 2, name: NAME }) },
  { name: 'kind 0', bytes: requestFrame({ kind: 0, name: NAME }) },
  { name: 'kind 2', bytes: requestFrame({ kind: 2, name: NAME }) },
  { name: 'name length 0', bytes: requestFrame({ nameLength: 0, name: new Uint8Array() }) },
  { name: 'name length 16385', bytes: requestFrame({ name: new Uint8Array(MAX_NAME_LENGTH + 1) }) },
  { name: 'name length past the body', bytes: requestFrame({ nameLength: NAME.length + 1, name: NAME }) },
  { name: 'bytes after the name inside the body', bytes: requestFrame({ name: NAME, extra: Buffer.of(0) }) },
  { name: 'body cut inside the fixed fields', bytes: frame(u16(1), u16(1), u16(3)) },
];
for (const c of badRequests) test(`codec: decodeRequest refuses ${c.name}`, (t) => throwsUpstream(t, () => decodeRequest(c.bytes)));

const goodAttr = attr(CKA.CLASS, u64(1));
const badResponses: { name: string; bytes: Buffer }[] = [
  { name: 'bad magic', bytes: Buffer.concat([Buffer.from('SFCN'), u32(12), head(0, 0, 0)]) },
  { name: 'body length over 1048576', bytes: Buffer.concat([MAGIC, u32(MAX_RESPONSE_BODY + 1), Buffer.alloc(MAX_RESPONSE_BODY + 1)]) },
  { name: 'version 2', bytes: frame(u16(2), u16(0), u32(0), u32(0)) },
  { name: 'status 4', bytes: frame(head(4, 0, 0)) },
  { name: 'ttl 3601', bytes: frame(head(0, MAX_TTL_SECONDS + 1, 0)) },
  { name: '17 objects', bytes: frame(head(0, 0, MAX_OBJECTS + 1), ...Array.from({ length: MAX_OBJECTS + 1 }, () => u32(0))) },
  { name: '33 attributes', bytes: frame(head(0, 0, 1), u32(MAX_ATTRIBUTES + 1), ...Array.from({ length: MAX_ATTRIBUTES + 1 }, () => goodAttr)) },
  { name: 'attribute length 65537', bytes: frame(head(0, 0, 1), u32(1), attr(CKA.VALUE, new Uint8Array(MAX_ATTRIBUTE_LENGTH + 1))) },
  { name: 'truncated in the fixed fields', bytes: frame(u16(1), u16(0), u32(0)) },
  { name: 'fewer objects than counted', bytes: frame(head(0, 0, 2), u32(1), goodAttr) },
  { name: 'fewer attributes than counted', bytes: frame(head(0, 0, 1), u32(2), goodAttr) },
  { name: 'attribute value cut short', bytes: frame(head(0, 0, 1), u32(1), goodAttr.subarray(0, goodAttr.length - 1)) },
  { name: 'bytes after the last object', bytes: frame(head(0, 0, 1), u32(1), goodAttr, Buffer.of(0)) },
  { name: 'bytes after the frame', bytes: Buffer.concat([frame(head(1, 0, 0)), Buffer.of(0)]) },
];
for (const c of badResponses) test(`codec: decodeResponse refuses ${c.name}`, (t) => throwsUpstream(t, () => decodeResponse(c.bytes)));

test('codec: a request frame is not accepted as a response or the other way round', (t) => {
  throwsUpstream(t, () => decodeResponse(encodeRequest({ name: NAME })));
  throwsUpstream(t, () => decodeRequest(encodeResponse({ status: 0, ttl: 0, objects: [] })));
});

// ---- a client ----

interface Exchange {
  data: Buffer;
  error?: string;
  ms: number;
  /** The client gave up waiting: the server neither answered nor closed. */
  hung: boolean;
}

/** Connects, writes `bytes`, optionally shuts down its write side, and collects everything until the server closes. */
function exchange(path: string, bytes: Uint8Array, opts: { end?: boolean; waitMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let hung = false;
    const c = createConnection(path);
    const timer = setTimeout(() => {
      hung = true;
      c.destroy();
    }, opts.waitMs ?? 10_000);
    c.on('connect', () => {
      if (bytes.length > 0) c.write(bytes);
      if (opts.end ?? true) c.end();
    });
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    c.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), error, ms: Date.now() - started, hung });
    });
  });
}

/** Answers with one certificate-like object carrying the name it was asked for. */
const echo = async (name: Uint8Array): Promise<Response> => ({
  status: Status.OK,
  ttl: 120,
  objects: [[[CKA.CLASS, u64(CKO.CERTIFICATE)], [CKA.SUBJECT, name]]],
});

async function withService(opts: Partial<ServiceOptions>, body: (svc: Service) => Promise<void>): Promise<void> {
  const svc = await startService({ socketPath: freshSocket('svc'), handler: echo, ...opts });
  try {
    await body(svc);
  } finally {
    await svc.close();
  }
}

const subjectOf = (r: Response): string => Buffer.from(r.objects[0]?.find(([k]) => k === CKA.SUBJECT)?.[1] ?? []).toString('hex');

// ---- the binding ----

test('binding: peerUid reads SO_PEERCRED and throws on a descriptor that is not a socket', async (t) => {
  t.throws(() => peerUid(0xfffff), { message: /SO_PEERCRED/ });
  t.throws(() => peerUid(-1), { instanceOf: RangeError });
  t.throws(() => peerUid('3' as unknown as number), { instanceOf: TypeError });
  // Seen through the server: the connection from this process carries our uid.
  await withService({}, async (svc) => {
    const r = await exchange(svc.socketPath, encodeRequest({ name: NAME }));
    t.is(decodeResponse(r.data).status, Status.OK);
    t.is(svc.stats.refusedUid, 0);
  });
});

// ---- the server ----

test('server: round trip, with and without the client shutting down its write side', async (t) => {
  const seen: string[] = [];
  await withService(
    {
      handler: async (name) => {
        seen.push(Buffer.from(name).toString('hex'));
        return echo(name);
      },
    },
    async (svc) => {
      for (const end of [true, false]) {
        const r = await exchange(svc.socketPath, encodeRequest({ name: NAME }), { end });
        t.false(r.hung);
        const res = decodeResponse(r.data);
        t.is(res.status, Status.OK);
        t.is(res.ttl, 120);
        t.is(subjectOf(res), NAME.toString('hex'));
        t.deepEqual(res.objects[0]?.[0], [CKA.CLASS, Uint8Array.from(u64(CKO.CERTIFICATE))]);
      }
      // A request arriving one byte at a time is still one request.
      const slow = await new Promise<Buffer>((resolve) => {
        const c = createConnection(svc.socketPath);
        const chunks: Buffer[] = [];
        c.on('data', (d: Buffer) => chunks.push(d));
        c.on('close', () => resolve(Buffer.concat(chunks)));
        c.on('connect', async () => {
          for (const b of encodeRequest({ name: NAME })) {
            c.write(Uint8Array.of(b));
            await new Promise((r) => setImmediate(r));
          }
        });
      });
      t.is(subjectOf(decodeResponse(slow)), NAME.toString('hex'));
      t.deepEqual(seen, [NAME.toString('hex'), NAME.toString('hex'), NAME.toString('hex')]);
      t.is(svc.stats.answered, 3);
    },
  );
});

test('server: creates the directory 0700 (parents included) and the socket 0600; close removes the socket', async (t) => {
  const path = join(base, `modes-${seq++}`, 'deeper', 's.sock');
  const svc = await startService({ socketPath: path, handler: echo });
  t.is(statSync(dirname(path)).mode & 0o7777, 0o700);
  t.is(statSync(dirname(dirname(path))).mode & 0o7777, 0o700);
  const st = lstatSync(path);
  t.true(st.isSocket());
  t.is(st.mode & 0o7777, 0o600);
  t.is(st.uid, process.getuid!());
  await svc.close();
  await svc.close(); // idempotent
  t.false(existsSync(path));
  const r = await exchange(path, encodeRequest({ name: NAME }));
  t.is(r.error, 'ENOENT');
});

test('server: an existing private directory is used as it is', async (t) => {
  const dir = join(base, `existing-${seq++}`);
  mkdirSync(dir, { mode: 0o750 });
  chmodSync(dir, 0o750);
  await withService({ socketPath: join(dir, 's.sock') }, async (svc) => {
    t.is(statSync(dir).mode & 0o7777, 0o750);
    t.is(decodeResponse((await exchange(svc.socketPath, encodeRequest({ name: NAME }))).data).status, Status.OK);
  });
});

/** Runs the client script as uid 65534; it reports whether it connected and how many bytes it got back. */
async function clientAsNobody(path: string): Promise<{ connected: boolean; error: string | null; bytes: number }> {
  const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, clientScript, path, Buffer.from(encodeRequest({ name: NAME })).toString('hex')], {
    timeoutMs: 20_000,
  });
  if (r.code !== 0) throw new Error(`client as uid ${NOBODY} failed: ${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as { connected: boolean; error: string | null; bytes: number };
}

test.serial('server: a peer with another uid is refused (by the directory mode, and by SO_PEERCRED when the modes are loosened)', async (t) => {
  if (process.getuid!() === NOBODY) return t.pass('running as uid 65534 already: nothing to compare against');
  await withService({}, async (svc) => {
    const blocked = await clientAsNobody(svc.socketPath);
    t.false(blocked.connected);
    t.is(blocked.error, 'EACCES');
    t.is(svc.stats.accepted, 0);

    // Simulate a misconfigured directory: only the peer-uid check stands in the way now.
    chmodSync(dirname(svc.socketPath), 0o711);
    chmodSync(svc.socketPath, 0o666);
    const refused = await clientAsNobody(svc.socketPath);
    t.true(refused.connected, JSON.stringify(refused));
    t.is(refused.bytes, 0);
    t.is(svc.stats.refusedUid, 1);
    t.is(svc.stats.answered, 0);

    // Our own uid is still served.
    t.is(decodeResponse((await exchange(svc.socketPath, encodeRequest({ name: NAME }))).data).status, Status.OK);
    t.is(svc.stats.refusedUid, 1);
  });
});

/** Leaves a socket file nothing listens on: a listener killed before it could clean up. */
async function makeStaleSocket(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const code = "require('net').createServer().listen(process.env.SOCK, () => process.kill(process.pid, 'SIGKILL'))";
  await run(process.execPath, ['-e', code], { env: { ...process.env, SOCK: path }, timeoutMs: 20_000 });
  if (!lstatSync(path).isSocket()) throw new Error(`no stale socket at ${path}`);
}

test('server: a stale socket is replaced; a live one, a regular file or a symlink at the path is refused', async (t) => {
  const stale = freshSocket('stale');
  await makeStaleSocket(stale);
  await withService({ socketPath: stale }, async (svc) => {
    t.is(decodeResponse((await exchange(svc.socketPath, encodeRequest({ name: NAME }))).data).status, Status.OK);
    // The running service is live: a second one on the same path is refused and the first keeps serving.
    const e = await t.throwsAsync(startService({ socketPath: stale, handler: echo }));
    t.true(e instanceof EngineError && e.code === 'USAGE' && /already answering/.test(e.message), String(e));
    t.is(decodeResponse((await exchange(svc.socketPath, encodeRequest({ name: NAME }))).data).status, Status.OK);
  });

  const live = freshSocket('live');
  mkdirSync(dirname(live), { mode: 0o700 });
  const other = createServer((s) => s.destroy());
  await new Promise<void>((r) => other.listen(live, r));
  try {
    await t.throwsAsync(startService({ socketPath: live, handler: echo }), { message: /already answering/ });
    t.true(lstatSync(live).isSocket());
  } finally {
    await new Promise((r) => other.close(r));
  }

  const file = freshSocket('file');
  mkdirSync(dirname(file), { mode: 0o700 });
  writeFileSync(file, 'keep me');
  await t.throwsAsync(startService({ socketPath: file, handler: echo }), { message: /is not a socket/ });
  t.is(readFileSync(file, 'utf8'), 'keep me');

  const link = freshSocket('link');
  mkdirSync(dirname(link), { mode: 0o700 });
  symlinkSync(stale, link);
  await t.throwsAsync(startService({ socketPath: link, handler: echo }), { message: /is not a socket/ });
});

const unsafeDirs: { name: string; make: (dir: string) => void; message: RegExp }[] = [
  { name: 'world-writable', make: (d) => (mkdirSync(d), chmodSync(d, 0o777)), message: /writable by group or others \(mode 777\)/ },
  { name: 'world-writable with the sticky bit (like /tmp)', make: (d) => (mkdirSync(d), chmodSync(d, 0o1777)), message: /writable by group or others/ },
  { name: 'group-writable', make: (d) => (mkdirSync(d), chmodSync(d, 0o770)), message: /writable by group or others \(mode 770\)/ },
  { name: 'owned by another uid', make: (d) => (mkdirSync(d, { mode: 0o700 }), chownSync(d, NOBODY, NOBODY)), message: /owned by uid 65534/ },
  { name: 'a symlink to a private directory', make: (d) => (mkdirSync(`${d}-real`, { mode: 0o700 }), symlinkSync(`${d}-real`, d)), message: /not a directory/ },
  { name: 'a regular file', make: (d) => writeFileSync(d, ''), message: /not a directory/ },
];
for (const c of unsafeDirs) {
  test(`server: an existing socket directory that is ${c.name} is refused`, async (t) => {
    if (c.name.startsWith('owned') && process.getuid!() !== 0) return t.pass('needs root to chown');
    const dir = join(base, `unsafe-${seq++}`);
    c.make(dir);
    const e = await t.throwsAsync(startService({ socketPath: join(dir, 's.sock'), handler: echo }));
    t.true(e instanceof EngineError && e.code === 'USAGE', String(e));
    t.regex(e?.message ?? '', c.message);
    t.false(existsSync(join(dir, 's.sock')));
  });
}

test('server: options out of range and an overlong socket path are refused', async (t) => {
  const path = freshSocket('opts');
  for (const bad of [{ timeoutMs: 0 }, { handlerTimeoutMs: -1 }, { maxConnections: 0 }, { maxConnections: 1.5 }]) {
    await t.throwsAsync(startService({ socketPath: path, handler: echo, ...bad }), { instanceOf: EngineError, message: /must be a positive integer/ });
  }
  await t.throwsAsync(startService({ socketPath: join(base, 'x'.repeat(120), 's.sock'), handler: echo }), { message: /longer than 107 bytes/ });
});

const badFrames: { name: string; bytes: Buffer; end: boolean }[] = [
  { name: 'bad magic', bytes: Buffer.concat([Buffer.from('NCFX'), requestFrame({ name: NAME }).subarray(4)]), end: false },
  { name: 'bad magic in the first byte only, nothing more sent', bytes: Buffer.from('X'), end: false },
  { name: 'bad version', bytes: requestFrame({ version: 2, name: NAME }), end: false },
  { name: 'bad kind', bytes: requestFrame({ kind: 7, name: NAME }), end: false },
  { name: 'oversized length (65537), body never sent', bytes: Buffer.concat([MAGIC, u32(MAX_REQUEST_BODY + 1)]), end: false },
  { name: 'length 0xffffffff', bytes: Buffer.concat([MAGIC, u32(0xffffffff)]), end: false },
  { name: 'name length 0', bytes: requestFrame({ nameLength: 0, name: new Uint8Array() }), end: false },
  { name: 'name of 16385 bytes', bytes: requestFrame({ name: new Uint8Array(MAX_NAME_LENGTH + 1) }), end: false },
  { name: 'name length past the body', bytes: requestFrame({ nameLength: NAME.length + 4, name: NAME }), end: false },
  { name: 'bytes after the name inside the body', bytes: requestFrame({ name: NAME, extra: Buffer.of(1, 2) }), end: false },
  { name: 'a second frame after the first', bytes: Buffer.concat([requestFrame({ name: NAME }), requestFrame({ name: NAME })]), end: false },
  { name: 'truncated body, then end of stream', bytes: requestFrame({ name: NAME }).subarray(0, 20), end: true },
  { name: 'truncated header, then end of stream', bytes: Buffer.from('NCFS\x10'), end: true },
  { name: 'nothing at all, then end of stream', bytes: Buffer.alloc(0), end: true },
];
for (const c of badFrames) {
  test(`server: ${c.name} -> closed without an answer, before the read timeout`, async (t) => {
    let calls = 0;
    await withService(
      {
        timeoutMs: 5000,
        handler: async (name) => {
          calls++;
          return echo(name);
        },
      },
      async (svc) => {
        const r = await exchange(svc.socketPath, c.bytes, { end: c.end, waitMs: 4000 });
        t.false(r.hung, 'the server neither answered nor closed');
        t.is(r.data.length, 0);
        t.true(r.ms < 4000);
        t.is(calls, 0);
        t.is(svc.stats.badFrames, 1);
        t.is(svc.stats.answered, 0);
      },
    );
  });
}

test('server: half a frame and then silence -> closed within the timeout; so is a silent client', async (t) => {
  await withService({ timeoutMs: 300 }, async (svc) => {
    const half = encodeRequest({ name: NAME }).subarray(0, 12);
    const [r, silent] = await Promise.all([
      exchange(svc.socketPath, half, { end: false, waitMs: 5000 }),
      exchange(svc.socketPath, new Uint8Array(), { end: false, waitMs: 5000 }),
    ]);
    for (const x of [r, silent]) {
      t.false(x.hung);
      t.is(x.data.length, 0);
      t.true(x.ms >= 250 && x.ms < 2000, `closed after ${x.ms} ms`);
    }
    t.is(svc.stats.readTimeouts, 2);
  });
});

const failingHandlers: { name: string; handler: ServiceOptions['handler'] }[] = [
  {
    name: 'rejects',
    handler: async () => {
      throw new Error('source down');
    },
  },
  {
    name: 'throws before returning a promise',
    handler: () => {
      throw new Error('sync');
    },
  },
  { name: 'rejects with a non-Error', handler: () => Promise.reject('a string') },
  { name: 'answers 17 objects', handler: async () => ({ status: Status.OK, ttl: 1, objects: tooMany(MAX_OBJECTS + 1) }) },
  { name: 'answers ttl 3601', handler: async () => ({ status: Status.OK, ttl: MAX_TTL_SECONDS + 1, objects: [] }) },
  {
    name: 'answers more than 1 MiB',
    handler: async () => ({ status: Status.OK, ttl: 1, objects: Array.from({ length: MAX_OBJECTS }, () => object(1, MAX_ATTRIBUTE_LENGTH)) }),
  },
  { name: 'returns undefined', handler: async () => undefined as unknown as Response },
];
for (const c of failingHandlers) {
  test(`server: a handler that ${c.name} -> status 3, and the service keeps serving`, async (t) => {
    await withService({ handler: c.handler }, async (svc) => {
      const r = await exchange(svc.socketPath, encodeRequest({ name: NAME }));
      t.deepEqual(decodeResponse(r.data), { status: Status.UNAVAILABLE, ttl: 0, objects: [] });
      t.is(svc.stats.handlerErrors, 1);
      const again = await exchange(svc.socketPath, encodeRequest({ name: NAME }));
      t.is(decodeResponse(again.data).status, Status.UNAVAILABLE);
    });
  });
}

test('server: a handler that hangs -> status 3 within the handler bound', async (t) => {
  await withService({ handlerTimeoutMs: 250, handler: () => new Promise<Response>(() => undefined) }, async (svc) => {
    const r = await exchange(svc.socketPath, encodeRequest({ name: NAME }), { waitMs: 5000 });
    t.deepEqual(decodeResponse(r.data), { status: Status.UNAVAILABLE, ttl: 0, objects: [] });
    t.true(r.ms >= 200 && r.ms < 2000, `answered after ${r.ms} ms`);
    t.is(svc.stats.handlerTimeouts, 1);
  });
});

test('server: a handler that rejects after its timeout does not disturb anything', async (t) => {
  await withService(
    { handlerTimeoutMs: 100, handler: () => new Promise<Response>((_, reject) => setTimeout(() => reject(new Error('late')), 300)) },
    async (svc) => {
      const r = await exchange(svc.socketPath, encodeRequest({ name: NAME }));
      t.is(decodeResponse(r.data).status, Status.UNAVAILABLE);
      await new Promise((res) => setTimeout(res, 400));
      t.is(svc.stats.handlerTimeouts, 1);
    },
  );
});

test('server: connections over the bound are closed at once; the slots come back', async (t) => {
  await withService({ maxConnections: 2, timeoutMs: 5000 }, async (svc) => {
    const idle = [0, 1].map(() => createConnection(svc.socketPath));
    await Promise.all(idle.map((c) => new Promise((r) => c.once('connect', r))));
    await new Promise((r) => setTimeout(r, 50)); // let the server accept both
    const extra = await exchange(svc.socketPath, encodeRequest({ name: NAME }), { waitMs: 3000 });
    t.false(extra.hung);
    t.is(extra.data.length, 0);
    t.true(extra.ms < 1000, `closed after ${extra.ms} ms`);
    t.is(svc.stats.refusedBusy, 1);
    await Promise.all(idle.map((c) => new Promise((r) => (c.once('close', r), c.destroy()))));
    await new Promise((r) => setTimeout(r, 50));
    t.is(decodeResponse((await exchange(svc.socketPath, encodeRequest({ name: NAME }))).data).status, Status.OK);
  });
});

test('server: close() cuts connections still in progress', async (t) => {
  const svc = await startService({ socketPath: freshSocket('close'), handler: echo, timeoutMs: 10_000 });
  const pending = exchange(svc.socketPath, new Uint8Array(), { end: false, waitMs: 8000 });
  await new Promise((r) => setTimeout(r, 50));
  await svc.close();
  const r = await pending;
  t.false(r.hung);
  t.is(r.data.length, 0);
});

// ---- fixed-seed mutation run ----

function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  const pick = (n: number): number => Math.floor(rnd() * n);
  const b = Buffer.from(src);
  if (b.length < 16) return Buffer.concat([b, Buffer.of(pick(256))]); // too short for the field mutations below
  const interesting = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x4000, 0x4001, 0xffffffff];
  switch (pick(8)) {
    case 0: // flip one bit
      b[pick(b.length)]! ^= 1 << pick(8);
      return b;
    case 1: // overwrite a byte
      b[pick(b.length)] = pick(256);
      return b;
    case 2: // truncate
      return b.subarray(0, pick(b.length));
    case 3: // append junk
      return Buffer.concat([b, Buffer.from(Array.from({ length: 1 + pick(16) }, () => pick(256)))]);
    case 4: // frame length field
      b.writeUInt32LE(rnd() < 0.5 ? interesting[pick(interesting.length)]! : (b.readUInt32LE(4) + pick(5) - 2) >>> 0, 4);
      return b;
    case 5: // name length field
      b.writeUInt32LE(rnd() < 0.5 ? interesting[pick(interesting.length)]! : (b.readUInt32LE(12) + pick(5) - 2) >>> 0, 12);
      return b;
    case 6: // version or kind
      b.writeUInt16LE(interesting[pick(interesting.length)]! & 0xffff, rnd() < 0.5 ? 8 : 10);
      return b;
    default: {
      // delete or duplicate a byte
      const at = pick(b.length);
      return rnd() < 0.5 ? Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]) : Buffer.concat([b.subarray(0, at + 1), b.subarray(at)]);
    }
  }
}

test('server: 400 mutated request frames (seed 0x6e6366) -> never a crash; a well-formed answer exactly when the frame is valid', async (t) => {
  const rnd = prng(0x6e6366);
  const seeds = [Uint8Array.of(0x30), NAME, new Uint8Array(300).fill(0x31), new Uint8Array(MAX_NAME_LENGTH).fill(0x32)].map((name) => encodeRequest({ name }));
  let answered = 0;
  let closed = 0;
  await withService({ timeoutMs: 2000 }, async (svc) => {
    for (let i = 0; i < 400; i++) {
      let bytes = seeds[Math.floor(rnd() * seeds.length)]!;
      const rounds = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < rounds; k++) bytes = mutate(bytes, rnd);
      let expected: string | undefined;
      try {
        expected = Buffer.from(decodeRequest(bytes).name).toString('hex');
      } catch {
        expected = undefined;
      }
      const r = await exchange(svc.socketPath, bytes, { waitMs: 5000 });
      const label = `case ${i}: ${Buffer.from(bytes.subarray(0, 24)).toString('hex')}… (${bytes.length} bytes)`;
      t.false(r.hung, label);
      if (expected === undefined) {
        t.is(r.data.length, 0, label);
        closed++;
      } else {
        t.is(subjectOf(decodeResponse(r.data)), expected, label);
        answered++;
      }
    }
    // Still alive and serving.
    t.is(decodeResponse((await exchange(svc.socketPath, encodeRequest({ name: NAME }))).data).status, Status.OK);
    t.is(svc.stats.answered, answered + 1);
    t.is(svc.stats.badFrames + svc.stats.readTimeouts, closed);
  });
  t.true(answered > 10 && closed > 200, `answered ${answered}, closed ${closed}`);
  t.log(`answered ${answered}, closed ${closed}`);
});

/** The uid-65534 client: plain ESM so it runs without tsx; prints one JSON line. */
const CLIENT_SCRIPT = `import { createConnection } from 'node:net';
const [path, hex] = process.argv.slice(2);
const out = { connected: false, error: null, bytes: 0 };
const c = createConnection(path);
const timer = setTimeout(() => { out.error = 'client timeout'; c.destroy(); }, 10000);
c.on('connect', () => { out.connected = true; c.end(Buffer.from(hex, 'hex')); });
c.on('data', (d) => { out.bytes += d.length; });
c.on('error', (e) => { out.error ??= e.code ?? e.message; });
c.on('close', () => { clearTimeout(timer); process.stdout.write(JSON.stringify(out)); });
`;
