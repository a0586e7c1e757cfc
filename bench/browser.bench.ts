// Browser targets: what reading a browser's own roots costs, `install
// firefox` end to end, the start-up that rebuilds a stale view after a
// browser update, and what the module adds to an ordinary start-up.
//
//   node --import tsx bench/browser.bench.ts [--out FILE] [--quick]
//
// Needs `npm run build` (the install runs the compiled CLI, which the
// module's rebuild runs too) and Firefox ESR 140 unpacked where .ci/run puts
// it. Budgets (issue "fence the browser's builtins"): install within 5 s; a
// stale rebuild adds at most 5 s to the one start-up that needs it; an
// ordinary start-up adds at most 5 ms. The last is the module's own
// C_Initialize with the browser's view (bench/native/pkcs11bench.c); the
// browser's builtins, compiled into libxul, take next to nothing to
// initialize, so that is what ncfence adds. Whole-browser start-ups to
// "roots loaded" are recorded beside it, stock and installed, as a cross-check.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBrowserRoots } from '../src/browser/probe.js';
import { swapBrowser } from '../test/helpers/firefox.js';
import { CLI, MODULE, compileNative, machineInfo, parseArgs, round, sh, stats, writeJsonAtomic, type Stats } from './lib.js';

const ESR153 = '/usr/lib/firefox-esr';
const ESR140 = process.env.NCFENCE_ESR140_DIR ?? '/var/cache/ncfence-test/firefox-esr-140/usr/lib/firefox-esr';

const args = parseArgs('browser');
const n = args.quick ? 2 : 7;
const dir = mkdtempSync(join(tmpdir(), 'ncfence-bench-browser-'));
const copy = join(dir, 'firefox');
let installed = false;

function cli(a: string[]): number {
  const t = performance.now();
  sh(process.execPath, [CLI, ...a], { ...process.env, NCFENCE_CONFIG: '' });
  return performance.now() - t;
}

try {
  // 1. Reading a browser's own roots from inside it.
  const read: Record<string, Stats> = {};
  for (const [name, src] of [['ESR 153', ESR153], ['ESR 140', ESR140]] as const) {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) xs.push((await readBrowserRoots(src, { stock: true })).millis);
    read[name] = round(stats(xs));
  }

  // 2. `ncfence install firefox` end to end (process start to exit: read,
  // build, place, start Firefox again and compare), then uninstall.
  sh('cp', ['-al', ESR153, copy]);
  const install: number[] = [];
  for (let i = 0; i < n; i++) {
    install.push(cli(['install', 'firefox', '--dir', copy]));
    cli(['uninstall', 'firefox', '--dir', copy]);
  }

  // 3. Start-ups to "roots loaded": stock, installed and fresh, and the one
  // after a browser update that rebuilds (the version swapped each round).
  cli(['install', 'firefox', '--dir', copy, '--auto-rebuild']);
  installed = true;
  const stock: number[] = [];
  const ordinary: number[] = [];
  const rebuild: number[] = [];
  const extra: number[] = [];
  let current = ESR153;
  for (let i = 0; i < n; i++) {
    stock.push((await readBrowserRoots(copy, { stock: true })).millis);
    const o = (await readBrowserRoots(copy, { stock: false })).millis;
    ordinary.push(o);
    current = current === ESR153 ? ESR140 : ESR153;
    await swapBrowser(copy, current);
    const r = await readBrowserRoots(copy, { stock: false, allowRebuild: true, timeoutMs: 60_000 });
    if (!r.rootList) throw new Error('the rebuild did not leave a fresh view');
    rebuild.push(r.millis);
    extra.push(r.millis - (await readBrowserRoots(copy, { stock: false })).millis);
  }

  // 4. The module's C_Initialize with the browser's view (native loop).
  const benchBin = compileNative('pkcs11bench', dir);
  const inits: number[] = [];
  for (let i = 0; i < (args.quick ? 3 : 15); i++) {
    const out = JSON.parse(execFileSync(benchBin, [MODULE], { encoding: 'utf8', env: { ...process.env, NCFENCE_CONFIG: join(copy, 'ncfence.conf') } })) as { init: { median_ns: number } };
    inits.push(out.init.median_ns / 1e6);
  }
  const initMs = Math.min(...inits);

  const result = {
    bench: 'browser',
    machine: machineInfo(),
    parameters: { rounds: n, browsers: { 'ESR 153': ESR153, 'ESR 140': ESR140 } },
    readRootsMs: read,
    installMs: round(stats(install)),
    startupToRootsMs: { stock: round(stats(stock)), installed: round(stats(ordinary)), rebuildingAfterUpdate: round(stats(rebuild)) },
    staleRebuildExtraMs: round(stats(extra)),
    samplesMs: { install: install.map((x) => Math.round(x)), rebuild: rebuild.map((x) => Math.round(x)), rebuildExtra: extra.map((x) => Math.round(x)) },
    moduleInitMs: { fastestRunMedian: round(initMs, 3), runMedians: inits.map((x) => round(x, 3)) },
    budgets: {
      'install within 5 s (median)': stats(install).p50 <= 5000,
      'stale rebuild adds at most 5 s (p95)': stats(extra).p95 <= 5000,
      'ordinary start-up adds at most 5 ms (module C_Initialize)': initMs <= 5,
    },
  };
  const lines = [
    `browser bench: ${n} rounds (milliseconds: median / p95)`,
    ...Object.entries(read).map(([k, s]) => `  read ${k} roots from inside it:   ${s.p50} / ${s.p95}`),
    `  install firefox, end to end:      ${result.installMs.p50} / ${result.installMs.p95}`,
    `  start-up to roots, stock:         ${result.startupToRootsMs.stock.p50} / ${result.startupToRootsMs.stock.p95}`,
    `  start-up to roots, installed:     ${result.startupToRootsMs.installed.p50} / ${result.startupToRootsMs.installed.p95}`,
    `  start-up that rebuilds (update):  ${result.startupToRootsMs.rebuildingAfterUpdate.p50} / ${result.startupToRootsMs.rebuildingAfterUpdate.p95}`,
    `  of which the rebuild adds:        ${result.staleRebuildExtraMs.p50} / ${result.staleRebuildExtraMs.p95}`,
    `  module C_Initialize, browser view: ${initMs.toFixed(3)} ms`,
    ...Object.entries(result.budgets).map(([k, ok]) => `  budget ${ok ? 'met   ' : 'MISSED'} ${k}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeJsonAtomic(args.out, result);
} finally {
  // Uninstalled before its directory goes, so no record of it stays behind (status would report it gone).
  if (installed) cli(['uninstall', 'firefox', '--dir', copy]);
  rmSync(dir, { recursive: true, force: true });
}
