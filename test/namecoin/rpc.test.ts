// The Namecoin Core RPC anchor source: name values become TLS records or are
// refused whole; name_show is called the way Namecoin Core answers it
// (test/fixtures/namecoind.ts, written from namecoin-core's source since no
// node runs here); absent/expired names, auth, loopback-only URLs, size and
// time bounds. Ends with a fixed-seed property test over mutated values.

import test from 'ava';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { EngineError } from '../../src/engine/errors.js';
import { MAX_RECORDS, MAX_VALUE_BYTES, parseTlsValue, type TlsRecord } from '../../src/namecoin/records.js';
import { ABSENT_TTL, FOUND_TTL, nameShowTls, type NameShowOptions } from '../../src/namecoin/rpc.js';
import { startNamecoind, type Namecoind, type NamecoindOptions } from '../fixtures/namecoind.js';
import { makeRoot } from '../helpers/certs.js';
import { prng } from '../helpers/ports.js';

interface Keys {
  spki: Uint8Array;
  spki2: Uint8Array;
  cert: Uint8Array;
}
let keys: Keys;
const USER = { user: 'ncfence-test', password: 'correct horse battery staple' };
let node: Namecoind; // user/password; shared only by tests that do not change its state
let cookieNode: Namecoind;

const spkiOf = (): Uint8Array => new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' }));
test.before(async () => {
  keys = { spki: spkiOf(), spki2: spkiOf(), cert: makeRoot() };
  node = await startNamecoind({ auth: USER });
  cookieNode = await startNamecoind({ auth: 'cookie' });
});
test.after.always(async () => {
  await node?.close();
  await cookieNode?.close();
});

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const digest = (alg: 'sha256' | 'sha512', b: Uint8Array): Uint8Array => new Uint8Array(createHash(alg).update(b).digest());
const wildcard = (...recs: unknown[]): string => JSON.stringify({ map: { '*': { tls: recs } } });
const opts = (n: Namecoind, extra: Partial<NameShowOptions> = {}): NameShowOptions => ({
  url: n.url,
  auth: n.cookieFile ? { cookieFile: n.cookieFile } : USER,
  timeoutMs: 5_000,
  ...extra,
});
const rec = (usage: number, selector: number, matchingType: number, data: Uint8Array): TlsRecord => ({ usage, selector, matchingType, data });
let seq = 0;
/** A fresh d/ name holding `value` on `n`; returns its .bit domain. */
function publish(n: Namecoind, value: string, o?: { expired?: boolean }): string {
  const label = `case${seq++}`;
  n.setName(`d/${label}`, value, o);
  return `${label}.bit`;
}
async function withNode<T>(o: NamecoindOptions, fn: (n: Namecoind) => Promise<T>): Promise<T> {
  const n = await startNamecoind(o);
  try {
    return await fn(n);
  } finally {
    await n.close();
  }
}

// --- Values that yield records --------------------------------------------------------------

const good: { name: string; value: (k: Keys) => string; want: (k: Keys) => TlsRecord[] }[] = [
  { name: 'full-key record', value: (k) => wildcard([2, 1, 0, b64(k.spki)]), want: (k) => [rec(2, 1, 0, k.spki)] },
  { name: 'SHA-256 record', value: (k) => wildcard([2, 1, 1, b64(digest('sha256', k.spki))]), want: (k) => [rec(2, 1, 1, digest('sha256', k.spki))] },
  {
    name: 'several records, in order',
    value: (k) => wildcard([2, 1, 0, b64(k.spki)], [3, 1, 1, b64(digest('sha256', k.spki2))], [2, 0, 2, b64(digest('sha512', k.cert))], [3, 0, 0, b64(k.cert)]),
    want: (k) => [rec(2, 1, 0, k.spki), rec(3, 1, 1, digest('sha256', k.spki2)), rec(2, 0, 2, digest('sha512', k.cert)), rec(3, 0, 0, k.cert)],
  },
  { name: 'older top-level form', value: (k) => JSON.stringify({ tls: [[2, 1, 0, b64(k.spki)]] }), want: (k) => [rec(2, 1, 0, k.spki)] },
  {
    name: 'both forms: map["*"] first, then top level',
    value: (k) => JSON.stringify({ tls: [[3, 1, 1, b64(digest('sha256', k.spki2))]], map: { '*': { tls: [[2, 1, 0, b64(k.spki)]] } } }),
    want: (k) => [rec(2, 1, 0, k.spki), rec(3, 1, 1, digest('sha256', k.spki2))],
  },
  { name: 'elements after the fourth ignored (ifa-0001)', value: (k) => wildcard([2, 1, 0, b64(k.spki), 'extra', 7]), want: (k) => [rec(2, 1, 0, k.spki)] },
  { name: 'other items around the records', value: (k) => JSON.stringify({ ip: ['192.0.2.1'], map: { www: { ip: '192.0.2.2' }, '*': { ip6: '2001:db8::1', tls: [[2, 1, 0, b64(k.spki)]] } } }), want: (k) => [rec(2, 1, 0, k.spki)] },
  { name: 'name without tls', value: () => JSON.stringify({ ip: '192.0.2.1', map: { www: { alias: '' } } }), want: () => [] },
  { name: 'map["*"] as the ip shorthand string', value: () => JSON.stringify({ map: { '*': '192.0.2.1' } }), want: () => [] },
  { name: 'null items count as absent', value: () => JSON.stringify({ tls: null, map: { '*': { tls: null } } }), want: () => [] },
  { name: 'empty tls array', value: () => wildcard(), want: () => [] },
  { name: 'empty object', value: () => '{}', want: () => [] },
  { name: 'JSON whitespace the ascii encoding can show', value: (k) => ` { "map" : { "*" : { "tls" : [ [ 2 , 1 , 0 , "${b64(k.spki)}" ] ] } } } `, want: (k) => [rec(2, 1, 0, k.spki)] },
];

