// The compiled view file, the only thing the module reads from the engine:
// its layout and limits are docs/view-format.md; addon/view.c is the reader.

// CRC-32 (IEEE) of the view body, as addon/view.c checks it: Node's zlib
// (zlib's own crc32, Node >= 20.15, unsigned) instead of a table loop in
// JavaScript, which took 11 ms of a build's profile (review).
import { crc32 } from 'node:zlib';
import { EngineError } from '../engine/errors.js';
import type { ViewObject } from '../pkcs11/objects.js';

export const VIEW_MAGIC = 'NCFVIEW\0';
/**
 * 3: objects may carry CKA.NCFENCE_AUDIENCE (two forms of R'), which the
 * module withholds by host (addon/host.c) and a format-2 reader would serve
 * to everyone: such a reader must refuse the view (closed), not misread it.
 */
export const VIEW_VERSION = 3;
/** What the module reads (addon/nf.h NF_VIEW_MAX_*; test/module/mirrors.test.ts checks the two agree). */
export const VIEW_LIMITS = { objects: 65536, attrsPerObject: 64, attrBytes: 1 << 20, stampBytes: 1 << 20 } as const;

/** A token recorded as its module answered (CK_INFO, CK_SLOT_INFO and CK_TOKEN_INFO as raw LP64 structures). */
export interface TokenSnapshot {
  info: Uint8Array;
  slot: number;
  slotInfo: Uint8Array;
  tokenInfo: Uint8Array;
  objects: ViewObject[];
}

/** sizeof(CK_INFO), sizeof(CK_SLOT_INFO), sizeof(CK_TOKEN_INFO) on LP64 (the only writer size the module reads). */
export const STRUCT_SIZES = { info: 88, slotInfo: 112, tokenInfo: 208 } as const;

export interface View {
  stamp: string;
  policyDigest: Uint8Array;
  objects: ViewObject[];
  snapshot?: TokenSnapshot;
}

/** Bytes an object list takes in the body: count, then per object slot, attribute count, and per attribute type, length, value. */
function objectsSize(list: readonly ViewObject[]): number {
  let n = 4;
  for (let i = 0; i < list.length; i++) {
    const attrs = list[i]!.attrs;
    n += 12 + 8 * attrs.length;
    for (let k = 0; k < attrs.length; k++) n += attrs[k]![1].length;
  }
  return n;
}

/**
 * Writes the view into one buffer sized in advance. Building it from small
 * Buffers (one per u32, then Buffer.concat) took a tenth of a whole build
 * process (node --cpu-prof, bench: the build process against the crypto floor).
 * The loops index rather than destructure: this code runs once per process,
 * mostly in V8's interpreter, where `for (const [t, v] of attrs)` walks an
 * iterator for every attribute.
 */
