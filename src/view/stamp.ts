// The upstream fingerprint stored in the view and recomputed by the module at
// C_Initialize, made by the module's own code (addon/stamp.c, through the Node
// binding) so the two never disagree. What it covers, its format and bounds:
// addon/stamp.c and docs/configuration.md, "What the stamp covers".

import { realpathSync, statSync } from 'node:fs';
import { EngineError } from '../engine/errors.js';
import { loadBinding } from '../service/binding.js';

/**
 * The `paths` argument p11-kit-trust takes from its parameter string, or
 * undefined when none sets it (it then reads its built-in paths): p11-kit's
 * p11_argv_parse and trust/module.c parse_argument, as addon/stamp.c does.
 */
export function p11kitPathsArgument(params: string): string | undefined {
  return loadBinding().pathsArgument(params);
}

/** The library's real path, size and mtime: to notice it changing while it is read. */
export function libraryStamp(library: string): string {
  const real = realpathSync(library);
  const s = statSync(real, { bigint: true });
  return `${real}\n${s.size}\n${s.mtimeNs}`;
}

/**
 * The stamp. `builtinTrustPaths` is the configuration's
 * `upstream-trust-paths` (the paths p11-kit-trust reads when the parameters
 * name none); `engine` its `engine` (the package's engine-id file), or ''.
 * Throws past a bound or when upstream is missing, where the module has no
 * stamp either (the view is then never fresh).
 */
export function upstreamStamp(library: string, params: string, policy: string, builtinTrustPaths = '', engine = ''): string {
  try {
    return loadBinding().stamp(library, params, builtinTrustPaths, policy, engine);
  } catch (cause) {
    if (cause instanceof EngineError) throw cause;
    throw new EngineError('UPSTREAM', (cause as Error).message, { cause });
  }
}
