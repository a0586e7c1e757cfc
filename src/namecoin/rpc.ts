// Namecoin Core JSON-RPC as a source of .bit TLS anchors: `name_show "d/<label>"`.
//
// What this relies on in namecoin/namecoin-core (read, not copied):
// - src/rpc/names.cpp name_show: a name that is not in the name database
//   fails with RPC_WALLET_ERROR (-4) "name never existed: 'd/x'" (before
//   2021: "name not found: ..."); an expired name fails with -4 "name expired:
//   'd/x'" unless the node runs with -allowexpired (default false,
//   src/rpc/names.h) or the call sets allowExpired, in which case the result
//   carries "expired": true. Commit 8dbcb3437e changed only the messages
//   ("Doesn't change the error code, so this isn't an API-breaking change"),
//   so the code, not the text, is what we match.
// - The result object: name, name_encoding, value (or value_error when the
//   value cannot be shown in the node's -valueencoding, default "ascii":
//   bytes 0x20..0x7f only, src/names/encoding.cpp), value_encoding, txid,
//   vout, address, height, expires_in, expired.
// - src/httprpc.cpp and src/rpc/request.cpp: JSON-RPC 1.0 requests (no
//   "jsonrpc" member) get {"result", "error", "id"} with both members present;
//   an RPC error is HTTP 500 (400 for -32600, 404 for -32601); a missing or
//   wrong Authorization header is HTTP 401 with an empty body (after a 250 ms
//   pause for a wrong one). Only the paths "/" and "/wallet/..." are served.
// - src/rpc/request.cpp GenerateAuthCookie: the cookie file holds
//   "__cookie__:<64 hex>" with no newline, rewritten at every node start, so
//   it is read afresh for every call.
// TTL 600 s for found records: ncdns (namecoin/ncdns:ncdomain/convert.go
// defaultTTL) serves the same records as TLSA with TTL 600.

import { readFileSync, statSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { EngineError } from '../engine/errors.js';
import { describePathError, errnoCode } from '../systemError.js';
import { bitName } from './names.js';
import { checkReachable } from './reach.js';
import { withDeadline } from '../service/client.js';
import { parseTlsValue, type NameAbsence, type TlsAnswer } from './records.js';

export type RpcAuth = { cookieFile: string } | { user: string; password: string };

export interface NameShowOptions {
  /** e.g. http://127.0.0.1:8336/ (mainnet default port) */
  url: string;
  auth: RpcAuth;
  /** Bound on the whole exchange: connect, send, and read the full answer. */
  timeoutMs: number;
}

export const FOUND_TTL = 600;
export const ABSENT_TTL = 60;
export const MAX_RESPONSE_BYTES = 1024 * 1024;
/** A lookup slower than this is broken, not slow; a larger value is a caller's mistake. */
export const MAX_TIMEOUT_MS = 120_000;
/** RPC_WALLET_ERROR, namecoin-core src/rpc/protocol.h: what name_show uses for absent and expired names. */
export const RPC_NAME_ABSENT = -4;

const REQUEST_ID = 'ncfence';
const MAX_COOKIE_BYTES = 1024;
/**
 * URL host -> address we connect to. "localhost" is connected as 127.0.0.1
 * without asking the resolver, so a hosts file cannot point it elsewhere
 * (Namecoin Core binds 127.0.0.1 and ::1 by default).
 */
const LOOPBACK_HOSTS: Record<string, string> = { '127.0.0.1': '127.0.0.1', localhost: '127.0.0.1', '[::1]': '::1' };

interface Target {
  host: string;
  port: number;
  path: string;
  hostHeader: string;
  shown: string;
}

interface HttpReply {
  status: number;
  body: Buffer;
}

/**
 * Looks up the TLS records of a .bit domain with `name_show "d/<label>"`.
 * Absent and expired names give no records (TTL 60); anything the node
 * answers that is not a usable name value is an EngineError('SOURCE');
 * bad arguments are EngineError('USAGE').
 */
export async function nameShowTls(domain: string, opts: NameShowOptions): Promise<TlsAnswer> {
  const { name, subLabels } = bitName(domain);
  const shown = await nameShow(name, opts);
  if ('absent' in shown || shown.expired) return { records: [], ttl: ABSENT_TTL, absent: 'absent' in shown ? shown.absent : 'expired' };
  try {
    return { records: parseTlsValue(shown.value, subLabels), ttl: FOUND_TTL };
  } catch (cause) {
    if (!(cause instanceof EngineError)) throw cause;
    throw new EngineError('SOURCE', `${name}: ${cause.message}`, { cause });
  }
}

export interface NameOwner {
  /** The name asked about, d/<label>. */
  name: string;
  /** The address holding it (name_show "address"), when it exists and has not expired. */
  address?: string;
  /** Why there is no owner. */
  absent?: NameAbsence;
  ttl: number;
}

/**
 * Who owns the name `domain` belongs to (`name_show "d/<label>"`'s address):
 * what certified mode checks stapled signatures against. An expired name has
 * no owner.
 */
export async function nameOwner(domain: string, opts: NameShowOptions): Promise<NameOwner> {
  const { name } = bitName(domain);
  const shown = await nameShow(name, opts);
  if ('absent' in shown) return { name, absent: shown.absent, ttl: ABSENT_TTL };
  if (shown.expired) return { name, absent: 'expired', ttl: ABSENT_TTL };
  return { name, address: shown.address, ttl: FOUND_TTL };
}

async function nameShow(name: string, opts: NameShowOptions): Promise<Shown> {
  const target = checkRpcOptions(opts);
  const authorization = basicAuthorization(opts.auth);
  const body = JSON.stringify({ method: 'name_show', params: [name], id: REQUEST_ID });
  const reply = await postJson(target, body, authorization, opts.timeoutMs);
  return interpretReply(name, target, reply);
}

/** The URL and timeout, checked before any connection (`serve` refuses a wrong --rpc at once): where to connect. */
export function checkRpcOptions(opts: { url: string; timeoutMs: number }): Target {
  const target = loopbackTarget(opts.url);
  if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs <= 0 || opts.timeoutMs > MAX_TIMEOUT_MS) {
    throw new EngineError('USAGE', `timeoutMs ${opts.timeoutMs} is not an integer in 1..${MAX_TIMEOUT_MS}`);
  }
  return target;
}

