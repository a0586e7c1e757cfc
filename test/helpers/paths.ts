// Paths of the things under test and of the real components they run against.

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MODULE = `${ROOT}build/Release/libncfence.so`;
export const CLI = `${ROOT}src/cli/main.ts`;
export const P11KIT_TRUST = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so';
export const SYSTEM_CKBI = '/usr/lib/x86_64-linux-gnu/libnssckbi.so';
export const UPSTREAM_SHIM = `${ROOT}build/Release/libnftest_upstream_shim.so`;
export const DIST_CLI = `${ROOT}dist/cli/main.js`;

// Root's install records and hooks (src/install/registry.ts systemRoot) for
// this test process alone: never the machine's, and never another test
// file's, so `status`, `doctor` and `refresh`, which go through every
// record, see only what this file installed. Removed when the process ends.
if (process.env.NCFENCE_SYSTEM_ROOT === undefined || process.env.NCFENCE_SYSTEM_ROOT === '') {
  const systemRoot = mkdtempSync(join(tmpdir(), 'ncfence-test-system-'));
  chmodSync(systemRoot, 0o755);
  process.env.NCFENCE_SYSTEM_ROOT = systemRoot;
  process.on('exit', () => rmSync(systemRoot, { recursive: true, force: true }));
}
