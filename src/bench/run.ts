// `ncfence bench`: what rewriting costs on this machine, on the user's own
// upstream, each number beside its baseline from the same run:
//   - per root: fenceRoot latency by key type (p50/p99), beside the crypto
//     floor of one rewrite (a fresh anchor key and its two signatures);
//   - the whole plan in this process, against the floor for as many roots;
//   - `ncfence build` as a process, against a process that only does the
//     floor, interleaved run by run (Node's start-up counts on both sides;
//     both run with this process's node and its flags; budget 2x);
//   - the module: C_Initialize, FindObjects by subject and
//     GetAttributeValue(CKA_VALUE), through ncfence and on upstream itself,
//     both through pkcs11js in this process.
// Timing never decides anything; it is reported.

import { execFileSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, hash, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pkcs11js from 'pkcs11js';
import { build, realUpstream } from '../compile/build.js';
import { planView } from '../compile/plan.js';
import { readUpstream } from '../compile/upstream.js';
import { ulongValue } from '../pkcs11/objects.js';
import { SIGNATURE, defaultEngineDeps, fenceRoot, type AnchorKeyType } from '../engine/crossSign.js';
import { parseCertificate } from '../engine/asn1/certificate.js';
import { loadPolicy, policyForUpstream, type Policy } from '../policy.js';
import { CKA, CKO } from '../pkcs11/constants.js';

const MODULE = fileURLToPath(new URL('../../build/Release/libncfence.so', import.meta.url));

export interface BenchOptions {
  upstream: string;
  upstreamParams: string;
  rounds: number;
}

export interface Percentiles {
  n: number;
  p50: number;
  p99: number;
}

/** `ncfence build` as a process may take this many times the floor process (issue 21). */
export const PROCESS_BUDGET = 2;
/** The whole plan in this process may take this many times its crypto floor (docs/troubleshooting.md, "ncfence bench: a missed budget"). */
export const PLAN_BUDGET = 3;

export interface Machine {
  cpuModel: string;
  /** Logical CPUs. */
  cores: number;
  /** The same as cores (kept for readers of earlier results). */
  cpus: number;
  node: string;
  openssl: string;
  /** The installed libnss3 package's version (dpkg), or null where dpkg cannot tell. */
  nss: string | null;
}

export interface ProcessRatio {
  /** Medians over the runs, milliseconds. */
  buildMs: number;
  floorMs: number;
  /** median(build) / median(floor). */
  ratio: number;
  budget: number;
  runs: number;
  buildP95Ms: number;
  floorP95Ms: number;
  /** Median over runs of build_i / floor_i, each pair run back to back. */
  pairedRatio: number;
  /** The two command lines, as run (the floor's script is FLOOR_SCRIPT). */
  build: string;
  floor: string;
}

export interface BenchResult {
  machine: Machine;
  upstream: string;
  roots: number;
  /** Per key type: fenceRoot and the floor of one rewrite, microseconds. */
  perRoot: { keyType: string; roots: number; rewriteUs: Percentiles; floorUs: Percentiles }[];
  plan: { ms: number; floorMs: number; ratio: number; runs: number; p95Ms: number; floorP95Ms: number };
  process: ProcessRatio;
  module: { initUs: { upstream: number; ncfence: number }; findUs: { upstream: number; ncfence: number }; valueUs: { upstream: number; ncfence: number } };
}

function percentiles(xs: number[]): Percentiles {
  return { n: xs.length, p50: Math.round(pct(xs, 50) * 10) / 10, p99: Math.round(pct(xs, 99) * 10) / 10 };
}

const median = (xs: number[]): number => percentiles(xs).p50;

function keyType(der: Uint8Array): string {
  const d = new X509Certificate(Buffer.from(der)).publicKey.asymmetricKeyDetails;
  if (d?.modulusLength) return `RSA-${d.modulusLength}`;
  if (d?.namedCurve) return `EC ${d.namedCurve === 'prime256v1' ? 'P-256' : d.namedCurve === 'secp384r1' ? 'P-384' : d.namedCurve}`;
  return 'other';
}

/** The anchor curve and signature hash of a policy's anchor key type, as the engine uses them. */
const FLOOR_CRYPTO: Record<AnchorKeyType, { curve: string; hash: string }> = {
  'P-256': { curve: 'prime256v1', hash: SIGNATURE['P-256'].hash },
  'P-384': { curve: 'secp384r1', hash: SIGNATURE['P-384'].hash },
};

/**
 * The crypto floor of one rewrite: a fresh anchor key and the signatures
 * the policy makes with it (L(R) and R', and R''s NSS form when the policy
 * has one: see signaturesPerRoot).
 */
function floorOne(tbs: Uint8Array, anchor: AnchorKeyType, signatures: number): void {
  const { curve, hash: h } = FLOOR_CRYPTO[anchor];
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve }) as { privateKey: KeyObject };
  for (let i = 0; i < signatures; i++) sign(h, tbs, privateKey);
}

