// The Node binding built next to the module (binding.gyp target ncfence_node):
// SO_PEERCRED for the service's transport (addon/node/peercred.cc) and
// libsecp256k1 key recovery for certified mode (addon/node/recover.cc), and
// the module's upstream stamp and trust rule (addon/node/stamp.cc over
// addon/stamp.c, addon/node/trust.cc over addon/trust.c).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { EngineError, type EngineErrorCode } from '../engine/errors.js';

export const NODE_BINDING = fileURLToPath(new URL('../../build/Release/ncfence_node.node', import.meta.url));

export interface NodeBinding {
  peerUid(fd: number): number;
  /** libsecp256k1 key recovery: the serialized key, or null when none recovers. */
  recoverCompact(rs: Uint8Array, recid: number, hash: Uint8Array, compressed: boolean): Uint8Array | null;
  /** addon/stamp.c stamp_build: the stamp, or throws with the module's reason. */
  stamp(library: string, params: string, builtinPaths: string, policy: string, engine: string): string;
  /** addon/stamp.c stamp_paths_argument. */
  pathsArgument(params: string): string | undefined;
  /** addon/trust.c trust_object: whether an object with these attributes grants trust (or is malformed). */
  grantsTrust(attrs: readonly (readonly [type: number, value: Uint8Array])[]): boolean;
  /** The attributes trust_object reads (CKA_CLASS and every trust attribute): the rest may be left out. */
  trustAttributes: readonly number[];
}

/**
 * A binding built next to the module (this one, or compile/upstream.ts's),
 * loaded on first use so importing a module that uses it has no side
 * effects; EngineError(`code`) when it is missing.
 */
export function requireBinding<T>(file: string, code: EngineErrorCode): T {
  if (!existsSync(file)) throw new EngineError(code, `the Node binding ${file} is missing: run npm ci (or npm run build) in the ncfence package`);
  return createRequire(import.meta.url)(file) as T;
}

let binding: NodeBinding | undefined;
export function loadBinding(): NodeBinding {
  return (binding ??= requireBinding<NodeBinding>(NODE_BINDING, 'USAGE'));
}
