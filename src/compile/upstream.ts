// Reads every object of the upstream trust module through pkcs11js.

import { statSync } from 'node:fs';
import { basename } from 'node:path';
import pkcs11js from 'pkcs11js';
import { EngineError } from '../engine/errors.js';
import { describePathError } from '../systemError.js';
import { CANDIDATE_ATTRS, CKA, CKO } from '../pkcs11/constants.js';

const CERT_POLICY_ATTRS: readonly number[] = [CKA.NSS_MOZILLA_CA_POLICY, CKA.NSS_SERVER_DISTRUST_AFTER, CKA.NSS_EMAIL_DISTRUST_AFTER, CKA.CERTIFICATE_CATEGORY];

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
      const batched = batch && readBatch(p, session, h, batch);
      const attrs = batched ?? readEach(p, session, h);
      if (!batch) known.set(key, [...attrs.keys()]);
      // A batch holds the first object's attributes. A later certificate may
      // carry the NSS policy attributes the first lacked (DigiNotar's record
      // has none, p11-kit's certificates have none); they decide the
      // anchor's distrust-after dates, so they are asked one by one when the
      // batch does not have them (review). Costs nothing when it does.
      if (batched && key === CKO.CERTIFICATE) {
        for (const type of CERT_POLICY_ATTRS) {
          if (batch.includes(type)) continue;
          const v = readAttr(p, session, h, type);
          if (v !== undefined) attrs.set(type, v);
        }
      }
      return { slot: slotId(slot), attrs };
    });
  } finally {
    p.C_CloseSession(session);
  }
}

/** What upstream says about itself, learnt before any object is read. */
export interface UpstreamProbe {
  manufacturer: string;
  description: string;
  /** Each slot's description, as upstream padded it to 64 bytes (p11-kit-trust puts its trust path there). */
  slotDescriptions: string[];
}

/** p11-kit's trust module (p11-kit trust/module.c: MANUFACTURER_ID, LIBRARY_DESCRIPTION). */
export function isP11KitTrust(probe: UpstreamProbe): boolean {
  return probe.manufacturer === 'PKCS#11 Kit' && probe.description === 'PKCS#11 Kit Trust Module';
}

const SLOT_DESCRIPTION_BYTES = 64;

/**
 * The trust paths p11-kit-trust reads when its parameters name none: its
 * compiled-in list (configure --with-trust-paths), one token per path, each
 * path (after `~` expansion) in its slot's description (trust/module.c,
 * sys_C_GetSlotInfo). Asking the loaded module, rather than pkg-config, gives
 * the list of the very library that is wrapped, on systems without the -dev
 * package too. A description is cut at 64 bytes; one that fills them may be
 * cut, so it is refused. '' for any other upstream.
 */
export function builtinTrustPaths(library: string, probe: UpstreamProbe): string {
  if (!isP11KitTrust(probe)) return '';
  return probe.slotDescriptions
    .map((d) => {
      if (Buffer.byteLength(d) >= SLOT_DESCRIPTION_BYTES && !d.endsWith(' ')) {
        throw new EngineError(
          'UPSTREAM',
          `${library} reads a built-in trust path of ${SLOT_DESCRIPTION_BYTES} bytes or more, which it reports cut off ("${d}"); name its trust paths with --upstream-params paths=...`,
        );
      }
      return d.replace(/ +$/, '');
    })
    .join(':');
}

/**
 * A file the upstream option names must exist and be a file before it is
 * loaded; dlopen's own words for these ("cannot read file data: Is a
 * directory") name no fix.
 */
export function checkUpstreamFile(library: string): void {
  let st;
  try {
    st = statSync(library);
  } catch (cause) {
    throw new EngineError('UPSTREAM', `cannot load the upstream module: ${describePathError(cause, library)} (--upstream names the trust module to wrap, e.g. /usr/lib/x86_64-linux-gnu/libnssckbi.so from Debian's libnss3)`, { cause });
  }
  if (!st.isFile()) throw new EngineError('UPSTREAM', `cannot load the upstream module: ${library} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}, not a PKCS#11 module`);
}

/** The dynamic loader's refusal (pkcs11js passes dlerror() on) in plain words, for the cases people meet. */
export function describeLoadFailure(library: string, loaderText: string): string {
  if (/undefined symbol: C_GetFunctionList/.test(loaderText)) return `${library} is a shared library but not a PKCS#11 module (it has no C_GetFunctionList)`;
  if (/invalid ELF header|file too short|not an ELF|cannot read file data/.test(loaderText)) return `${library} is not a shared library`;
  if (/wrong ELF class/.test(loaderText)) return `${library} is built for another word size (32-bit vs 64-bit) than this Node`;
  if (/Permission denied/.test(loaderText)) return `${library} is not readable by this user`;
  const missing = /^([^:]+): cannot open shared object file: No such file or directory/.exec(loaderText.replace(/^[^:]*: (?=[^:]+: cannot open)/, ''));
  if (missing) return missing[1] === library || missing[1] === basename(library) ? `${library} does not exist` : `${library} needs ${missing[1]}, which is not installed`;
  return `${library} cannot be loaded (the dynamic loader says: ${loaderText.replace(/\s+/g, ' ').trim()})`;
}

/**
 * Loads `library`, passing `params` as C_Initialize's pReserved (NSS style),
 * and returns every token object with every attribute ncfence knows about.
 * `beforeObjects` runs once upstream is initialized and before any object is
 * read (p11-kit-trust reads its files at the first search), so a stamp taken
 * there predates what the snapshot holds.
 */
export function readUpstream(library: string, params: string, beforeObjects?: (probe: UpstreamProbe) => void): UpstreamSnapshot {
  const p = new pkcs11js.PKCS11();
  try {
    p.load(library);
  } catch (cause) {
    throw new EngineError('UPSTREAM', `cannot load the upstream module: ${describeLoadFailure(library, (cause as Error).message)}`, { cause });
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
    if (beforeObjects) {
      const info = p.C_GetInfo();
      beforeObjects({
        manufacturer: info.manufacturerID.trim(),
        description: info.libraryDescription.trim(),
        slotDescriptions: slots.map((s) => p.C_GetSlotInfo(s).slotDescription),
      });
    }
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