for (const c of good) {
  test(`records: ${c.name}`, async (t) => {
    const value = c.value(keys);
    t.deepEqual(parseTlsValue(value), c.want(keys));
    t.deepEqual(await nameShowTls(publish(node, value), opts(node)), { records: c.want(keys), ttl: FOUND_TTL });
  });
}

// --- Values refused whole --------------------------------------------------------------------

const spki = (): string => b64(keys.spki);
const malformed: { name: string; value: (k: Keys) => string; message: RegExp }[] = [
  { name: 'bad JSON', value: () => '{"map":{"*":{"tls":[[2,1,0,"AA=="]]}}', message: /not valid JSON/ },
  { name: 'JSON that is not an object', value: () => '[[2,1,0,"AA=="]]', message: /\(top\): expected a JSON object/ },
  { name: 'map not an object', value: () => '{"map":[]}', message: /map: expected an object, got \[\]/ },
  { name: 'map["*"] a number', value: () => '{"map":{"*":5}}', message: /map\["\*"\]: expected an object or a string, got 5/ },
  { name: 'tls a string', value: () => '{"tls":"2 1 0 AA=="}', message: /tls: expected an array of records/ },
  { name: 'd/ 2.0 port-keyed tls object', value: () => '{"tls":{"tcp":{"443":[[1,"660008F9",1]]}}}', message: /tls: the port-keyed object form/ },
  { name: 'object record (ncdns dane/d8)', value: () => wildcard({ dane: [2, 1, 0, spki()] }), message: /tls\[0\]: object records/ },
  { name: 'record not an array', value: () => wildcard('2 1 0'), message: /tls\[0\]: expected \[usage/ },
  { name: 'record with three elements', value: () => wildcard([2, 1, 0]), message: /tls\[0\]: expected at least 4 elements, got 3/ },
  { name: 'usage a string', value: () => wildcard(['2', 1, 0, spki()]), message: /tls\[0\]\[0\]: usage "2" is not an integer/ },
  { name: 'usage not an integer', value: () => wildcard([2.5, 1, 0, spki()]), message: /usage 2\.5 is not an integer/ },
  { name: 'usage negative', value: () => wildcard([-1, 1, 0, spki()]), message: /usage -1 is out of range 0\.\.255/ },
  { name: 'usage 256', value: () => wildcard([256, 1, 0, spki()]), message: /usage 256 is out of range 0\.\.255/ },
  { name: 'usage 1 (PKIX-EE) unsupported', value: () => wildcard([1, 1, 0, spki()]), message: /usage 1 is not supported \(expected 2, 3\)/ },
  { name: 'selector 2', value: () => wildcard([2, 2, 0, spki()]), message: /tls\[0\]\[1\]: selector 2 is not supported/ },
  { name: 'selector null', value: () => wildcard([2, null, 0, spki()]), message: /selector null is not an integer/ },
  { name: 'matching type 3', value: () => wildcard([2, 1, 3, spki()]), message: /tls\[0\]\[2\]: matching type 3 is not supported/ },
  { name: 'data a number', value: () => wildcard([2, 1, 0, 12]), message: /tls\[0\]\[3\]: expected a base64 string, got 12/ },
  { name: 'data empty', value: () => wildcard([2, 1, 0, '']), message: /empty data/ },
  { name: 'bad base64 characters', value: () => wildcard([2, 1, 0, 'MFkw!!==']), message: /is not padded standard base64/ },
  { name: 'URL-safe base64', value: (k) => wildcard([2, 1, 0, Buffer.from(k.spki).toString('base64url')]), message: /is not padded standard base64/ },
  { name: 'base64 without padding', value: () => wildcard([2, 1, 0, 'MFk']), message: /is not padded standard base64/ },
  { name: 'non-canonical base64 pad bits', value: () => wildcard([2, 1, 0, 'MFl=']), message: /not canonical base64/ },
  { name: 'base64 with whitespace', value: (k) => wildcard([2, 1, 0, `${b64(k.spki).slice(0, 8)} ${b64(k.spki).slice(8)}`]), message: /is not padded standard base64/ },
  { name: 'SHA-256 digest of 31 bytes', value: () => wildcard([2, 1, 1, b64(new Uint8Array(31))]), message: /matching type 1 needs a 32-byte digest, got 31 bytes/ },
  { name: 'SHA-512 digest of 32 bytes', value: () => wildcard([2, 1, 2, b64(new Uint8Array(32))]), message: /matching type 2 needs a 64-byte digest, got 32 bytes/ },
  { name: 'full data not DER', value: () => wildcard([2, 1, 0, b64(Uint8Array.of(1, 2, 3))]), message: /not a DER certificate or SubjectPublicKeyInfo/ },
  { name: 'full data over 16 KiB', value: () => wildcard([2, 1, 0, b64(new Uint8Array(16 * 1024 + 1).fill(0x30))]), message: /16385 bytes, more than the 16384 accepted/ },
  { name: 'too many records', value: (k) => wildcard(...Array.from({ length: MAX_RECORDS + 1 }, () => [2, 1, 1, b64(digest('sha256', k.spki))])), message: /33 records, more than the 32 accepted/ },
  { name: 'value over 64 KiB', value: (k) => JSON.stringify({ info: 'x'.repeat(MAX_VALUE_BYTES), map: { '*': { tls: [[2, 1, 0, b64(k.spki)]] } } }), message: /\(value\): \d+ bytes, more than the 65536 accepted/ },
  { name: 'one bad record among good ones', value: (k) => wildcard([2, 1, 0, b64(k.spki)], [2, 1, 1, 'AAAA'], [3, 1, 0, b64(k.spki2)]), message: /tls\[1\]\[3\]: matching type 1 needs a 32-byte digest, got 3 bytes/ },
  { name: 'good map["*"] but bad top-level tls', value: (k) => JSON.stringify({ map: { '*': { tls: [[2, 1, 0, b64(k.spki)]] } }, tls: [[0, 0, 1, 'AA==']] }), message: /(?:^|: )name value: tls\[0\]\[0\]: usage 0/ },
];

for (const c of malformed) {
  test(`refused whole: ${c.name}`, async (t) => {
    const value = c.value(keys);
    const direct = t.throws(() => parseTlsValue(value), { instanceOf: EngineError });
    t.is(direct?.code, 'SOURCE');
    t.regex(direct!.message, c.message);
    const domain = publish(node, value);
    const viaRpc = await t.throwsAsync(nameShowTls(domain, opts(node)), { instanceOf: EngineError });
    t.is(viaRpc?.code, 'SOURCE');
    t.true(viaRpc!.message.startsWith(`d/${domain.slice(0, -4)}: name value: `), viaRpc!.message);
    t.regex(viaRpc!.message, c.message);
  });
}

// --- Absent, expired, and how the node encodes values -------------------------------------------

test('name not found: no records, TTL 60, asked as name_show ["d/<label>"]', async (t) => {
  await withNode({ auth: USER }, async (n) => {
    t.deepEqual(await nameShowTls('nosuchname.bit', opts(n)), { records: [], ttl: ABSENT_TTL, absent: 'never existed' });
    t.deepEqual(n.calls, [{ method: 'name_show', params: ['d/nosuchname'] }]);
  });
});

test('expired name (node default: error -4 "name expired"): no records', async (t) => {
  const domain = publish(node, wildcard([2, 1, 0, b64(keys.spki)]), { expired: true });
  t.deepEqual(await nameShowTls(domain, opts(node)), { records: [], ttl: ABSENT_TTL, absent: 'expired' });
});

test('expired name shown with expired: true (node run with -allowexpired): no records', async (t) => {
  await withNode({ auth: USER }, async (n) => {
    n.allowExpired = true;
    const domain = publish(n, wildcard([2, 1, 0, b64(keys.spki)]), { expired: true });
    t.deepEqual(await nameShowTls(domain, opts(n)), { records: [], ttl: ABSENT_TTL, absent: 'expired' });
  });
});

test('value the default ascii encoding cannot show: refused, pointing at -valueencoding', async (t) => {
  const domain = publish(node, JSON.stringify({ map: { '*': { tls: [[2, 1, 0, b64(keys.spki)]] } } }, null, 1));
  const e = await t.throwsAsync(nameShowTls(domain, opts(node)), { instanceOf: EngineError });
  t.is(e?.code, 'SOURCE');
  t.regex(e!.message, /no readable value \(value_error "invalid data for ascii".*-valueencoding/);
});

for (const encoding of ['utf8', 'hex'] as const) {
  test(`multi-line value read through -valueencoding=${encoding}`, async (t) => {
    await withNode({ auth: USER }, async (n) => {
      n.valueEncoding = encoding;
      const domain = publish(n, JSON.stringify({ info: 'Zoë', map: { '*': { tls: [[2, 1, 0, b64(keys.spki)]] } } }, null, 1));
      t.deepEqual(await nameShowTls(domain, opts(n)), { records: [rec(2, 1, 0, keys.spki)], ttl: FOUND_TTL });
    });
  });
}

// --- Arguments refused before anything is sent --------------------------------------------------

const badDomains = ['Example.bit', 'example.BIT', 'example.com', 'WWW.example.bit', 'www..example.bit', '-www.example.bit', 'w w.example.bit', 'example.bit.', 'bit', '.bit', '-x.bit', 'x-.bit', 'a--b.bit', 'ex_ample.bit', '123.bit', `${'a'.repeat(64)}.bit`, 'exämple.bit', ''];
for (const domain of badDomains) {
  test(`domain refused: ${JSON.stringify(domain)}`, async (t) => {
    const e = await t.throwsAsync(nameShowTls(domain, opts(node)), { instanceOf: EngineError });
    t.is(e?.code, 'USAGE');
  });
}

test('domains that are valid d/ names are accepted', async (t) => {
  for (const domain of ['a.bit', '123four.bit', 'xn--telo-u5a.bit', 'my-site.bit', `${'a'.repeat(63)}.bit`]) {
    t.deepEqual(await nameShowTls(domain, opts(node)), { records: [], ttl: ABSENT_TTL, absent: 'never existed' }, domain);
  }
});

const badUrls: { name: string; url: (port: number) => string; message: RegExp }[] = [
  { name: 'public address', url: (p) => `http://192.0.2.1:${p}/`, message: /only http:\/\/ to 127\.0\.0\.1, localhost or \[::1\]/ },
  { name: 'another loopback address', url: (p) => `http://127.0.0.2:${p}/`, message: /only http:\/\// },
  { name: 'host name', url: (p) => `http://namecoin.example:${p}/`, message: /only http:\/\// },
  { name: 'localhost as a prefix', url: (p) => `http://localhost.example:${p}/`, message: /only http:\/\// },
  { name: 'https', url: (p) => `https://127.0.0.1:${p}/`, message: /only http:\/\// },
  { name: 'no port', url: () => 'http://127.0.0.1/', message: /name the port/ },
  { name: 'credentials in the URL', url: (p) => `http://u:p@127.0.0.1:${p}/`, message: /credentials in the auth option/ },
  { name: 'not a URL', url: () => '127.0.0.1:8336', message: /only http|is not a URL/ },
];
for (const c of badUrls) {
  test(`URL refused: ${c.name}`, async (t) => {
    await withNode({ auth: USER }, async (n) => {
      const e = await t.throwsAsync(nameShowTls('example.bit', opts(n, { url: c.url(n.port) })), { instanceOf: EngineError });
      t.is(e?.code, 'USAGE');
      t.regex(e!.message, c.message);
      t.is(n.httpRequests, 0, 'nothing was sent');
    });
  });
}

test('localhost URL reaches the node on 127.0.0.1', async (t) => {
  const domain = publish(node, wildcard([2, 1, 0, b64(keys.spki)]));
  t.deepEqual(await nameShowTls(domain, opts(node, { url: `http://localhost:${node.port}/` })), { records: [rec(2, 1, 0, keys.spki)], ttl: FOUND_TTL });
});

for (const timeoutMs of [0, -1, 1.5, Number.NaN, 10 ** 9]) {
  test(`timeout refused: ${timeoutMs}`, async (t) => {
    const e = await t.throwsAsync(nameShowTls('example.bit', opts(node, { timeoutMs })), { instanceOf: EngineError });
    t.is(e?.code, 'USAGE');
  });
}

test('user name with a colon refused', async (t) => {
  const e = await t.throwsAsync(nameShowTls('example.bit', opts(node, { auth: { user: 'a:b', password: 'c' } })), { instanceOf: EngineError });
  t.is(e?.code, 'USAGE');
});

// --- Authentication --------------------------------------------------------------------------

test('wrong password refused (HTTP 401)', async (t) => {
  const e = await t.throwsAsync(nameShowTls('example.bit', opts(node, { auth: { ...USER, password: 'wrong' } })), { instanceOf: EngineError });
  t.is(e?.code, 'SOURCE');
  t.regex(e!.message, /authentication refused \(HTTP 401\)/);
});

test('cookie auth works and the cookie is re-read after a node restart', async (t) => {
  const domain = publish(cookieNode, wildcard([2, 1, 0, b64(keys.spki)]));
  const want = { records: [rec(2, 1, 0, keys.spki)], ttl: FOUND_TTL };
  t.deepEqual(await nameShowTls(domain, opts(cookieNode)), want);
  cookieNode.rotateCookie();
  t.deepEqual(await nameShowTls(domain, opts(cookieNode)), want);
});

const badCookies: { name: string; content: string | null; message: RegExp }[] = [
  { name: 'wrong cookie', content: `__cookie__:${'ab'.repeat(32)}`, message: /authentication refused \(HTTP 401\)/ },
  { name: 'missing cookie file (node not running)', content: null, message: /RPC cookie file: .*\.cookie\.other does not exist \(Namecoin Core writes it when it starts, in its data directory\)/ },
  { name: 'cookie without a colon', content: 'ab'.repeat(32), message: /not of the form __cookie__:<hex>/ },
  { name: 'oversized cookie file', content: `__cookie__:${'a'.repeat(2000)}`, message: /larger than 1024 bytes/ },
];
for (const c of badCookies) {
  test(`cookie refused: ${c.name}`, async (t) => {
    await withNode({ auth: 'cookie' }, async (n) => {
      const file = `${n.cookieFile!}.other`;
      if (c.content !== null) writeFileSync(file, c.content);
      const e = await t.throwsAsync(nameShowTls('example.bit', opts(n, { auth: { cookieFile: file } })), { instanceOf: EngineError });
      t.is(e?.code, 'SOURCE');
      t.regex(e!.message, c.message);
    });
  });
}

// --- Node states, HTTP faults, bounds --------------------------------------------------------

const faults: { name: string; set: (n: Namecoind) => void; url?: (n: Namecoind) => string; message: RegExp }[] = [
  { name: 'node warming up (-28)', set: (n) => (n.state = 'warmup'), message: /RPC error -28: Loading block index/ },
  { name: 'initial block download (-10)', set: (n) => (n.state = 'initialDownload'), message: /RPC error -10: Namecoin is downloading blocks/ },
  { name: 'not a Namecoin node (-32601, HTTP 404)', set: (n) => (n.state = 'noNameRpcs'), message: /RPC error -32601: Method not found \(HTTP 404\)/ },
  { name: 'work queue full (HTTP 503)', set: (n) => (n.state = 'workQueueFull'), message: /HTTP 503: Work queue depth exceeded/ },
  { name: 'unknown path (HTTP 404, no body)', set: () => {}, url: (n) => `${n.url}nope`, message: /HTTP 404 answer is not JSON/ },
  {
    name: 'answer over 1 MiB',
    set: (n) => n.setName('d/huge', JSON.stringify({ info: 'x'.repeat(1024 * 1024) })),
    message: /exceeds the 1048576-byte \(1 MiB\) bound/,
  },
];
for (const c of faults) {
  test(`upstream fault refused: ${c.name}`, async (t) => {
    await withNode({ auth: USER }, async (n) => {
      c.set(n);
      const domain = c.name.startsWith('answer over') ? 'huge.bit' : 'example.bit';
      const e = await t.throwsAsync(nameShowTls(domain, opts(n, c.url ? { url: c.url(n) } : {})), { instanceOf: EngineError });
      t.is(e?.code, 'SOURCE');
      t.regex(e!.message, c.message);
    });
  });
}

test('nothing listening: refused', async (t) => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const e = await t.throwsAsync(nameShowTls('example.bit', opts(node, { url: `http://127.0.0.1:${port}/` })), { instanceOf: EngineError });
  t.is(e?.code, 'SOURCE');
  t.regex(e!.message, /request failed: .*ECONNREFUSED/);
});

for (const how of ['answers late', 'stalls mid-body'] as const) {
  test(`slow server timed out within the bound: ${how}`, async (t) => {
    await withNode({ auth: USER }, async (n) => {
      if (how === 'answers late') n.delayMs = 10_000;
      else n.stallBody = true;
      const start = performance.now();
      const e = await t.throwsAsync(nameShowTls('example.bit', opts(n, { timeoutMs: 300 })), { instanceOf: EngineError });
      const elapsed = performance.now() - start;
      t.is(e?.code, 'SOURCE');
      t.regex(e!.message, /no complete answer within 300 ms/);
      t.true(elapsed >= 290 && elapsed < 1_500, `took ${elapsed.toFixed(0)} ms`);
    });
  });
}

// --- The fixture itself answers as Namecoin Core's httprpc.cpp does ------------------------------

test('fixture: raw HTTP shapes (401 without body, 1.0 envelope, 500 for RPC errors)', async (t) => {
  const post = (body: string, auth?: string): Promise<Response> =>
    fetch(node.url, { method: 'POST', body, headers: auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {} });
  const noAuth = await post('{}');
  t.is(noAuth.status, 401);
  t.is(noAuth.headers.get('www-authenticate'), 'Basic realm="jsonrpc"');
  t.is(await noAuth.text(), '');
  const creds = `${USER.user}:${USER.password}`;
  const missing = await post(JSON.stringify({ method: 'name_show', params: ['d/nosuch'], id: 7 }), creds);
  t.is(missing.status, 500);
  t.is(missing.headers.get('content-type'), 'application/json');
  t.is(await missing.text(), `${JSON.stringify({ result: null, error: { code: -4, message: "name never existed: 'd/nosuch'" }, id: 7 })}\n`);
  node.setName('d/shape', '{}');
  const found = (await (await post(JSON.stringify({ method: 'name_show', params: ['d/shape'], id: 'x' }), creds)).json()) as Record<string, unknown>;
  t.deepEqual(Object.keys(found), ['result', 'error', 'id']);
  t.deepEqual(Object.keys(found.result as object), ['name', 'name_encoding', 'value', 'value_encoding', 'txid', 'vout', 'address', 'height', 'expires_in', 'expired']);
  const unparsable = await post('{', creds);
  t.is(unparsable.status, 500);
  t.deepEqual(await unparsable.json(), { result: null, error: { code: -32700, message: 'Parse error' } });
  const v2 = await post(JSON.stringify({ jsonrpc: '2.0', method: 'name_show', params: ['d/nosuch'], id: 1 }), creds);
  t.is(v2.status, 200);
  t.deepEqual(await v2.json(), { jsonrpc: '2.0', error: { code: -4, message: "name never existed: 'd/nosuch'" }, id: 1 });
});

// --- Property: parseTlsValue returns valid records or throws EngineError ----------------------

const JUNK: unknown[] = [0, 1, 2, 3, 255, 256, -1, 2.5, 1e308, '', 'AA==', 'AAAA', '=', '*', null, true, [], {}, [2, 1, 0], [2, 1, 1, 'AA=='], { dane: [2, 1, 0, 'MA=='] }, 'x'.repeat(300)];
const CHARS = '{}[]",:0123456789-.eE+/=*ABZabtlsmap \\u\n';

function mutateText(s: string, r: () => number): string {
  const i = Math.floor(r() * (s.length + 1));
  const ch = CHARS[Math.floor(r() * CHARS.length)]!;
  switch (Math.floor(r() * 5)) {
    case 0: return s.slice(0, i) + ch + s.slice(i + 1);
    case 1: return s.slice(0, i) + s.slice(i + 1 + Math.floor(r() * 8));
    case 2: return s.slice(0, i) + ch + s.slice(i);
    case 3: return s.slice(0, i);
    default: return s.slice(0, i) + s.slice(Math.floor(r() * s.length));
  }
}

function mutateJson(s: string, r: () => number): string {
  const doc = JSON.parse(s) as unknown;
  const containers: (Record<string, unknown> | unknown[])[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'object' && v !== null) {
      containers.push(v as Record<string, unknown>);
      for (const x of Object.values(v)) walk(x);
    }
  };
  walk(doc);
  const target = containers[Math.floor(r() * containers.length)]!;
  const keys = Object.keys(target);
  const key = keys[Math.floor(r() * keys.length)] ?? '0';
  const junk = JUNK[Math.floor(r() * JUNK.length)];
  if (r() < 0.2) delete (target as Record<string, unknown>)[key];
  else if (r() < 0.2) (target as Record<string, unknown>)[key] = [(target as Record<string, unknown>)[key]];
  else (target as Record<string, unknown>)[key] = structuredClone(junk);
  return JSON.stringify(doc);
}

/** One mutation: text-level, or JSON-level when the text still parses. */
function mutate(s: string, r: () => number): string {
  if (r() < 0.5) return mutateText(s, r);
  try {
    return mutateJson(s, r);
  } catch {
    return mutateText(s, r);
  }
}

function checkRecord(r: TlsRecord): boolean {
  const sizeOk = r.matchingType === 1 ? r.data.length === 32 : r.matchingType === 2 ? r.data.length === 64 : r.data.length > 0 && r.data[0] === 0x30;
  return [2, 3].includes(r.usage) && [0, 1].includes(r.selector) && [0, 1, 2].includes(r.matchingType) && r.data instanceof Uint8Array && sizeOk;
}

test('property: 600 mutated values give valid records or EngineError, nothing else', (t) => {
  const r = prng(0x6e636665);
  const seeds = good.map((c) => c.value(keys)).filter((v) => v.length < 2000);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 600; i++) {
    let value = seeds[Math.floor(r() * seeds.length)]!;
    for (let m = 1 + Math.floor(r() * 3); m > 0; m--) value = mutate(value, r);
    let out: unknown;
    try {
      out = parseTlsValue(value);
    } catch (e) {
      if (!(e instanceof EngineError) || e.code !== 'SOURCE') return t.fail(`case ${i}: threw ${String(e)} for ${JSON.stringify(value)}`);
      refused++;
      continue;
    }
    if (!Array.isArray(out) || !out.every(checkRecord)) return t.fail(`case ${i}: bad result ${JSON.stringify(out)} for ${JSON.stringify(value)}`);
    t.deepEqual(parseTlsValue(value), out, `case ${i}: not deterministic`);
    accepted++;
  }
  t.log(`accepted ${accepted}, refused ${refused}`);
  t.true(accepted > 30 && refused > 30, `both outcomes exercised (accepted ${accepted}, refused ${refused})`);
});

test('CLI: a password on the command line is refused (it would show in ps); a password file that cannot be read is named', async (t) => {
  const { run } = await import('../helpers/run.js');
  const { CLI } = await import('../helpers/paths.js');
  const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, 'serve', ...args], { timeoutMs: 30_000 });
  const r = await cli(['--rpc', 'http://127.0.0.1:8336/', '--rpc-user', 'u', '--rpc-password', 'hunter2', '--socket', '/nonexistent/s.sock']);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /--rpc-password would show the password to every user .*use --rpc-password-file FILE or set NCFENCE_RPC_PASSWORD/);
  t.notRegex(r.stderr, /hunter2/);
  const f = await cli(['--rpc', 'http://127.0.0.1:8336/', '--rpc-user', 'u', '--rpc-password-file', '/nonexistent/pw', '--socket', '/nonexistent/s.sock']);
  t.is(f.code, 2, f.stderr);
  t.regex(f.stderr, /cannot read --rpc-password-file: \/nonexistent\/pw does not exist/);
});

