// The module <-> service wire format, version 1 (docs/service-protocol.md).
// Pure encode/decode over bytes: every bound in the document is enforced on
// both sides, so the service never sends what the module would refuse and
// never acts on a frame the module could not have sent (the module's bounds:
// addon/nf.h NF_WIRE_*; test/module/mirrors.test.ts checks the two agree). Decoding throws
// EngineError('UPSTREAM') for anything malformed; the server then closes the
// connection without an answer, as the document requires.

import { EngineError } from '../engine/errors.js';

/** `NCFS`, the first four bytes of every frame. */
export const FRAME_MAGIC = Uint8Array.of(0x4e, 0x43, 0x46, 0x53);
export const FRAME_HEADER_LENGTH = 8;
export const PROTOCOL_VERSION = 1;
/** The only request kind: the objects for a name. */
export const REQUEST_KIND_OBJECTS = 1;

export const MAX_REQUEST_BODY = 65536;
export const MAX_RESPONSE_BODY = 1048576;
export const MIN_NAME_LENGTH = 1;
export const MAX_NAME_LENGTH = 16384;
export const MAX_TTL_SECONDS = 3600;
export const MAX_OBJECTS = 16;
export const MAX_ATTRIBUTES = 32;
export const MAX_ATTRIBUTE_LENGTH = 65536;
const MAX_U32 = 0xffffffff;

/** Request body before the name: u16 version, u16 kind, u32 name length. */
export const REQUEST_FIXED_LENGTH = 8;

export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_REQUEST: 2,
  UNAVAILABLE: 3,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** One object: its attributes as [CKA type, value exactly as C_GetAttributeValue serves it]. */
export type ServiceObject = [type: number, value: Uint8Array][];
export interface Request {
  name: Uint8Array;
}
export interface Response {
  status: StatusCode;
  ttl: number;
  objects: ServiceObject[];
}

type FrameKind = 'request' | 'response';
const maxBodyFor = (kind: FrameKind): number => (kind === 'request' ? MAX_REQUEST_BODY : MAX_RESPONSE_BODY);

function malformed(what: string): EngineError {
  return new EngineError('UPSTREAM', `malformed service frame: ${what}`);
}

const isU32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= MAX_U32;

/**
 * Reads a frame header and returns the body length it announces, or undefined
 * while fewer than 8 bytes are available. Throws on a bad magic or a length over
 * the bound for this kind of frame, so a reader can give up before the body.
 */
export function readFrameHeader(bytes: Uint8Array, kind: FrameKind): number | undefined {
  const seen = Math.min(bytes.length, FRAME_MAGIC.length);
  for (let i = 0; i < seen; i++) if (bytes[i] !== FRAME_MAGIC[i]) throw malformed(`bad magic at byte ${i}`);
  if (bytes.length < FRAME_HEADER_LENGTH) return undefined;
  const length = view(bytes).getUint32(4, true);
  if (length > maxBodyFor(kind)) throw malformed(`${kind} body length ${length} exceeds ${maxBodyFor(kind)}`);
  return length;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Splits a complete frame into its body; the frame must be exactly header plus announced body. */
function frameBody(frame: Uint8Array, kind: FrameKind): Uint8Array {
  const length = readFrameHeader(frame, kind);
  if (length === undefined) throw malformed(`${kind} frame of ${frame.length} bytes is shorter than its header`);
  const actual = frame.length - FRAME_HEADER_LENGTH;
  if (actual !== length) throw malformed(`${kind} header announces ${length} body bytes, frame carries ${actual}`);
  return frame.subarray(FRAME_HEADER_LENGTH);
}

/** A bounds-checked little-endian reader over one body. */
class BodyReader {
  private offset = 0;
  private readonly dv: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly what: string) {
    this.dv = view(bytes);
  }

  /** Moves past the next `n` bytes, refusing a body that ends first: their offset. */
  private take(n: number, field: string): number {
    if (this.bytes.length - this.offset < n) throw malformed(`${this.what} truncated at ${field} (offset ${this.offset})`);
    this.offset += n;
    return this.offset - n;
  }

  u16(field: string): number {
    return this.dv.getUint16(this.take(2, field), true);
  }

  u32(field: string): number {
    return this.dv.getUint32(this.take(4, field), true);
  }

  /** A plain Uint8Array copy: never a view of the caller's (possibly pooled) buffer (Buffer#slice would be one). */
  bytesOf(n: number, field: string): Uint8Array {
    const at = this.take(n, field);
    return new Uint8Array(this.bytes.subarray(at, at + n));
  }

  end(): void {
    const left = this.bytes.length - this.offset;
    if (left !== 0) throw malformed(`${this.what} has ${left} trailing bytes`);
  }
}

/** A growable little-endian writer of one body, then its frame. */
class BodyWriter {
  private parts: Uint8Array[] = [];
  length = 0;

  private fixed(size: number, set: (dv: DataView) => void): void {
    const b = new Uint8Array(size);
    set(new DataView(b.buffer));
    this.push(b);
  }

