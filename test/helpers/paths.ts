// Paths of the things under test and of the real components they run against.

import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MODULE = `${ROOT}build/Release/libncfence.so`;
export const CLI = `${ROOT}src/cli/main.ts`;
export const P11KIT_TRUST = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so';
export const SYSTEM_CKBI = '/usr/lib/x86_64-linux-gnu/libnssckbi.so';
export const UPSTREAM_SHIM = `${ROOT}build/Release/libnftest_upstream_shim.so`;
export const DIST_CLI = `${ROOT}dist/cli/main.js`;