// --- Subdomains: the value walked as ncdns walks it for the owner name *.H ---------------------
// (ncdns backend/backend.go _findNCValue: exact key, else "*" for one label,
// else nothing; no inheritance; ncgencert -host H: the "tls" of "*.<H>").

const nested = (path: string[], leaf: object): object => path.reduceRight<object>((acc, key) => ({ map: { [key]: acc } }), leaf);
const subCases: { name: string; value: (k: Keys) => string; sub: string; want: (k: Keys) => TlsRecord[] }[] = [
  { name: 'depth 1: map.www.map["*"].tls', value: (k) => JSON.stringify(nested(['www', '*'], { tls: [[2, 1, 0, b64(k.spki)]] })), sub: 'www', want: (k) => [rec(2, 1, 0, k.spki)] },
  { name: 'depth 2: map.b.map.a.map["*"].tls', value: (k) => JSON.stringify(nested(['b', 'a', '*'], { tls: [[2, 1, 1, b64(digest('sha256', k.spki))]] })), sub: 'a.b', want: (k) => [rec(2, 1, 1, digest('sha256', k.spki))] },
  { name: 'no inheritance: the apex records do not vouch for www', value: (k) => wildcard([2, 1, 0, b64(k.spki)]), sub: 'www', want: () => [] },
  { name: 'no inheritance: www exists with no records of its own', value: (k) => JSON.stringify({ map: { '*': { tls: [[2, 1, 0, b64(k.spki)]] }, www: { ip: '192.0.2.1' } } }), sub: 'www', want: () => [] },
  { name: 'the subdomain records do not vouch for the apex', value: (k) => JSON.stringify(nested(['www', '*'], { tls: [[2, 1, 0, b64(k.spki)]] })), sub: '', want: () => [] },
  { name: '"*" stands for one missing label', value: (k) => JSON.stringify(nested(['*', '*'], { tls: [[2, 1, 0, b64(k.spki)]] })), sub: 'www', want: (k) => [rec(2, 1, 0, k.spki)] },
  { name: '"*" does not stand for two labels', value: (k) => JSON.stringify(nested(['*', '*'], { tls: [[2, 1, 0, b64(k.spki)]] })), sub: 'a.b', want: () => [] },
  {
    name: 'an exact key wins over "*"',
    value: (k) => JSON.stringify({ map: { www: nested(['*'], { tls: [[2, 1, 0, b64(k.spki)]] }), '*': nested(['*'], { tls: [[2, 1, 0, b64(k.spki2)]] }) } }),
    sub: 'www',
    want: (k) => [rec(2, 1, 0, k.spki)],
  },
  { name: 'a dotted key matches no label (invalid in ifa-0001)', value: (k) => JSON.stringify({ map: { 'a.b': nested(['*'], { tls: [[2, 1, 0, b64(k.spki)]] }) } }), sub: 'a.b', want: () => [] },
  { name: 'the ip shorthand on the way: no records', value: () => JSON.stringify({ map: { www: '192.0.2.1' } }), sub: 'www', want: () => [] },
];
for (const c of subCases) {
  test(`subdomain records: ${c.name}`, async (t) => {
    const apex = publish(node, c.value(keys));
    const host = c.sub ? `${c.sub}.${apex}` : apex;
    t.deepEqual((await nameShowTls(host, opts(node))).records, c.want(keys));
  });
}

