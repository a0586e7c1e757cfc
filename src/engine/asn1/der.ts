// Minimal DER reader and writer. The engine keeps every field it does not
// change as the exact bytes it was given, so it only needs to split TLVs and
// to wrap new content; it never re-encodes a value it parsed.

import { EngineError } from '../errors.js';

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag number n, constructed or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

/** One TLV inside a larger buffer. `der` is the whole TLV, `body` its content. */
export interface Tlv {
  tag: number;
  der: Uint8Array;
  body: Uint8Array;
}

const MAX_DEPTH_BYTES = 1 << 24; // no certificate field is anywhere near 16 MiB

/**
 * A Tlv whose `der` and `body` views are made when first asked for: most
 * parses use one of the two, and views were a sixth of what a build
 * allocates (issue 21, a sampling heap profile of one build).
 */
class TlvAt implements Tlv {
  private derView: Uint8Array | undefined;
  private bodyView: Uint8Array | undefined;

  constructor(
    readonly tag: number,
    private readonly buf: Uint8Array,
    private readonly start: number,
    private readonly bodyStart: number,
    /** Offset in `buf` just past this TLV. */
    readonly end: number,
  ) {}

  get der(): Uint8Array {
    return (this.derView ??= this.buf.subarray(this.start, this.end));
  }

  get body(): Uint8Array {
    return (this.bodyView ??= this.buf.subarray(this.bodyStart, this.end));
  }

  /** The content as an OID's dotted form (see tlvOid). */
  oid(): string {
    return oidAt(this.buf, this.bodyStart, this.end);
  }
}

/** Reads the TLV that starts at `offset`; rejects indefinite and non-minimal lengths. */
export function readTlv(buf: Uint8Array, offset = 0): Tlv {
  return readTlvAt(buf, offset);
}