/** Signatures per fenced root under `policy`: L(R) and R', and the NSS form of R' when it names excludedForNss (engine/crossSign.ts fenceRoot). */
const signaturesPerRoot = (policy: Policy): number => (policy.nssSubtrees.length > 0 ? 3 : 2);

/**
 * The floor process: Node doing only the floor for as many roots, with the
 * policy's curve and hash, nothing else (no output, no other module). Run
 * as a CommonJS file, as `ncfence build` is (dist/cli/main.js), with the
 * same node and flags. Arguments: roots, TBS bytes, curve, hash, signatures per root.
 */
const FLOOR_SCRIPT = `'use strict';
const { generateKeyPairSync, sign } = require('node:crypto');
const n = Number(process.argv[2]); const tbs = Buffer.alloc(Number(process.argv[3]), 7); const namedCurve = process.argv[4]; const hash = process.argv[5]; const k = Number(process.argv[6]);
for (let i = 0; i < n; i++) { const { privateKey } = generateKeyPairSync('ec', { namedCurve }); for (let j = 0; j < k; j++) sign(hash, tbs, privateKey); }
`;

/** How long `f` takes, in milliseconds. */
function timed(f: () => unknown): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

const timeProcess = (args: string[]): number =>
  timed(() => execFileSync(process.execPath, args, { stdio: 'ignore', env: { ...process.env, NCFENCE_CONFIG: '' } }));

/** The machine a run measured: CPU, Node, OpenSSL, and the libnss3 package's version where dpkg knows it (bench/lib.ts uses it too). */
export function machine(): Machine {
  let nss: string | null = null;
  try {
    nss = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libnss3'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    nss = null;
  }
  const cpu = cpus();
  return { cpuModel: cpu[0]?.model.trim() ?? 'unknown', cores: cpu.length, cpus: cpu.length, node: process.version, openssl: process.versions.openssl ?? '', nss };
}

/** Nearest-rank percentile, p in (0, 100] (percentiles() and bench/lib.ts's stats() take theirs from it). */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/**
 * `ncfence build` as a process against the floor process, interleaved
 * run by run: build, then floor. Both are this process's node with this
 * process's flags (the installed CLI: none; under tsx, tsx for both).
 */
function processRatio(o: BenchOptions, dir: string, roots: number, tbsBytes: number, anchor: AnchorKeyType, signatures: number, runs: number): ProcessRatio {
  const floorFile = join(dir, 'floor.cjs');
  writeFileSync(floorFile, FLOOR_SCRIPT);
  // The build runs as this command was run (the installed CLI, or tsx over the sources).
  const buildArgs = [...process.execArgv, process.argv[1]!, 'build', '--upstream', o.upstream, '--upstream-params', o.upstreamParams, '--out', join(dir, 'out'), '--allow-empty'];
  const floorArgs = [...process.execArgv, floorFile, String(roots), String(tbsBytes), FLOOR_CRYPTO[anchor].curve, FLOOR_CRYPTO[anchor].hash, String(signatures)];
  const build: number[] = [];
  const floor: number[] = [];
  for (let r = 0; r < runs; r++) {
    build.push(timeProcess(buildArgs));
    floor.push(timeProcess(floorArgs));
  }
  const buildMs = pct(build, 50);
  const floorMs = pct(floor, 50);
  return {
    buildMs: Math.round(buildMs),
    floorMs: Math.round(floorMs),
    ratio: Math.round((buildMs / floorMs) * 100) / 100,
    budget: PROCESS_BUDGET,
    runs,
    buildP95Ms: Math.round(pct(build, 95)),
    floorP95Ms: Math.round(pct(floor, 95)),
    pairedRatio: Math.round(pct(build.map((b, i) => b / floor[i]!), 50) * 100) / 100,
    build: [process.execPath, ...buildArgs].join(' '),
    floor: [process.execPath, ...floorArgs].join(' '),
  };
}

