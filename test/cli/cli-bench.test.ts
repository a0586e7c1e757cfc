// `ncfence bench` runs for a user on their own upstream (issue 13): the
// table, the JSON and the SVG plot, on the system CKBI. Only the shape of
// the results is checked here; timing decides nothing in tests.

import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, SYSTEM_CKBI } from '../helpers/paths.js';
import { run } from '../helpers/run.js';
import { clippedInk } from '../helpers/png.js';

let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-cli-bench-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('ncfence bench: a table, JSON with every measurement beside its baseline and the budgets judged, a well-formed SVG plot that fits, and --check', async (t) => {
  const svg = join(dir, 'bench.svg');
  const r = await run(process.execPath, ['--import', 'tsx', CLI, 'bench', '--rounds', '2', '--json', '--check', '--svg', svg], { timeoutMs: 180_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
  const j = JSON.parse(r.stdout) as {
    upstream: string;
    roots: number;
    perRoot: { keyType: string; roots: number; rewriteUs: { n: number; p50: number; p99: number }; floorUs: { p50: number } }[];
    machine: { cpuModel: string; cores: number; node: string; nss: string | null };
    plan: { ms: number; floorMs: number; ratio: number; runs: number };
    process: { buildMs: number; floorMs: number; ratio: number; budget: number; runs: number; pairedRatio: number; build: string; floor: string };
    module: { initUs: { upstream: number; ncfence: number }; findUs: { upstream: number; ncfence: number } };
    budgets: { name: string; met: boolean; budget: string; measured: string; means: string; more: string }[];
  };
  // --check: exit 1 exactly when the run missed a budget, with one line saying which (timing decides which branch, never the test).
  const missed = j.budgets.filter((b) => !b.met);
  t.is(r.code, missed.length ? 1 : 0, r.stderr);
  if (missed.length) t.regex(r.stderr.trim(), /^ncfence: bench --check: \d budgets? missed: .* \(budgets in the JSON\)$/);
  else t.is(r.stderr, '');
  t.deepEqual(j.budgets.map((b) => b.name), ['ncfence build as a process', 'the whole plan', "the module's C_Initialize"]);
  t.is(j.budgets[0]!.met, j.process.ratio <= j.process.budget);
  t.is(j.budgets[1]!.met, j.plan.ratio <= 3);
  t.is(j.upstream, SYSTEM_CKBI);
  t.true(j.roots > 100);
  t.is(j.perRoot.reduce((n, x) => n + x.roots, 0), j.roots, 'every fenced root is in one key type');
  for (const x of j.perRoot) {
    t.regex(x.keyType, /^(RSA-\d+|EC P-(256|384))$/);
    t.is(x.rewriteUs.n, x.roots * 2);
    t.true(x.rewriteUs.p50 > 0 && x.rewriteUs.p99 >= x.rewriteUs.p50 && x.floorUs.p50 > 0);
  }
  t.true(j.plan.ratio > 0 && j.process.ratio > 0 && j.process.buildMs > 0 && j.process.floorMs > 0);
  // Each ratio beside its floor, from at least 9 interleaved pairs of the same run (issue 21).
  t.true(j.plan.ms > 0 && j.plan.floorMs > 0 && j.plan.runs >= 9 && j.process.runs >= 9 && j.process.pairedRatio > 0);
  t.is(j.process.budget, 2);
  // The build and the floor run with the same node and the same flags.
  t.true(j.process.build.startsWith(`${process.execPath} --import tsx `) && j.process.floor.startsWith(`${process.execPath} --import tsx `), `${j.process.build}\n${j.process.floor}`);
  // The system CKBI is built with rules/nss.json: two signatures per root, as in the floor.
  t.regex(j.process.floor, / \d+ \d+ prime256v1 sha256 2$/);
  // The machine is named.
  t.true(j.machine.cpuModel.length > 0 && j.machine.cores > 0 && j.machine.node === process.version);
  t.regex(j.machine.nss ?? '', /^2:3\./);
  t.true(j.module.findUs.upstream > 0 && j.module.findUs.ncfence > 0);
  const text = readFileSync(svg, 'utf8');
  t.regex(text, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+"/);
  t.regex(text, /build process \/ floor/);
  const xml = await run('python3', ['-c', 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])', svg], { timeoutMs: 30_000 });
  t.is(xml.code, 0, xml.stderr);
  const ink = await clippedInk(text);
  t.is(ink.spill, undefined, `the plot draws outside its ${ink.width}x${ink.height} canvas: ${JSON.stringify(ink.spill)}`);

  const table = await run(process.execPath, ['--import', 'tsx', CLI, 'bench', '--rounds', '1'], { timeoutMs: 180_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^rewrite per root, microseconds +p50 +p99 +floor p50 +floor p99$/m);
  t.regex(table.stdout, /^whole plan in this process: +[\d.]+ ms, floor [\d.]+ ms: [\d.]+x \(budget 3x: (met|MISSED)\)$/m);
  t.regex(table.stdout, /^ncfence build as a process: +\d+ ms, floor process \d+ ms: [\d.]+x \(budget 2x: (met|MISSED)\)$/m);
  t.regex(table.stdout, /^(budgets: all 3 met \(.*\)|budget MISSED: .*\n {2}budget: .*\n {2}measured: .*\n {2}means: .*\n {2}read more: .*)$/m);
});
