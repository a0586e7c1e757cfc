// Reads every object of the upstream trust module, through the Node binding
// addon/node/upstream.cc (binding.gyp target ncfence_upstream).

import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError } from '../engine/errors.js';
import { describePathError } from '../systemError.js';
import { CANDIDATE_ATTRS, CKA, rvName } from '../pkcs11/constants.js';
import type { UpstreamObject } from '../pkcs11/objects.js';
import { requireBinding } from '../service/binding.js';

export interface UpstreamSnapshot {
  library: string;
  params: string;
  slots: { id: number; label: string }[];
  objects: UpstreamObject[];
}

/** What addon/node/upstream.cc exports. PKCS#11 results are return values (rv), never exceptions. */
interface UpstreamBinding {
  open(path: string): { handle?: object; dlerror?: string; rv?: number };
  close(handle: object): void;
  initialize(handle: object, params: string | null): number;
  finalize(handle: object): number;
  info(handle: object): { rv: number; manufacturerID?: string; libraryDescription?: string };
  slots(handle: object): { rv: number; slots?: bigint[] };
  /** The slot's description, or with `token` its token's label. */
  slotText(handle: object, slot: bigint, token: boolean): { rv: number; value?: string };
  /** Every object of the slot; `index` holds per object its attribute count, then (candidate index, offset, length) per attribute into `values`. */
  readObjects(handle: object, slot: bigint, types: readonly number[]): { rv: number; call?: string; objects?: number; values?: ArrayBuffer; index?: Uint32Array };
}

export const UPSTREAM_BINDING = fileURLToPath(new URL('../../build/Release/ncfence_upstream.node', import.meta.url));
let binding: UpstreamBinding | undefined;
const loadBinding = (): UpstreamBinding => (binding ??= requireBinding<UpstreamBinding>(UPSTREAM_BINDING, 'UPSTREAM'));

/** A failed PKCS#11 call, as the read reports it (caught and worded by readUpstream). */
class CallFailed extends Error {}
const check = (rv: number, call: string): void => {
  if (rv !== 0) throw new CallFailed(`${call}: ${rvName(rv)}`);
};

/** The objects of one slot as the binding returns them: views into one buffer, attributes in CANDIDATE_ATTRS order. */
function readSlot(b: UpstreamBinding, handle: object, slot: bigint): UpstreamObject[] {
  const r = b.readObjects(handle, slot, CANDIDATE_ATTRS);
  check(r.rv, r.call ?? 'readObjects');
  const values = r.values!;
  const index = r.index!;
  const id = Number(slot);
  const objects: UpstreamObject[] = new Array(r.objects!);
  let at = 0;
  for (let i = 0; i < objects.length; i++) {
    const n = index[at++]!;
    const attrs = new Map<number, Uint8Array>();
    for (let k = 0; k < n; k++, at += 3) attrs.set(CANDIDATE_ATTRS[index[at]!]!, new Uint8Array(values, index[at + 1]!, index[at + 2]!));
    objects[i] = { slot: id, attrs };
  }
  return objects;
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

/** The dynamic loader's refusal (dlerror(), as addon/node/upstream.cc passes it on) in plain words, for the cases people meet. */
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
  const b = loadBinding();
  const opened = b.open(library);
  if (!opened.handle) throw new EngineError('UPSTREAM', `cannot load the upstream module: ${describeLoadFailure(library, opened.dlerror ?? rvName(opened.rv ?? -1))}`);
  const handle = opened.handle;
  const rv = b.initialize(handle, params ? params : null);
  if (rv !== 0) {
    b.close(handle);
    throw new EngineError('UPSTREAM', `upstream module ${library} failed C_Initialize: ${rvName(rv)}`);
  }
  let finalized = false;
  try {
    const list = b.slots(handle);
    check(list.rv, 'C_GetSlotList');
    const slots = list.slots!;
    if (beforeObjects) {
      const info = b.info(handle);
      check(info.rv, 'C_GetInfo');
      beforeObjects({
        manufacturer: info.manufacturerID!.trim(),
        description: info.libraryDescription!.trim(),
        slotDescriptions: slots.map((s) => {
          const d = b.slotText(handle, s, false);
          check(d.rv, 'C_GetSlotInfo');
          return d.value!;
        }),
      });
    }
    const objects: UpstreamObject[] = [];
    const slotInfo: UpstreamSnapshot['slots'] = [];
    for (const s of slots) {
      const label = b.slotText(handle, s, true);
      check(label.rv, 'C_GetTokenInfo');
      slotInfo.push({ id: Number(s), label: label.value!.trim() });
      for (const o of readSlot(b, handle, s)) objects.push(o);
    }
    for (const o of objects) {
      if (!o.attrs.has(CKA.CLASS)) throw new EngineError('UPSTREAM', `an object in slot ${o.slot} has no CKA_CLASS`);
    }
    finalized = true;
    check(b.finalize(handle), 'C_Finalize');
    return { library, params, slots: slotInfo, objects };
  } catch (cause) {
    if (cause instanceof EngineError) throw cause;
    throw new EngineError('UPSTREAM', `reading upstream module ${library} failed: ${(cause as Error).message}`, { cause });
  } finally {
    if (!finalized) b.finalize(handle);
    b.close(handle);
  }
}