/** FindObjects by subject and GetAttributeValue over every certificate, and C_Initialize, through pkcs11js. */
function moduleCosts(library: string, params: string, env: Record<string, string>, rounds: number): { init: number; find: number; value: number } {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const p = new pkcs11js.PKCS11();
  try {
    p.load(library);
    const inits: number[] = [];
    const find: number[] = [];
    const value: number[] = [];
    const initOpts = params ? { flags: pkcs11js.CKF_OS_LOCKING_OK, libraryParameters: `${params}\0` } : { flags: pkcs11js.CKF_OS_LOCKING_OK };
    for (let r = 0; r < rounds; r++) {
      inits.push(timed(() => p.C_Initialize(initOpts)));
      const slot = p.C_GetSlotList(true)[0]!;
      const s = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
      p.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }]);
      const certs = p.C_FindObjects(s, 4096);
      p.C_FindObjectsFinal(s);
      const subjects = certs.map((h) => p.C_GetAttributeValue(s, h, [{ type: CKA.SUBJECT }])[0]!.value!);
      const t1 = performance.now();
      for (const subject of subjects) {
        p.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.SUBJECT, value: subject }]);
        p.C_FindObjects(s, 16);
        p.C_FindObjectsFinal(s);
      }
      const t2 = performance.now();
      for (const h of certs) p.C_GetAttributeValue(s, h, [{ type: CKA.VALUE }]);
      const t3 = performance.now();
      find.push(((t2 - t1) * 1000) / Math.max(1, subjects.length));
      value.push(((t3 - t2) * 1000) / Math.max(1, certs.length));
      p.C_CloseSession(s);
      p.C_Finalize();
    }
    return { init: median(inits), find: median(find), value: median(value) };
  } finally {
    p.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

export async function runBench(o: BenchOptions, progress?: (msg: string) => void): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-bench-'));
  try {
    // The policy `ncfence build` of this upstream uses (policyForUpstream), so the plan here is the build's.
    const policy = loadPolicy(policyForUpstream(realUpstream(o.upstream), false));
    const signatures = signaturesPerRoot(policy);
    const deps = await defaultEngineDeps(policy.anchorKey);
    progress?.(`reading ${o.upstream}`);
    const snapshot = readUpstream(o.upstream, o.upstreamParams);
    const plan = planView(snapshot, policy, deps);
    const fencedSha = new Set(plan.summary.decisions.filter((d) => d.action === 'fence').map((d) => d.sha256));
    const rootDers = fencedSha.size;
    const certs = snapshot.objects.filter((x) => ulongValue(x.attrs.get(CKA.CLASS)) === CKO.CERTIFICATE && x.attrs.get(CKA.VALUE));
    const fenced = certs.map((x) => x.attrs.get(CKA.VALUE)!).filter((der) => fencedSha.has(hash('sha256', der, 'hex')));
    progress?.('the whole plan against the floor');
    const planMs: number[] = [];
    const floorMs: number[] = [];
    const tbs = fenced.length ? parseCertificate(fenced[0]!).tbs : new Uint8Array(900);
    const floorAll = (): number =>
      timed(() => {
        for (let i = 0; i < rootDers; i++) floorOne(tbs, policy.anchorKey, signatures);
      });
    const planOnce = (): number => timed(() => planView(snapshot, policy, deps));
    // Measured before the per-root section, after 30 warm-up plans and
    // floors (V8 optimises the plan's code only after some tens of runs,
    // and the floor's is hot at once): the per-root section's thousands of
    // rewrites would leave the heap busy collecting, which falls on
    // whichever side allocates (the plan).
    for (let r = 0; r < 30; r++) {
      planOnce();
      floorAll();
    }
    const pairs = Math.max(9, Math.min(o.rounds, 15));
    for (let r = 0; r < pairs; r++) {
      // Alternate which goes first, so neither always runs on a fresh heap.
      if (r % 2 === 1) floorMs.push(floorAll());
      planMs.push(planOnce());
      if (r % 2 === 0) floorMs.push(floorAll());
    }
    progress?.(`rewriting ${fenced.length} roots ${o.rounds} times each`);
    const byType = new Map<string, { rewrite: number[]; floor: number[]; roots: number }>();
    for (const der of fenced) {
      const parsed = parseCertificate(der);
      const type = keyType(der);
      const e = byType.get(type) ?? { rewrite: [], floor: [], roots: 0 };
      e.roots++;
      for (let r = 0; r < o.rounds; r++) {
        const t0 = performance.now();
        const out = fenceRoot(parsed, policy.excludedSubtrees, deps, undefined, policy.nssSubtrees);
        const t1 = performance.now();
        floorOne(out.cross.tbs, policy.anchorKey, signatures);
        const t2 = performance.now();
        e.rewrite.push((t1 - t0) * 1000);
        e.floor.push((t2 - t1) * 1000);
      }
      byType.set(type, e);
    }
    progress?.('ncfence build as a process against a process that only does the floor');
    const proc = processRatio(o, dir, rootDers, tbs.length, policy.anchorKey, signatures, pairs);
    progress?.('the module: through ncfence and on upstream itself');
    const view = await build({ upstream: o.upstream, upstreamParams: o.upstreamParams, outDir: join(dir, 'module') });
    const rounds = Math.max(3, Math.min(o.rounds, 15));
    const direct = moduleCosts(o.upstream, o.upstreamParams, {}, rounds);
    const fencedCosts = moduleCosts(MODULE, '', { NCFENCE_CONFIG: view.config }, rounds);
    return {
      machine: machine(),
      upstream: `${o.upstream}${o.upstreamParams ? ` (${o.upstreamParams})` : ''}`,
      roots: rootDers,
      perRoot: [...byType].map(([k, e]) => ({ keyType: k, roots: e.roots, rewriteUs: percentiles(e.rewrite), floorUs: percentiles(e.floor) })).sort((a, b) => a.keyType.localeCompare(b.keyType)),
      plan: {
        ms: median(planMs),
        floorMs: median(floorMs),
        ratio: Math.round((median(planMs) / median(floorMs)) * 100) / 100,
        runs: planMs.length,
        p95Ms: round1(pct(planMs, 95)),
        floorP95Ms: round1(pct(floorMs, 95)),
      },
      process: proc,
      module: {
        initUs: { upstream: round1(direct.init * 1000), ncfence: round1(fencedCosts.init * 1000) },
        findUs: { upstream: round1(direct.find), ncfence: round1(fencedCosts.find) },
        valueUs: { upstream: round1(direct.value), ncfence: round1(fencedCosts.value) },
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/** One budget of DESIGN's, judged on this run: what it is, what was measured, what missing it means. */
export interface BudgetVerdict {
  name: string;
  met: boolean;
  budget: string;
  measured: string;
  /** What a missed budget means for a user, and where to read more. */
  means: string;
  more: string;
}

const READ_MORE = 'docs/troubleshooting.md, "ncfence bench: a missed budget"';

/**
 * The budgets this bench can judge (docs/troubleshooting.md lists them with
 * the reasons): the build as a process and the whole plan in this process,
 * each against its crypto floor, and the module's C_Initialize against
 * upstream's. The budgets on FindObjects and
 * GetAttributeValue need the C loop of bench/module.bench.ts: through
 * pkcs11js the binding's own cost hides a 10% difference.
 */
export function benchBudgets(r: BenchResult): BudgetVerdict[] {
  const initOverMs = round1((r.module.initUs.ncfence - r.module.initUs.upstream) / 1000);
  return [
    {
      name: 'ncfence build as a process',
      met: r.process.ratio <= r.process.budget,
      budget: `at most ${r.process.budget}x a process that only does the crypto floor for as many roots (a key and the signatures the policy makes with it each; Node's start-up counts on both sides)`,
      measured: `${r.process.ratio}x (${r.process.buildMs} ms against ${r.process.floorMs} ms, medians)`,
      means: `ncfence's own work costs more than the budget allows; a browser start that rebuilds a stale view (--auto-rebuild) waits about ${r.process.buildMs} ms for it. Nothing is less safe, only slower; on a busy machine run the bench again before reading much into one run`,
      more: READ_MORE,
    },
    {
      name: 'the whole plan',
      met: r.plan.ratio <= PLAN_BUDGET,
      budget: `at most ${PLAN_BUDGET}x the crypto floor for as many roots, both in this process after warm-up`,
      measured: `${r.plan.ratio}x (${r.plan.ms} ms against ${r.plan.floorMs} ms, medians)`,
      means: 'fencing costs more than its keys and signatures allow: the engine\'s own work (parsing, DER, hashing, view objects) or the garbage collector has grown; nothing is less safe, only slower',
      more: READ_MORE,
    },
    {
      name: 'the module\'s C_Initialize',
      met: initOverMs < 5,
      budget: 'under 5 ms over upstream\'s own C_Initialize',
      measured: `${initOverMs} ms over (${round1(r.module.initUs.ncfence / 1000)} ms against ${round1(r.module.initUs.upstream / 1000)} ms, medians)`,
      means: 'every program that loads the module (each browser start, each certutil) waits that much longer before it can check a certificate; the usual cause is a slow stamp walk over a large trust directory (docs/configuration.md, "What the stamp covers")',
      more: READ_MORE,
    },
  ];
}

/** The budget lines under the table: one summary line when all are met, the whole explanation of each one missed. */
function formatBudgets(budgets: BudgetVerdict[]): string[] {
  const missed = budgets.filter((b) => !b.met);
  if (missed.length === 0) return [`budgets: all ${budgets.length} met (${budgets.map((b) => `${b.name}: ${b.measured.replace(/ \(.*$/, '')}`).join('; ')})`];
  return missed.flatMap((b) => [
    `budget MISSED: ${b.name}`,
    `  budget:    ${b.budget}`,
    `  measured:  ${b.measured}`,
    `  means:     ${b.means}`,
    `  read more: ${b.more}`,
  ]);
}

/** The readable table, then the budgets. */
export function formatBench(r: BenchResult): string {
  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (x: number, n = 9): string => String(x).padStart(n);
  const lines = [
    `ncfence bench: ${r.upstream}, ${r.roots} roots fenced (Node ${r.machine.node}, OpenSSL ${r.machine.openssl}, ${r.machine.cpus} CPUs)`,
    '',
    'rewrite per root, microseconds        p50       p99   floor p50   floor p99',
    ...r.perRoot.map((x) => `  ${pad(`${x.keyType} (${x.roots} roots)`, 32)}${num(x.rewriteUs.p50)} ${num(x.rewriteUs.p99)} ${num(x.floorUs.p50, 11)} ${num(x.floorUs.p99, 11)}`),
    '',
    `whole plan in this process:  ${r.plan.ms} ms, floor ${r.plan.floorMs} ms: ${r.plan.ratio}x (budget ${PLAN_BUDGET}x: ${r.plan.ratio <= PLAN_BUDGET ? 'met' : 'MISSED'})`,
    `ncfence build as a process:  ${r.process.buildMs} ms, floor process ${r.process.floorMs} ms: ${r.process.ratio}x (budget ${r.process.budget}x: ${r.process.ratio <= r.process.budget ? 'met' : 'MISSED'})`,
    '',
    'module (through pkcs11js)         upstream   ncfence',
    `  C_Initialize, us               ${num(r.module.initUs.upstream)} ${num(r.module.initUs.ncfence)}`,
    `  FindObjects by subject, us     ${num(r.module.findUs.upstream)} ${num(r.module.findUs.ncfence)}`,
    `  GetAttributeValue(VALUE), us   ${num(r.module.valueUs.upstream)} ${num(r.module.valueUs.ncfence)}`,
    '',
    ...formatBudgets(benchBudgets(r)),
  ];
  return `${lines.join('\n')}\n`;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A text's width, over-estimated: 0.7 em per character is more than any
 * glyph of DejaVu Sans (Debian's sans-serif) takes but W, M and a few
 * symbols, so a label placed by it never runs off the canvas
 * (test/cli/bench-svg.test.ts renders the plot with rsvg-convert to check).
 */
const textWidth = (text: string, fontSize: number): number => Math.ceil(text.length * fontSize * 0.7);

/**
 * A bar chart: per key type, the rewrite's p50 and p99 beside the floor's
 * p50; and the process ratio against its budget. The canvas is as wide as
 * its longest label needs (viewBox 1:1), so nothing is cut at an edge.
 */
export function benchSvg(r: BenchResult): string {
  const rows = r.perRoot;
  const max = Math.max(1, ...rows.flatMap((x) => [x.rewriteUs.p99, x.floorUs.p50]));
  const plotW = 460;
  const rowLabels = [...rows.map((x) => `${x.keyType} (${x.roots})`), 'build process / floor'];
  const left = 10 + Math.max(...rowLabels.map((l) => textWidth(l, 12))) + 14;
  const scale = plotW / max;
  const rowH = 54;
  const top = 64;
  const texts: { x: number; text: string; size: number }[] = [];
  const parts: string[] = [];
  const text = (x: number, y: number, size: number, t: string, extra = ''): void => {
    texts.push({ x, text: t, size });
    parts.push(`<text x="${x.toFixed(1)}" y="${y}" font-size="${size}"${extra}>${esc(t)}</text>`);
  };
  const title = ['ncfence bench: rewrite latency per root', `${r.roots} roots of ${r.upstream}`];
  text(10, 22, 14, title[0]!);
  text(10, 40, 12, title[1]!);
  rows.forEach((x, i) => {
    const y = top + i * rowH;
    text(10, y + 26, 12, rowLabels[i]!);
    const bar = (v: number, dy: number, color: string, label: string): void => {
      const w = Math.max(1, v * scale);
      parts.push(`<rect x="${left}" y="${y + dy}" width="${w.toFixed(1)}" height="14" fill="${color}"/>`);
      text(left + w + 4, y + dy + 11, 11, `${label} ${v} us`);
    };
    bar(x.rewriteUs.p50, 0, '#3b6ea5', 'rewrite p50');
    bar(x.rewriteUs.p99, 16, '#9bbbe0', 'p99');
    bar(x.floorUs.p50, 32, '#999', 'floor p50');
  });
  const y0 = top + rows.length * rowH + 10;
  const met = r.process.ratio <= r.process.budget;
  // The ratio axis reaches past both the ratio and the budget, so the bar is never cut short.
  const ratioW = plotW / (Math.max(r.process.ratio, r.process.budget) * 1.1);
  const budgetX = left + r.process.budget * ratioW;
  text(10, y0 + 22, 12, rowLabels[rowLabels.length - 1]!);
  parts.push(`<rect x="${left}" y="${y0 + 10}" width="${Math.max(1, r.process.ratio * ratioW).toFixed(1)}" height="16" fill="${met ? '#4a8' : '#c44'}"/>`);
  parts.push(`<line x1="${budgetX.toFixed(1)}" y1="${y0 + 4}" x2="${budgetX.toFixed(1)}" y2="${y0 + 32}" stroke="#000" stroke-dasharray="3,2"/>`);
  text(budgetX + 4, y0 + 44, 11, `budget ${r.process.budget}x: ${met ? 'met' : 'MISSED'}`);
  // Right of both the bar's end and the budget's line, so neither runs through the text.
  text(left + Math.max(1, r.process.ratio * ratioW, r.process.budget * ratioW) + 6, y0 + 23, 11, `${r.process.ratio}x (${r.process.buildMs} ms vs ${r.process.floorMs} ms)`);
  const W = Math.max(720, Math.ceil(Math.max(...texts.map((t) => t.x + textWidth(t.text, t.size))) + 10));
  const H = y0 + 56;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
${parts.join('\n')}
</svg>
`;
}