test('subdomain records: deeper than ncdns follows (16 map levels) is refused; a malformed node on the way is refused whole', async (t) => {
  const deep = `${Array.from({ length: 16 }, (_, i) => `l${i}`).join('.')}.example.bit`;
  const deepApex = publish(node, wildcard([2, 1, 0, b64(keys.spki)]));
  const deepErr = await t.throwsAsync(nameShowTls(deep.replace('example.bit', deepApex), opts(node)), { instanceOf: EngineError });
  t.regex(deepErr!.message, /17 levels of subdomain, more than the 16 ncdns follows/);
  const bad = await t.throwsAsync(nameShowTls(`www.${publish(node, JSON.stringify({ map: { www: 5 } }))}`, opts(node)), { instanceOf: EngineError });
  t.regex(bad!.message, /map\["www"\]: expected an object or a string, got 5/);
});

test('property: 600 mutated subdomain values, walked for 0 to 3 labels, give valid records or EngineError, nothing else', (t) => {
  const r = prng(0x73756264);
  const seeds = subCases.map((c) => c.value(keys)).filter((v) => v.length < 2000);
  const walks = [[], ['www'], ['a', 'b'], ['*', 'x', 'www']];
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 600; i++) {
    let value = seeds[Math.floor(r() * seeds.length)]!;
    for (let m = 1 + Math.floor(r() * 3); m > 0; m--) value = mutate(value, r);
    const walk = walks[Math.floor(r() * walks.length)]!;
    let out: unknown;
    try {
      out = parseTlsValue(value, walk);
    } catch (e) {
      if (!(e instanceof EngineError) || e.code !== 'SOURCE') return t.fail(`case ${i}: threw ${String(e)} for ${JSON.stringify(value)}`);
      refused++;
      continue;
    }
    if (!Array.isArray(out) || !out.every(checkRecord)) return t.fail(`case ${i}: bad result ${JSON.stringify(out)} for ${JSON.stringify(value)}`);
    accepted++;
  }
  t.log(`accepted ${accepted}, refused ${refused}`);
  t.true(accepted > 30 && refused > 30, `both outcomes exercised (accepted ${accepted}, refused ${refused})`);
});