export function encodeView(view: View): Uint8Array {
  if (view.policyDigest.length !== 32) throw new EngineError('VIEW', 'policy digest must be 32 bytes');
  const stamp = new TextEncoder().encode(view.stamp);
  if (stamp.length > VIEW_LIMITS.stampBytes) throw new EngineError('VIEW', `a stamp of ${stamp.length} bytes exceeds the view limit`);
  const check = (list: readonly ViewObject[]): void => {
    if (list.length > VIEW_LIMITS.objects) throw new EngineError('VIEW', `${list.length} objects exceed the view limit`);
    for (const o of list) if (o.attrs.length > VIEW_LIMITS.attrsPerObject) throw new EngineError('VIEW', 'too many attributes on one object');
  };
  check(view.objects);
  const snap = view.snapshot;
  if (snap) {
    check(snap.objects);
    for (const [k, size] of Object.entries(STRUCT_SIZES)) {
      const got = snap[k as keyof typeof STRUCT_SIZES].length;
      if (got !== size) throw new EngineError('VIEW', `snapshot ${k} is ${got} bytes, expected ${size}`);
    }
  }
  const snapSize = snap ? 4 + (4 + snap.info.length) + 8 + (4 + snap.slotInfo.length) + (4 + snap.tokenInfo.length) + objectsSize(snap.objects) : 4;
  const bodySize = 4 + stamp.length + 32 + objectsSize(view.objects) + snapSize;
  const out = new Uint8Array(24 + bodySize);
  const dv = new DataView(out.buffer);
  let at = 24;
  const u32 = (n: number): void => {
    dv.setUint32(at, n, true);
    at += 4;
  };
  const u64 = (n: number): void => {
    // Two halves, without a BigInt per object; exact for the safe integers a slot id is.
    dv.setUint32(at, n % 2 ** 32, true);
    dv.setUint32(at + 4, Math.floor(n / 2 ** 32), true);
    at += 8;
  };
  const bytes = (b: Uint8Array): void => {
    out.set(b, at);
    at += b.length;
  };
  const objects = (list: readonly ViewObject[]): void => {
    u32(list.length);
    for (let i = 0; i < list.length; i++) {
      const o = list[i]!;
      u64(o.slot);
      const attrs = o.attrs;
      dv.setUint32(at, attrs.length, true);
      at += 4;
      for (let k = 0; k < attrs.length; k++) {
        const attr = attrs[k]!;
        const value = attr[1];
        dv.setUint32(at, attr[0], true);
        dv.setUint32(at + 4, value.length, true);
        out.set(value, at + 8);
        at += 8 + value.length;
      }
    }
  };
  u32(stamp.length);
  bytes(stamp);
  bytes(view.policyDigest);
  objects(view.objects);
  if (snap) {
    u32(1);
    u32(snap.info.length);
    bytes(snap.info);
    u64(snap.slot);
    u32(snap.slotInfo.length);
    bytes(snap.slotInfo);
    u32(snap.tokenInfo.length);
    bytes(snap.tokenInfo);
    objects(snap.objects);
  } else {
    u32(0);
  }
  if (at !== out.length) throw new EngineError('VIEW', `view encoder wrote ${at} of ${out.length} bytes`);
  out.set(new TextEncoder().encode(VIEW_MAGIC), 0);
  dv.setUint32(8, VIEW_VERSION, true);
  dv.setUint32(12, 8, true);
  dv.setUint32(16, bodySize, true);
  dv.setUint32(20, crc32(out.subarray(24)), true);
  return out;
}

/** Reads a view, checking every length; used by tests and `status`, never by the module. */
export function decodeView(bytes: Uint8Array): View {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new EngineError('VIEW', `compiled view: ${why}`);
  };
  if (b.length < 24 || b.toString('latin1', 0, 8) !== VIEW_MAGIC) fail('bad magic');
  if (b.readUInt32LE(8) !== VIEW_VERSION) fail(`format version ${b.readUInt32LE(8)}, expected ${VIEW_VERSION}`);
  const len = b.readUInt32LE(16);
  if (24 + len !== b.length) fail('length mismatch');
  const body = b.subarray(24);
  if (crc32(body) !== b.readUInt32LE(20)) fail('checksum mismatch');
  let off = 0;
  /** The offset of the next `n` bytes, which are then behind. */
  const take = (n: number): number => {
    if (off + n > body.length) fail('truncated');
    off += n;
    return off - n;
  };
  const u32 = (): number => body.readUInt32LE(take(4));
  const u64 = (): number => Number(body.readBigUInt64LE(take(8)));
  const bytesOf = (n: number): Uint8Array => {
    const at = take(n);
    return new Uint8Array(body.subarray(at, at + n));
  };
  const objectList = (): ViewObject[] => {
    const count = u32();
    const objects: ViewObject[] = [];
    for (let i = 0; i < count; i++) {
      const slot = u64();
      const n = u32();
      const attrs: [number, Uint8Array][] = [];
      for (let k = 0; k < n; k++) {
        const type = u32();
        attrs.push([type, bytesOf(u32())]);
      }
      objects.push({ slot, attrs });
    }
    return objects;
  };
  const stamp = Buffer.from(bytesOf(u32())).toString('utf8');
  const policyDigest = bytesOf(32);
  const objects = objectList();
  const present = u32();
  let snapshot: TokenSnapshot | undefined;
  if (present === 1) {
    const info = bytesOf(u32());
    const slot = u64();
    const slotInfo = bytesOf(u32());
    const tokenInfo = bytesOf(u32());
    snapshot = { info, slot, slotInfo, tokenInfo, objects: objectList() };
  } else if (present !== 0) {
    fail('bad snapshot section');
  }
  if (off !== body.length) fail('trailing bytes');
  return { stamp, policyDigest, objects, ...(snapshot ? { snapshot } : {}) };
}
