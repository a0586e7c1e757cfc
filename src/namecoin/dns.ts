// The ncdns anchor source: asks an authoritative DNS server for `bit.` (ncdns,
// often 127.0.0.1:5391) for the TLSA records ncdns publishes at `*.<name>.bit`.
// One question, over TCP (RFC 1035 section 4.2.2), no dependencies. The reply is
// trusted only if it answers our exact question and the server either is
// authoritative for it (AA) or has validated it (AD); anything else is refused.
// Every byte of the reply is treated as hostile: all reads are bounds-checked.

import { randomInt } from 'node:crypto';
import { BlockList, connect, isIP } from 'node:net';
import { EngineError } from '../engine/errors.js';
import { bitName } from './names.js';
import { checkReachable } from './reach.js';
import { withDeadline } from '../service/client.js';

import type { TlsAnswer, TlsRecord } from './records.js';

export interface DnsServerOptions {
  /** An IP address literal; a host name would need the very resolver we are bypassing. */
  server: string;
  port: number;
  /** Covers connect, send and receive together. */
  timeoutMs: number;
}

const TYPE_SOA = 6;
const TYPE_TLSA = 52;
const CLASS_IN = 1;

const FLAG_QR = 0x8000;
const MASK_OPCODE = 0x7800;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_AD = 0x0020;
const MASK_RCODE = 0x000f;
const RCODE_NOERROR = 0;
const RCODE_NXDOMAIN = 3;
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

const HEADER_LENGTH = 12;
/** RFC 1035 section 2.3.4: a name is at most 255 octets on the wire, a label at most 63. */
const MAX_NAME_WIRE = 255;
/** Used when a negative answer carries no SOA to take the negative TTL from. */
const DEFAULT_NEGATIVE_TTL = 60;
/** The largest value setTimeout honours; larger ones fire at once. */
const MAX_TIMEOUT_MS = 0x7fffffff;

/** A name as its labels, in order, without the root label. */
type Labels = readonly Uint8Array[];

interface ResourceRecord {
  owner: Labels;
  type: number;
  klass: number;
  ttl: number;
  rdata: number; // offset of RDATA in the message
  rdlength: number;
}

/**
 * Looks up the TLSA records ncdns serves at `*.<domain>` (literally: ncdns
 * answers for the wildcard name itself). Resolves with an empty list when the
 * name or the records do not exist; rejects with EngineError 'USAGE' for a bad
 * domain (names.ts) or options and 'SOURCE' for any network or protocol failure.
 */
export async function lookupTlsa(domain: string, opts: DnsServerOptions): Promise<TlsAnswer> {
  const qname = ['*', ...bitName(domain).labels].map((l) => new TextEncoder().encode(l));
  checkServerOptions(opts);
  const id = randomInt(0x10000);
  const context = `TLSA *.${domain} from ${formatServer(opts)}`;
  const reply = await exchangeTcp(encodeQuery(id, qname), opts, context);
  return parseTlsaReply(reply, id, qname, context);
}

// ---------------------------------------------------------------- arguments

/**
 * Loopback only: 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6. The
 * answers are unauthenticated (plain DNS over TCP), so a server anywhere
 * else lets whoever sits on the path choose which key vouches for a .bit
 * name; ncdns runs beside the browser (as the RPC source must).
 */
