// Builds the native harness, sanitizer variants of the module and the
// fuzzers with the system compilers (gcc for ASan/UBSan/TSan, clang for
// libFuzzer) into a temp directory.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './paths.js';
import { runOk } from './run.js';

export const MODULE_SOURCES = readdirSync(join(ROOT, 'addon'))
  .filter((f) => f.endsWith('.c'))
  .map((f) => join(ROOT, 'addon', f));

const COMMON = ['-std=c11', '-g', '-O1', '-fno-omit-frame-pointer', '-I/usr/include/p11-kit-1', '-Wall', '-Wextra', '-Wno-unused-parameter'];

export type Variant = 'plain' | 'asan' | 'tsan';
const SAN: Record<Variant, string[]> = {
  plain: [],
  asan: ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined'],
  tsan: ['-fsanitize=thread'],
};

/** The module built with a sanitizer; exports only C_GetFunctionList, like the release build. */
export async function buildModule(dir: string, variant: Variant): Promise<string> {
  const out = join(dir, `libncfence-${variant}.so`);
  await runOk('gcc', [...COMMON, ...SAN[variant], '-shared', '-fPIC', '-fvisibility=hidden', '-o', out, ...MODULE_SOURCES, '-ldl', '-lpthread'], { timeoutMs: 180_000 });
  return out;
}

export async function buildHarness(dir: string, variant: Variant): Promise<string> {
  const out = join(dir, `harness-${variant}`);
  await runOk('gcc', [...COMMON, ...SAN[variant], '-o', out, join(ROOT, 'test/native/harness.c'), '-ldl', '-lpthread'], { timeoutMs: 120_000 });
  return out;
}

export async function buildFuzzer(dir: string, target: 'view' | 'template' | 'live'): Promise<string> {
  const out = join(dir, `fuzz_${target}`);
  await runOk(
    'clang',
    [...COMMON, '-fsanitize=fuzzer,address,undefined', '-o', out, join(ROOT, `test/fuzz/fuzz_${target}.c`), ...MODULE_SOURCES, '-ldl', '-lpthread'],
    { timeoutMs: 180_000 },
  );
  return out;
}

/** test/native/forms.c: which R' the module serves as the process loads and unloads libraries. */
export async function buildForms(dir: string): Promise<string> {
  const out = join(dir, 'forms');
  await runOk('gcc', [...COMMON, '-o', out, join(ROOT, 'test/native/forms.c'), '-ldl'], { timeoutMs: 120_000 });
  return out;
}

/**
 * test/native/nsslookup.c, a real NSS process looking certificates up
 * through a module while other threads look up hostile Namecoin names
 * (libnss3-dev: headers and pkg-config file).
 */
export async function buildNssLookup(dir: string, optimize = '-O1'): Promise<string> {
  const out = join(dir, 'nsslookup');
  const flags = (await runOk('pkg-config', ['--cflags', '--libs', 'nss'])).stdout.trim().split(/\s+/);
  await runOk('gcc', ['-std=c11', optimize, '-Wall', '-Wextra', '-o', out, join(ROOT, 'test/native/nsslookup.c'), ...flags, '-lpthread'], { timeoutMs: 120_000 });
  return out;
}

/** What nsslookup prints: every lookup of the public root in nanoseconds, alone and under attack, and counts. */
export interface NssLookupResult {
  alone_ns: number[];
  attack_ns: number[];
  ordinary: number;
  alone_found: number;
  attack_done: number;
  attack_found: number;
  hostile_done: number;
  hostile_found: number;
}
