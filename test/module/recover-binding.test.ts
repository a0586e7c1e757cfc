// The Node binding's signature key recovery (addon/node/recover.cc) under
// AddressSanitizer and UndefinedBehaviorSanitizer: it takes bytes a TLS peer
// chose (the stapled signature) and the hash of a message it chose. Built here
// with -fsanitize=address,undefined from the same sources, loaded into a Node
// started with the sanitizer runtimes preloaded, and fed seeded random inputs
// of every length and recovery id, plus wrong argument types. Any report or
// crash fails the test; the child checks that the runtime really is loaded.

import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk } from '../helpers/run.js';
import { ROOT } from '../helpers/paths.js';

test('recoverCompact under ASan and UBSan: 20 000 hostile inputs, no report, and real recoveries among them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-recover-asan-'));
  try {
    const napi = (createRequire(import.meta.url)('node-addon-api') as { include_dir: string }).include_dir.replace(/^"|"$/g, '');
    const bin = join(dir, 'ncfence_node.node');
    // The whole binding, from binding.gyp's list for ncfence_node: its C part (the module's own code) with gcc.
    const san = ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer', '-g', '-O1'];
    const gyp = JSON.parse(readFileSync(join(ROOT, 'binding.gyp'), 'utf8')) as { targets: { target_name: string; sources: string[] }[] };
    const sources = gyp.targets.find((x) => x.target_name === 'ncfence_node')!.sources;
    const objects: string[] = [];
    for (const c of sources.filter((f) => f.endsWith('.c'))) {
      objects.push(join(dir, `${objects.length}.o`));
      await runOk('gcc', ['-c', '-fPIC', '-std=c11', ...san, '-I/usr/include/p11-kit-1', '-o', objects.at(-1)!, join(ROOT, c)]);
    }
    const cxx = sources.filter((f) => f.endsWith('.cc')).map((f) => join(ROOT, f));
    await runOk('g++', ['-shared', '-fPIC', ...san, '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-I/usr/include/node', `-I${napi}`, '-I/usr/include/p11-kit-1', '-o', bin, ...cxx, ...objects, '-lsecp256k1']);
    const script = join(dir, 'drive.cjs');
    writeFileSync(
      script,
      `const { readFileSync } = require('node:fs');
if (!/libasan/.test(readFileSync('/proc/self/maps', 'utf8'))) { console.log('NO ASAN'); process.exit(3); }
const b = require(${JSON.stringify(bin)});
let seed = 7; const r = (k) => ((seed = (seed * 1103515245 + 12345) >>> 0) % k);
const bytes = (n) => Uint8Array.from({ length: n }, () => r(256));
let found = 0;
for (let i = 0; i < 20000; i++) {
  const k = b.recoverCompact(bytes(i % 97 === 0 ? r(130) : 64), i % 11 === 0 ? r(9) - 4 : r(4), bytes(i % 89 === 0 ? r(64) : 32), i % 2 === 0);
  if (k) found++;
}
let typeErrors = 0;
for (const args of [['x', 0, new Uint8Array(32), true], [new Uint8Array(64), 0, new Uint8Array(32)], [new Uint8Array(64), '0', new Uint8Array(32), true]]) {
  try { b.recoverCompact(...args); } catch (e) { if (e instanceof TypeError) typeErrors++; }
}
console.log(JSON.stringify({ found, typeErrors }));
`,
    );
    const preload = [];
    for (const lib of ['libasan.so', 'libubsan.so']) preload.push((await runOk('gcc', [`-print-file-name=${lib}`])).stdout.trim());
    const r = await run(process.execPath, [script], { env: { ...process.env, LD_PRELOAD: preload.join(' '), ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' }, timeoutMs: 120_000 });
    t.is(r.code, 0, r.stderr.slice(-3000));
    t.notRegex(r.stderr, /AddressSanitizer|runtime error/);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { found: number; typeErrors: number };
    t.true(out.found > 1000, `keys recovered from random 64-byte signatures: ${out.found}`);
    t.is(out.typeErrors, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