export function isLoopbackAddress(ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && LOOPBACK.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

const LOOPBACK = (() => {
  const b = new BlockList();
  b.addSubnet('127.0.0.0', 8, 'ipv4'); // also matches 127/8 mapped into IPv6 (::ffff:127.x.y.z)
  b.addAddress('::1', 'ipv6');
  return b;
})();

/** The server's address, port and timeout, checked before any connection (`serve` refuses a wrong --dns at once). */
export function checkServerOptions(opts: DnsServerOptions): void {
  if (typeof opts?.server !== 'string' || isIP(opts.server) === 0) {
    throw new EngineError('USAGE', `DNS server ${JSON.stringify(opts?.server)} is not an IP address`);
  }
  if (!isLoopbackAddress(opts.server)) {
    throw new EngineError('USAGE', `DNS server ${opts.server} is not a loopback address: its unauthenticated answers would decide which key vouches for a .bit name; run ncdns on this machine (127.0.0.1 or ::1)`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 0xffff) {
    throw new EngineError('USAGE', `DNS port ${String(opts.port)} is not in 1..65535`);
  }
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0 || opts.timeoutMs > MAX_TIMEOUT_MS) {
    throw new EngineError('USAGE', `DNS timeout ${String(opts.timeoutMs)} ms is not in 1..${MAX_TIMEOUT_MS}`);
  }
}

function formatServer(opts: DnsServerOptions): string {
  return isIP(opts.server) === 6 ? `[${opts.server}]:${opts.port}` : `${opts.server}:${opts.port}`;
}

function wireLength(labels: Labels): number {
  return labels.reduce((n, l) => n + 1 + l.length, 1);
}

// ---------------------------------------------------------------- transport

/** Whether an ncdns-compatible server can be asked: a loopback address that accepts a TCP connection within the timeout. */
export function checkDnsServer(opts: DnsServerOptions): Promise<void> {
  checkServerOptions(opts);
  return checkReachable(opts.server, opts.port, opts.timeoutMs, `DNS server ${formatServer(opts)}`);
}

/** One length-prefixed query (encodeQuery's) and reply (RFC 1035 section 4.2.2); the socket never outlives the call. */
function exchangeTcp(query: Uint8Array, opts: DnsServerOptions, context: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let received = 0;
  let expected = -1; // prefix + message, once the prefix is in
  const socket = connect({ host: opts.server, port: opts.port });
  const fail = (what: string, cause?: unknown): EngineError => new EngineError('SOURCE', `${context}: ${what}`, { cause });
  const late = (): EngineError => fail(`no complete reply within ${opts.timeoutMs} ms (${received} bytes received)`);
  return withDeadline(socket, opts.timeoutMs, late, (done) => {
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(query));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (expected < 0 && received >= 2) {
        expected = 2 + Buffer.concat(chunks).readUInt16BE(0);
        if (expected - 2 < HEADER_LENGTH) return done(fail(`reply length ${expected - 2} is shorter than a DNS header`));
      }
      // A well-behaved server sends nothing past the one reply; anything extra is ignored unread.
      if (expected >= 0 && received >= expected) done(new Uint8Array(Buffer.concat(chunks).subarray(2, expected)));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => done(fail(`${e.code ?? 'socket error'}: ${e.message}`, e)));
    socket.on('close', () => {
      const want = expected < 0 ? 'a 2-byte length prefix' : `${expected} bytes`;
      done(fail(`connection closed after ${received} bytes, before ${want}`));
    });
  });
}

/** The query, after the 2-byte length prefix that frames it over TCP (RFC 1035 section 4.2.2). */
function encodeQuery(id: number, qname: Labels): Buffer {
  const msg = Buffer.alloc(2 + HEADER_LENGTH + wireLength(qname) + 4);
  msg.writeUInt16BE(msg.length - 2, 0);
  msg.writeUInt16BE(id, 2);
  msg.writeUInt16BE(0, 4); // QR=0, OPCODE=QUERY, RD=0: we want the server's own data, not recursion
  msg.writeUInt16BE(1, 6); // QDCOUNT
  let pos = 2 + HEADER_LENGTH;
  for (const label of qname) {
    msg[pos++] = label.length;
    msg.set(label, pos);
    pos += label.length;
  }
  msg[pos++] = 0;
  msg.writeUInt16BE(TYPE_TLSA, pos);
  msg.writeUInt16BE(CLASS_IN, pos + 2);
  return msg;
}

// ---------------------------------------------------------------- parsing

/** Bounds-checked reads over one message; every failure is a SOURCE EngineError naming the offset. */
class Reader {
  constructor(
    readonly msg: Uint8Array,
    readonly context: string,
  ) {}

  fail(what: string): EngineError {
    return new EngineError('SOURCE', `${this.context}: malformed reply (${this.msg.length} bytes): ${what}`);
  }

  need(pos: number, n: number, what: string): void {
    if (pos < 0 || pos + n > this.msg.length) throw this.fail(`${what} at offset ${pos} needs ${n} bytes`);
  }

  u8(pos: number, what: string): number {
    this.need(pos, 1, what);
    return this.msg[pos]!;
  }