/** Whether Namecoin Core can be asked: a loopback http URL, readable credentials, and a TCP connection within the timeout. */
export async function checkRpc(opts: NameShowOptions): Promise<void> {
  const target = checkRpcOptions(opts);
  basicAuthorization(opts.auth);
  await checkReachable(target.host, target.port, opts.timeoutMs, `Namecoin Core at ${target.shown}`);
}

function loopbackTarget(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new EngineError('USAGE', `RPC url ${JSON.stringify(url)} is not a URL`, { cause });
  }
  const host = LOOPBACK_HOSTS[u.hostname];
  if (u.protocol !== 'http:' || host === undefined) {
    throw new EngineError('USAGE', `RPC url ${JSON.stringify(url)}: only http:// to 127.0.0.1, localhost or [::1] is allowed`);
  }
  if (u.port === '') throw new EngineError('USAGE', `RPC url ${JSON.stringify(url)}: name the port (Namecoin Core mainnet: 8336)`);
  if (u.username !== '' || u.password !== '') {
    throw new EngineError('USAGE', `RPC url ${JSON.stringify(u.origin)}: put credentials in the auth option, not the URL`);
  }
  return { host, port: Number(u.port), path: `${u.pathname}${u.search}`, hostHeader: u.host, shown: `${u.origin}${u.pathname}` };
}

function basicAuthorization(auth: RpcAuth): string {
  let pair: string;
  if ('cookieFile' in auth) {
    pair = readCookie(auth.cookieFile);
  } else {
    if (auth.user.includes(':')) throw new EngineError('USAGE', `RPC user ${JSON.stringify(auth.user)} contains ":"`);
    pair = `${auth.user}:${auth.password}`;
  }
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
}