function readTlvAt(buf: Uint8Array, offset: number): TlvAt {
  if (offset + 2 > buf.length) throw new EngineError('BAD_DER', `truncated TLV header at offset ${offset}`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new EngineError('BAD_DER', `multi-byte tag 0x${tag.toString(16)} at offset ${offset}`);
  let len = buf[offset + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new EngineError('BAD_DER', `indefinite length at offset ${offset}`);
    if (n > 3) throw new EngineError('BAD_DER', `length of ${n} bytes at offset ${offset}`);
    if (offset + 2 + n > buf.length) throw new EngineError('BAD_DER', `truncated length at offset ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    if (len < 0x80 || (n > 1 && buf[offset + 2] === 0)) {
      throw new EngineError('BAD_DER', `non-minimal length at offset ${offset}`);
    }
    hdr += n;
  }
  if (len > MAX_DEPTH_BYTES || offset + hdr + len > buf.length) {
    throw new EngineError('BAD_DER', `length ${len} at offset ${offset} overruns ${buf.length} bytes`);
  }
  return new TlvAt(tag, buf, offset, offset + hdr, offset + hdr + len);
}

/** Splits a constructed value's content into its child TLVs. */
export function readChildren(body: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let off = 0;
  while (off < body.length) {
    const t = readTlvAt(body, off);
    out.push(t);
    off = t.end;
  }
  return out;
}

/** Reads a single TLV that must fill `buf` exactly and carry `tag`. */
export function readExact(buf: Uint8Array, tag: number, what: string): Tlv {
  const t = readTlvAt(buf, 0);
  if (t.end !== buf.length) throw new EngineError('BAD_DER', `${what}: ${buf.length - t.end} trailing bytes`);
  if (t.tag !== tag) throw new EngineError('BAD_DER', `${what}: tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return t;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined) throw new EngineError('BAD_DER', `${what}: missing`);
  if (t.tag !== tag) throw new EngineError('BAD_DER', `${what}: tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return t;
}

function lengthBytes(len: number): number {
  return len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : len < 0x1000000 ? 4 : 5;
}

function writeLength(out: Uint8Array, at: number, len: number): number {
  const n = lengthBytes(len);
  if (n === 1) {
    out[at] = len;
    return at + 1;
  }
  out[at] = 0x80 | (n - 1);
  for (let i = n - 1; i >= 1; i--, len = Math.floor(len / 256)) out[at + i] = len & 0xff;
  return at + n;
}

// The writers below index their arrays instead of using for...of: a build
// runs them a few thousand times in a fresh process, mostly in V8's
// interpreter, where for...of walks an iterator object (issue 21).

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (let i = 0; i < parts.length; i++) n += parts[i]!.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (let i = 0; i < parts.length; i++) {
    out.set(parts[i]!, off);
    off += parts[i]!.length;
  }
  return out;
}

/** Wraps content bytes in a TLV with the given tag (one allocation). */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  let body = 0;
  for (let i = 0; i < content.length; i++) body += content[i]!.length;
  const out = new Uint8Array(1 + lengthBytes(body) + body);
  out[0] = tag;
  let off = writeLength(out, 1, body);
  for (let i = 0; i < content.length; i++) {
    out.set(content[i]!, off);
    off += content[i]!.length;
  }
  return out;
}

export const seq = (...c: Uint8Array[]): Uint8Array => tlv(Tag.SEQUENCE, ...c);
export const set = (...c: Uint8Array[]): Uint8Array => tlv(Tag.SET, ...c);

const oidCache = new Map<string, Uint8Array>();

/**
 * OBJECT IDENTIFIER from dotted form. Encodings are memoised (a pure cache:
 * the engine asks for the same dozen OIDs for every root). Callers must not
 * mutate the result.
 */
export function oid(dotted: string): Uint8Array {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map((s) => Number(s));
  const bytes: number[] = [];
  const first = arcs[0]! * 40 + arcs[1]!;
  for (const arc of [first, ...arcs.slice(2)]) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  const out = tlv(Tag.OID, Uint8Array.from(bytes));
  oidCache.set(dotted, out);
  return out;
}

const dottedCache = new Map<number, string>();

/**
 * Dotted form of an OID TLV's content. Three-byte ones (most extension and
 * name attribute types: 2.5.29.x, 2.5.4.x) are memoised by their bytes, a
 * pure cache: a build parses a few thousand of them. Bounded, as DER from a
 * TLS peer comes through here too.
 */
export function oidToString(body: Uint8Array): string {
  return oidAt(body, 0, body.length);
}

/** oidToString of a TLV's content, read in place (no view made for it): what name and extension parsing compare. */
export function tlvOid(t: Tlv): string {
  return t instanceof TlvAt ? t.oid() : oidToString(t.body);
}

function oidAt(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n > 3) return dotted(buf.subarray(start, end));
  // A small integer key (no heap number): length, then up to three bytes.
  let key = n;
  for (let i = start; i < end; i++) key = (key << 8) | buf[i]!;
  let s = dottedCache.get(key);
  if (s === undefined) {
    s = dotted(buf.subarray(start, end));
    if (dottedCache.size < 1024) dottedCache.set(key, s);
  }
  return s;
}

function dotted(body: Uint8Array): string {
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < body.length; i++) {
    v = v * 128 + (body[i]! & 0x7f);
    if (!(body[i]! & 0x80)) {
      if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}

/** Positive INTEGER from unsigned big-endian bytes (adds a 0x00 pad when needed). */
export function uintFromBytes(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  const pad = trimmed[0]! & 0x80 ? Uint8Array.of(0) : new Uint8Array(0);
  return tlv(Tag.INTEGER, pad, trimmed);
}

export function smallInt(n: number): Uint8Array {
  return uintFromBytes(Uint8Array.of(n));
}

export const boolTrue = (): Uint8Array => tlv(Tag.BOOLEAN, Uint8Array.of(0xff));
export const octetString = (b: Uint8Array): Uint8Array => tlv(Tag.OCTET_STRING, b);
export const bitString = (b: Uint8Array, unused = 0): Uint8Array => tlv(Tag.BIT_STRING, Uint8Array.of(unused), b);
const encoder = new TextEncoder();
export const utf8 = (s: string): Uint8Array => tlv(Tag.UTF8_STRING, encoder.encode(s));

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
