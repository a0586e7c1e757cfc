// Reads every object of the upstream trust module through pkcs11js.

import pkcs11js from 'pkcs11js';
import { EngineError } from '../engine/errors.js';
import { CANDIDATE_ATTRS, CKA } from '../pkcs11/constants.js';

export interface UpstreamObject {
  slot: number;
  /** Attribute type -> raw value bytes exactly as upstream returned them. */
  attrs: Map<number, Uint8Array>;
}

export interface UpstreamSnapshot {
  library: string;
  params: string;
  slots: { id: number; label: string }[];
  objects: UpstreamObject[];
}

// CK_ULONG and CK_BBOOL values are native-endian; this machine (and the view
// header) is little-endian LP64.
export function ulongValue(b: Uint8Array | undefined): number | undefined {
  if (!b || b.length !== 8) return undefined;
  // Exact for values below 2^53, which every PKCS#11 constant is.
  return b[0]! + b[1]! * 2 ** 8 + b[2]! * 2 ** 16 + b[3]! * 2 ** 24 + b[4]! * 2 ** 32 + b[5]! * 2 ** 40 + b[6]! * 2 ** 48 + b[7]! * 2 ** 56;
}

export function boolValue(b: Uint8Array | undefined): boolean | undefined {
  if (!b || b.length !== 1) return undefined;
  return b[0] !== 0;
}

export function ulongBytes(n: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return new Uint8Array(b);
}

export const boolBytes = (v: boolean): Uint8Array => Uint8Array.of(v ? 1 : 0);

function slotId(handle: Buffer): number {
  return Number(handle.readBigUInt64LE(0));
}

function readAttr(p: pkcs11js.PKCS11, session: Buffer, obj: Buffer, type: number): Uint8Array | undefined {
  try {
    const [a] = p.C_GetAttributeValue(session, obj, [{ type }]);
    const v = a?.value;
    return v ? new Uint8Array(v) : undefined;
  } catch (e) {
    // CKR_ATTRIBUTE_TYPE_INVALID / SENSITIVE: the object has no such attribute for us.
    if (e instanceof pkcs11js.Pkcs11Error) return undefined;
    throw e;
  }
}

function readEach(p: pkcs11js.PKCS11, session: Buffer, obj: Buffer): Map<number, Uint8Array> {
  const attrs = new Map<number, Uint8Array>();
  for (const type of CANDIDATE_ATTRS) {
    const v = readAttr(p, session, obj, type);
    if (v !== undefined) attrs.set(type, v);
  }
  return attrs;
}

function readBatch(p: pkcs11js.PKCS11, session: Buffer, obj: Buffer, types: number[]): Map<number, Uint8Array> | undefined {
  try {
    const got = p.C_GetAttributeValue(session, obj, types.map((type) => ({ type })));
    return new Map(got.map((a) => [a.type, new Uint8Array(a.value ?? Buffer.alloc(0))]));
  } catch (e) {
    if (e instanceof pkcs11js.Pkcs11Error) return undefined;
    throw e;
  }
}

function readSlot(p: pkcs11js.PKCS11, slot: Buffer): UpstreamObject[] {
  const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  try {
    p.C_FindObjectsInit(session, []);
    const handles: Buffer[] = [];
    for (;;) {
      const page = p.C_FindObjects(session, 64);
      if (page.length === 0) break;
      handles.push(...page);
    }
    p.C_FindObjectsFinal(session);
    // Objects of one class in one module share their attribute set, so after
    // the first object of a class one batched read usually answers; any
    // failure falls back to probing each candidate attribute on its own.
    const known = new Map<number, number[]>();
    return handles.map((h) => {
      const cls = readAttr(p, session, h, CKA.CLASS);
      const key = cls ? Number(Buffer.from(cls).readBigUInt64LE(0)) : -1;
      const batch = known.get(key);
      const attrs = (batch && readBatch(p, session, h, batch)) ?? readEach(p, session, h);
      if (!batch) known.set(key, [...attrs.keys()]);
      return { slot: slotId(slot), attrs };
    });
  } finally {
    p.C_CloseSession(session);
  }
}

/**
 * Loads `library`, passing `params` as C_Initialize's pReserved (NSS style),
 * and returns every token object with every attribute ncfence knows about.
 */
export function readUpstream(library: string, params: string): UpstreamSnapshot {
  const p = new pkcs11js.PKCS11();
  try {
    p.load(library);
  } catch (cause) {
    throw new EngineError('UPSTREAM', `cannot load upstream module ${library}: ${(cause as Error).message}`, { cause });
  }
  try {
    // WORKAROUND(pkcs11js 2.1): the library-parameters copy drops the last
    // byte, so add a NUL for it to drop.
    const opts = params ? { flags: pkcs11js.CKF_OS_LOCKING_OK, libraryParameters: `${params}\0` } : { flags: pkcs11js.CKF_OS_LOCKING_OK };
    p.C_Initialize(opts);
  } catch (cause) {
    p.close();
    throw new EngineError('UPSTREAM', `upstream module ${library} failed C_Initialize: ${(cause as Error).message}`, { cause });
  }
  try {
    const slots = p.C_GetSlotList(true);
    const objects: UpstreamObject[] = [];
    const slotInfo: UpstreamSnapshot['slots'] = [];
    for (const s of slots) {
      slotInfo.push({ id: slotId(s), label: p.C_GetTokenInfo(s).label.trim() });
      objects.push(...readSlot(p, s));
    }
    for (const o of objects) {
      if (!o.attrs.has(CKA.CLASS)) throw new EngineError('UPSTREAM', `an object in slot ${o.slot} has no CKA_CLASS`);
    }
    return { library, params, slots: slotInfo, objects };
  } catch (cause) {
    if (cause instanceof EngineError) throw cause;
    throw new EngineError('UPSTREAM', `reading upstream module ${library} failed: ${(cause as Error).message}`, { cause });
  } finally {
    p.C_Finalize();
    p.close();
  }
}