/** The cookie's "user:password" text; a missing cookie usually means the node is not running. */
function readCookie(file: string): string {
  let text: string;
  try {
    if (statSync(file).size > MAX_COOKIE_BYTES) throw new Error(`larger than ${MAX_COOKIE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const why = errnoCode(cause) === 'ENOENT' ? `${file} does not exist (Namecoin Core writes it when it starts, in its data directory)` : errnoCode(cause) ? describePathError(cause, file) : `${file}: ${(cause as Error).message}`;
    throw new EngineError('SOURCE', `RPC cookie file: ${why}`, { cause });
  }
  const pair = text.replace(/\r?\n$/, '');
  if (!/^[\x21-\x39\x3b-\x7e]+:[\x21-\x7e]+$/.test(pair)) {
    throw new EngineError('SOURCE', `RPC cookie file ${file} is not of the form __cookie__:<hex>`);
  }
  return pair;
}

function postJson(target: Target, body: string, authorization: string, timeoutMs: number): Promise<HttpReply> {
  const fail = (problem: string, cause?: unknown): EngineError =>
    new EngineError('SOURCE', `Namecoin RPC ${target.shown}: ${problem}`, cause === undefined ? undefined : { cause });
  const req = httpRequest({
    host: target.host,
    port: target.port,
    path: target.path,
    method: 'POST',
    agent: false,
    headers: {
      host: target.hostHeader,
      authorization,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    },
  });
  return withDeadline(req, timeoutMs, () => fail(`no complete answer within ${timeoutMs} ms`), (done) => {
    req.on('response', (res) => readBounded(res, (problem) => done(fail(problem)), (buf) => done({ status: res.statusCode ?? 0, body: buf })));
    req.on('error', (cause) => done(fail(`request failed: ${cause.message}`, cause)));
    req.end(body);
  });
}

function readBounded(res: IncomingMessage, fail: (problem: string) => void, done: (body: Buffer) => void): void {
  const declared = Number(res.headers['content-length']);
  if (declared > MAX_RESPONSE_BYTES) return fail(`answer of ${declared} bytes exceeds the ${MAX_RESPONSE_BYTES}-byte (1 MiB) bound`);
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) return fail(`answer exceeds the ${MAX_RESPONSE_BYTES}-byte (1 MiB) bound`);
    chunks.push(chunk);
  });
  res.on('end', () => done(Buffer.concat(chunks)));
  res.on('error', (err) => fail(`answer broken off: ${err.message}`));
  res.on('close', () => {
    if (!res.complete) fail('connection closed before the answer was complete');
  });
}

type Shown = { absent: NameAbsence } | { value: string; expired: boolean; address: string };

function interpretReply(name: string, target: Target, reply: HttpReply): Shown {
  const where = `Namecoin RPC ${target.shown}`;
  const bad = (problem: string): EngineError => new EngineError('SOURCE', `${where}: name_show ${name}: ${problem}`);
  if (reply.status === 401) throw bad('authentication refused (HTTP 401): check the RPC user/password or the cookie file');
  if (![200, 400, 404, 500].includes(reply.status)) throw bad(`HTTP ${reply.status}: ${snippet(reply.body.toString('utf8'))}`);
  let envelope: unknown;
  try {
    envelope = JSON.parse(reply.body.toString('utf8'));
  } catch {
    throw bad(`HTTP ${reply.status} answer is not JSON: ${snippet(reply.body.toString('utf8'))}`);
  }
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) throw bad('answer is not a JSON-RPC reply object');
  const env = envelope as Record<string, unknown>;
  if (Object.hasOwn(env, 'id') && env.id !== REQUEST_ID) throw bad(`answer carries id ${snippet(JSON.stringify(env.id) ?? '')}, not ${JSON.stringify(REQUEST_ID)}`);
  if (env.error !== null && env.error !== undefined) {
    const error = rpcError(env.error);
    // The code says absent; the text (changed over the years, never the code) only tells why, for the log.
    if (error.code === RPC_NAME_ABSENT) return { absent: /expired/i.test(error.text) ? 'expired' : 'never existed' };
    throw bad(`RPC error ${error.text} (HTTP ${reply.status})`);
  }
  if (reply.status !== 200 || env.id !== REQUEST_ID || !Object.hasOwn(env, 'result')) {
    throw bad(`HTTP ${reply.status} answer is not a JSON-RPC 1.0 result: ${snippet(reply.body.toString('utf8'))}`);
  }
  return readNameInfo(name, env.result, bad);
}

/** An RPC error's code, and the code and message as text for messages. */
function rpcError(error: unknown): { code: unknown; text: string } {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : JSON.stringify(error) ?? '';
  return { code: e.code, text: `${String(e.code)}: ${snippet(message)}` };
}

function readNameInfo(name: string, result: unknown, bad: (problem: string) => EngineError): Shown {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) throw bad('result is not an object');
  const info = result as Record<string, unknown>;
  const shownName = decodeField(info, 'name', bad);
  if (shownName !== name) throw bad(`answer is for ${snippet(JSON.stringify(shownName) ?? '')}, not ${name}`);
  const value = decodeField(info, 'value', bad);
  if (info.expired !== undefined && typeof info.expired !== 'boolean') throw bad(`"expired" is ${snippet(JSON.stringify(info.expired) ?? '')}, not a boolean`);
  const expired = info.expired === true || (typeof info.expires_in === 'number' && info.expires_in <= 0);
  // "<nonstandard>" when the script has no address (src/rpc/names.cpp getNameInfo): no one can sign for it.
  const address = typeof info.address === 'string' && info.address.length <= 100 ? info.address : '<nonstandard>';
  return { value, expired, address };
}

/** The text of "name" or "value", honouring the node's -nameencoding/-valueencoding. */
function decodeField(info: Record<string, unknown>, key: 'name' | 'value', bad: (problem: string) => EngineError): string {
  const encoding = info[`${key}_encoding`];
  const text = info[key];
  if (typeof text !== 'string') {
    const err = info[`${key}_error`];
    const hint = key === 'value' ? '; start the node with -valueencoding=utf8 or hex' : '';
    throw bad(`no readable ${key} (${key}_error ${snippet(JSON.stringify(err) ?? 'absent')}, ${key}_encoding ${JSON.stringify(encoding)})${hint}`);
  }
  if (encoding === undefined || encoding === 'ascii' || encoding === 'utf8') return text;
  if (encoding !== 'hex') throw bad(`unknown ${key}_encoding ${snippet(JSON.stringify(encoding) ?? '')}`);
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw bad(`${key} is not hex although ${key}_encoding is "hex"`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(text, 'hex'));
  } catch {
    throw bad(`hex ${key} is not UTF-8`);
  }
}

/** Printable, bounded excerpt of text from the node for error messages. */
function snippet(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, ' ').trim();
  return clean.length > 200 ? `${clean.slice(0, 197)}...` : clean;
}