  u16(pos: number, what: string): number {
    this.need(pos, 2, what);
    return (this.msg[pos]! << 8) | this.msg[pos + 1]!;
  }

  u32(pos: number, what: string): number {
    return this.u16(pos, what) * 0x10000 + this.u16(pos + 2, what);
  }

  /**
   * Reads a possibly compressed name (RFC 1035 section 4.1.4). Each pointer must
   * go strictly below every offset this name has visited so far, so pointer
   * chains can only descend and loops are impossible; the 255-octet limit
   * bounds the labels collected.
   */
  name(start: number): { labels: Uint8Array[]; next: number } {
    const labels: Uint8Array[] = [];
    let pos = start;
    let lowest = start;
    let next = -1;
    let wire = 1;
    for (;;) {
      const len = this.u8(pos, 'name');
      if (len === 0) return { labels, next: next < 0 ? pos + 1 : next };
      if ((len & 0xc0) === 0xc0) {
        const target = this.u16(pos, 'compression pointer') & 0x3fff;
        if (target >= lowest) throw this.fail(`compression pointer at offset ${pos} to ${target} does not point backwards`);
        if (next < 0) next = pos + 2;
        pos = lowest = target;
        continue;
      }
      if ((len & 0xc0) !== 0) throw this.fail(`label type 0x${(len & 0xc0).toString(16)} at offset ${pos} is not supported`);
      this.need(pos + 1, len, 'label');
      wire += 1 + len;
      if (wire > MAX_NAME_WIRE) throw this.fail(`name at offset ${start} is longer than ${MAX_NAME_WIRE} octets`);
      labels.push(this.msg.subarray(pos + 1, pos + 1 + len));
      pos += 1 + len;
    }
  }

  record(pos: number): { rr: ResourceRecord; next: number } {
    const { labels: owner, next } = this.name(pos);
    const type = this.u16(next, 'record type');
    const klass = this.u16(next + 2, 'record class');
    const rawTtl = this.u32(next + 4, 'record TTL');
    const rdlength = this.u16(next + 8, 'record length');
    const rdata = next + 10;
    this.need(rdata, rdlength, 'RDATA');
    // RFC 2181 section 8: a TTL with the top bit set is treated as zero.
    const ttl = rawTtl >= 0x80000000 ? 0 : rawTtl;
    return { rr: { owner, type, klass, ttl, rdata, rdlength }, next: rdata + rdlength };
  }
}

function parseTlsaReply(msg: Uint8Array, id: number, qname: Labels, context: string): TlsAnswer {
  const r = new Reader(msg, context);
  const flags = checkHeader(r, id);
  const pos = checkQuestion(r, qname);
  const rcode = flags & MASK_RCODE;
  if (rcode !== RCODE_NOERROR && rcode !== RCODE_NXDOMAIN) {
    throw new EngineError('SOURCE', `${context}: server answered ${RCODE_NAMES[rcode] ?? `rcode ${rcode}`}`);
  }
  if ((flags & (FLAG_AA | FLAG_AD)) === 0) {
    throw new EngineError('SOURCE', `${context}: answer is neither authoritative (AA) nor validated (AD); refusing it`);
  }
  const answers = readSection(r, pos, r.u16(6, 'ANCOUNT'));
  const authority = readSection(r, answers.next, r.u16(8, 'NSCOUNT'));
  // The additional section carries nothing we use (glue, OPT) and is not read.

  const tlsa = answers.records.filter((rr) => rr.type === TYPE_TLSA && rr.klass === CLASS_IN && sameName(rr.owner, qname));
  if (tlsa.length > 0) {
    if (rcode === RCODE_NXDOMAIN) throw r.fail('NXDOMAIN together with TLSA records for the name');
    return { records: tlsa.map((rr) => tlsaRecord(r, rr)), ttl: Math.min(...tlsa.map((rr) => rr.ttl)) };
  }
  return { records: [], ttl: negativeTtl(r, authority.records, qname) };
}

function readSection(r: Reader, start: number, count: number): { records: ResourceRecord[]; next: number } {
  const records: ResourceRecord[] = [];
  let pos = start;
  for (let i = 0; i < count; i++) {
    const { rr, next } = r.record(pos);
    records.push(rr);
    pos = next;
  }
  return { records, next: pos };
}

