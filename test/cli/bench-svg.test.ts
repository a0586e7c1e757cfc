// `ncfence bench`'s output (issue 20): its SVG plot, rendered by a real
// renderer (rsvg-convert), draws nothing outside its canvas whatever the
// numbers and the upstream's name; its table explains each missed budget
// (what the budget is, what was measured, what it means, where to read
// more). Results here are synthetic: the layout and the words are under
// test, not the machine's speed.

import test from 'ava';
import { benchBudgets, benchSvg, formatBench, type BenchResult } from '../../src/bench/run.js';
import { clippedInk } from '../helpers/png.js';

function result(over: { upstream?: string; ratio?: number; p99?: number; floorP50?: number; keyTypes?: string[]; initUs?: number; planMs?: number }): BenchResult {
  const keyTypes = over.keyTypes ?? ['EC P-256', 'EC P-384', 'RSA-2048', 'RSA-4096'];
  const ratio = over.ratio ?? 2.05;
  return {
    machine: { cpuModel: 'AMD EPYC', cores: 2, cpus: 2, node: 'v20.20.2', openssl: '3.0.19', nss: '2:3.87.1-1+deb12u4' },
    upstream: over.upstream ?? '/usr/lib/x86_64-linux-gnu/libnssckbi.so',
    roots: 159,
    perRoot: keyTypes.map((k, i) => ({ keyType: k, roots: 40 + i, rewriteUs: { n: 800, p50: 167.7 + i, p99: over.p99 ?? 461.9 }, floorUs: { n: 800, p50: over.floorP50 ?? 105.8, p99: 212.1 } })),
    plan: { ms: over.planMs ?? 42.2, floorMs: 15.3, ratio: Math.round(((over.planMs ?? 42.2) / 15.3) * 100) / 100, runs: 15, p95Ms: 50.1, floorP95Ms: 17.2 },
    process: { buildMs: Math.round(107 * ratio), floorMs: 107, ratio, budget: 2.5, runs: 15, buildP95Ms: Math.round(120 * ratio), floorP95Ms: 120, pairedRatio: ratio, build: 'node dist/cli/main.js build', floor: 'node floor.cjs 159 609 prime256v1 sha256 2' },
    module: { initUs: { upstream: 20, ncfence: over.initUs ?? 700 }, findUs: { upstream: 8.6, ncfence: 9.2 }, valueUs: { upstream: 3.6, ncfence: 3.5 } },
  };
}

const layouts: { name: string; r: BenchResult }[] = [
  { name: 'a run like the one in bench/README.md', r: result({}) },
  { name: 'a long upstream name with its parameters', r: result({ upstream: '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so (paths=/home/someone/.local/share/ncfence/trust-anchors-for-the-office:/etc/ssl/certs)' }) },
  { name: 'a missed process budget far over it', r: result({ ratio: 7.93 }) },
  { name: 'a p99 of a GC pause, far past every other bar', r: result({ p99: 123456.7 }) },
  { name: 'a floor slower than the rewrite', r: result({ floorP50: 99999.9, p99: 300 }) },
  { name: 'one key type with a long name', r: result({ keyTypes: ['EC brainpoolP512r1 (an uncommon curve)'] }) },
  { name: 'eight key types', r: result({ keyTypes: ['EC P-256', 'EC P-384', 'EC P-521', 'RSA-1024', 'RSA-2048', 'RSA-3072', 'RSA-4096', 'other'] }) },
];
for (const c of layouts) {
  test(`bench SVG, rendered by rsvg-convert, has no text or bar cut at an edge: ${c.name}`, async (t) => {
    const svg = benchSvg(c.r);
    const ink = await clippedInk(svg);
    t.is(ink.spill, undefined, `drawn outside the ${ink.width}x${ink.height} canvas by ${JSON.stringify(ink.spill)} px`);
    // Every label is there to be seen (none dropped to make it fit).
    t.true(svg.includes(`${c.r.process.ratio}x (${c.r.process.buildMs} ms vs ${c.r.process.floorMs} ms)`));
    for (const x of c.r.perRoot) t.true(svg.includes(`p99 ${x.rewriteUs.p99} us`));
  });
}

test('bench table: all budgets met is one line', (t) => {
  const text = formatBench(result({}));
  t.regex(text, /^budgets: all 3 met \(ncfence build as a process: 2\.05x; the whole plan: 2\.76x; the module's C_Initialize: 0\.7 ms over\)$/m);
  t.notRegex(text, /MISSED/);
});

const missed: { name: string; r: BenchResult; budget: RegExp; measured: RegExp }[] = [
  { name: 'the build process', r: result({ ratio: 3.1 }), budget: /^budget MISSED: ncfence build as a process\n {2}budget: {4}at most 2\.5x a process that only does the crypto floor/m, measured: /^ {2}measured: {2}3\.1x \(332 ms against 107 ms, medians\)$/m },
  { name: 'the whole plan', r: result({ planMs: 50.1 }), budget: /^budget MISSED: the whole plan\n {2}budget: {4}at most 3x the crypto floor for as many roots, both in this process after warm-up$/m, measured: /^ {2}measured: {2}3\.27x \(50\.1 ms against 15\.3 ms, medians\)$/m },
  { name: "the module's C_Initialize", r: result({ initUs: 9020 }), budget: /^budget MISSED: the module's C_Initialize\n {2}budget: {4}under 5 ms over upstream's own C_Initialize$/m, measured: /^ {2}measured: {2}9 ms over \(9 ms against 0 ms, medians\)$/m },
];
for (const c of missed) {
  test(`bench table explains a missed budget: ${c.name}`, (t) => {
    const text = formatBench(c.r);
    t.regex(text, c.budget);
    t.regex(text, c.measured);
    t.regex(text, /^ {2}means: {5}\S.{40,}$/m);
    t.regex(text, /^ {2}read more: docs\/troubleshooting\.md, "ncfence bench: a missed budget"$/m);
    t.is(benchBudgets(c.r).filter((b) => !b.met).length, 1);
  });
}