  u16(v: number): void {
    this.fixed(2, (dv) => dv.setUint16(0, v, true));
  }

  u32(v: number): void {
    this.fixed(4, (dv) => dv.setUint32(0, v, true));
  }

  push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }

  /** The frame: its header, then the body written. */
  frame(): Uint8Array {
    const out = new Uint8Array(FRAME_HEADER_LENGTH + this.length);
    out.set(FRAME_MAGIC, 0);
    view(out).setUint32(4, this.length, true);
    let at = FRAME_HEADER_LENGTH;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function checkVersion(version: number, what: string): void {
  if (version !== PROTOCOL_VERSION) throw malformed(`${what} version ${version}, expected ${PROTOCOL_VERSION}`);
}

function checkNameLength(length: number): void {
  if (length < MIN_NAME_LENGTH || length > MAX_NAME_LENGTH) {
    throw malformed(`name length ${length} outside ${MIN_NAME_LENGTH}..${MAX_NAME_LENGTH}`);
  }
}

// ---- requests ----

export function encodeRequest(req: Request): Uint8Array {
  checkNameLength(req.name.length);
  const w = new BodyWriter();
  w.u16(PROTOCOL_VERSION);
  w.u16(REQUEST_KIND_OBJECTS);
  w.u32(req.name.length);
  w.push(req.name);
  return w.frame();
}

/** Decodes one complete request frame (header included). */
export function decodeRequest(frame: Uint8Array): Request {
  const r = new BodyReader(frameBody(frame, 'request'), 'request');
  checkVersion(r.u16('version'), 'request');
  const kind = r.u16('kind');
  if (kind !== REQUEST_KIND_OBJECTS) throw malformed(`request kind ${kind}, expected ${REQUEST_KIND_OBJECTS}`);
  const length = r.u32('name length');
  checkNameLength(length);
  const name = r.bytesOf(length, 'name');
  r.end();
  return { name };
}

// ---- responses ----

function checkResponseHead(status: number, ttl: number, objectCount: number): void {
  if (!(Object.values(Status) as number[]).includes(status)) throw malformed(`response status ${status} is not 0..3`);
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL_SECONDS) throw malformed(`response ttl ${ttl} outside 0..${MAX_TTL_SECONDS}`);
  if (objectCount > MAX_OBJECTS) throw malformed(`response carries ${objectCount} objects, at most ${MAX_OBJECTS}`);
}

function checkAttributeCount(count: number, index: number): void {
  if (count > MAX_ATTRIBUTES) throw malformed(`object ${index} has ${count} attributes, at most ${MAX_ATTRIBUTES}`);
}

function checkAttribute(type: number, length: number, where: string): void {
  if (!isU32(type)) throw malformed(`${where} type ${type} is not a u32`);
  if (length > MAX_ATTRIBUTE_LENGTH) throw malformed(`${where} (type 0x${type.toString(16)}) is ${length} bytes, at most ${MAX_ATTRIBUTE_LENGTH}`);
}

export function encodeResponse(res: Response): Uint8Array {
  checkResponseHead(res.status, res.ttl, res.objects.length);
  const w = new BodyWriter();
  w.u16(PROTOCOL_VERSION);
  w.u16(res.status);
  w.u32(res.ttl);
  w.u32(res.objects.length);
  res.objects.forEach((object, i) => {
    checkAttributeCount(object.length, i);
    w.u32(object.length);
    object.forEach(([type, value], j) => {
      checkAttribute(type, value.length, `object ${i} attribute ${j}`);
      w.u32(type);
      w.u32(value.length);
      w.push(value);
    });
    // Checked as we go so a huge answer is refused before it is all copied.
    if (w.length > MAX_RESPONSE_BODY) throw malformed(`response body exceeds ${MAX_RESPONSE_BODY} bytes at object ${i}`);
  });
  return w.frame();
}

/** Decodes one complete response frame (header included). */
export function decodeResponse(frame: Uint8Array): Response {
  const r = new BodyReader(frameBody(frame, 'response'), 'response');
  checkVersion(r.u16('version'), 'response');
  const status = r.u16('status');
  const ttl = r.u32('ttl');
  const count = r.u32('object count');
  checkResponseHead(status, ttl, count);
  const objects: ServiceObject[] = [];
  for (let i = 0; i < count; i++) objects.push(readObject(r, i));
  r.end();
  return { status: status as StatusCode, ttl, objects };
}

function readObject(r: BodyReader, index: number): ServiceObject {
  const count = r.u32(`object ${index} attribute count`);
  checkAttributeCount(count, index);
  const object: ServiceObject = [];
  for (let j = 0; j < count; j++) {
    const where = `object ${index} attribute ${j}`;
    const type = r.u32(`${where} type`);
    const length = r.u32(`${where} length`);
    checkAttribute(type, length, where);
    object.push([type, r.bytesOf(length, `${where} value`)]);
  }
  return object;
}