/** The header's id and flags, checked; the flags. */
function checkHeader(r: Reader, id: number): number {
  r.need(0, HEADER_LENGTH, 'header');
  const got = r.u16(0, 'id');
  if (got !== id) throw new EngineError('SOURCE', `${r.context}: reply id 0x${hex4(got)} does not match query id 0x${hex4(id)}`);
  const flags = r.u16(2, 'flags');
  if ((flags & FLAG_QR) === 0) throw r.fail('QR is clear: the message is a query, not a reply');
  if ((flags & MASK_OPCODE) !== 0) throw r.fail(`opcode ${(flags & MASK_OPCODE) >> 11} is not QUERY`);
  // Over TCP nothing needs truncating; a TC reply is incomplete by its own account.
  if ((flags & FLAG_TC) !== 0) throw r.fail('TC is set on a TCP reply');
  return flags;
}

function checkQuestion(r: Reader, qname: Labels): number {
  const qdcount = r.u16(4, 'QDCOUNT');
  if (qdcount !== 1) throw new EngineError('SOURCE', `${r.context}: reply has ${qdcount} questions, expected 1`);
  const { labels, next } = r.name(HEADER_LENGTH);
  const qtype = r.u16(next, 'QTYPE');
  const qclass = r.u16(next + 2, 'QCLASS');
  if (!sameName(labels, qname) || qtype !== TYPE_TLSA || qclass !== CLASS_IN) {
    throw new EngineError('SOURCE', `${r.context}: reply is for ${formatName(labels)} type ${qtype} class ${qclass}, not the question asked`);
  }
  return next + 4;
}

/** RFC 6698 section 2.1: three one-octet fields, then the association data. */
function tlsaRecord(r: Reader, rr: ResourceRecord): TlsRecord {
  if (rr.rdlength < 3) throw r.fail(`TLSA RDATA at offset ${rr.rdata} has ${rr.rdlength} bytes, fewer than 3`);
  return {
    usage: r.msg[rr.rdata]!,
    selector: r.msg[rr.rdata + 1]!,
    matchingType: r.msg[rr.rdata + 2]!,
    data: r.msg.slice(rr.rdata + 3, rr.rdata + rr.rdlength),
  };
}

/**
 * The negative-caching TTL from the zone's SOA in the authority section: per
 * RFC 2308 section 5 the lesser of the SOA record's own TTL and its MINIMUM
 * field (servers such as Knot already send the SOA with that TTL).
 */
function negativeTtl(r: Reader, authority: readonly ResourceRecord[], qname: Labels): number {
  for (const rr of authority) {
    if (rr.type !== TYPE_SOA || rr.klass !== CLASS_IN || !isSuffix(rr.owner, qname)) continue;
    const end = rr.rdata + rr.rdlength;
    const mname = r.name(rr.rdata);
    const rname = r.name(mname.next);
    if (mname.next > end || rname.next + 20 !== end) throw r.fail(`SOA RDATA at offset ${rr.rdata} does not have the SOA layout`);
    return Math.min(rr.ttl, r.u32(rname.next + 16, 'SOA MINIMUM'));
  }
  return DEFAULT_NEGATIVE_TTL;
}

// ---------------------------------------------------------------- names

/** DNS names compare ASCII case-insensitively, octet by octet (RFC 4343 section 3). */
function sameLabel(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (asciiLower(a[i]!) !== asciiLower(b[i]!)) return false;
  return true;
}

function asciiLower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

function sameName(a: Labels, b: Labels): boolean {
  return a.length === b.length && a.every((label, i) => sameLabel(label, b[i]!));
}

/** True when `zone` is `name` or one of its ancestors, compared on label boundaries. */
function isSuffix(zone: Labels, name: Labels): boolean {
  const skip = name.length - zone.length;
  return skip >= 0 && zone.every((label, i) => sameLabel(label, name[skip + i]!));
}

function formatName(labels: Labels): string {
  const text = labels.map((l) => Array.from(l, (c) => (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c ? String.fromCharCode(c) : `\\${String(c).padStart(3, '0')}`)).join(''));
  return `${text.join('.')}.`;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}
