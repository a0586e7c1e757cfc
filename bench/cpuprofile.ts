// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per
// function and per file, counting only samples under a given function.
//
//   node --import tsx bench/cpuprofile.ts PROFILE_OR_DIR [--under planView] [--top 30]
//
// --under takes a comma-separated list of function names that must all be on
// the stack: `--under planOnce,planView` keeps only the timed plan runs of
// `ncfence bench` (src/bench/run.ts).
//
// With a directory it reads the largest .cpuprofile in it (tsx's loader
// thread writes a second, small one). V8 samples the whole process, so GC
// shows up as a separate root and is reported on its own line.
//
// --phases sorts every sample of a whole process (an `ncfence build` run with
// node --cpu-prof) into where it went: GC, module loading, ajv, pkcs11js, the
// crypto floor's own calls (keygen and signatures), and each build step by
// the outermost build function on its stack (bench/README.md, "Profiling").

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const argv = process.argv.slice(2);
const target = argv[0];
if (!target) {
  process.stderr.write('usage: node --import tsx bench/cpuprofile.ts PROFILE_OR_DIR [--under FUNCTION] [--top N]\n');
  process.exit(2);
}
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const under = opt('--under', 'planView');
const phases = argv.includes('--phases');
const required = under.split(',').filter(Boolean);
const top = Number(opt('--top', '30'));

const file = statSync(target).isDirectory()
  ? readdirSync(target)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(target, f))
      .sort((a, b) => statSync(b).size - statSync(a).size)[0]
  : target;
if (!file) throw new Error(`no .cpuprofile in ${target}`);
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map<number, number>();
let totalUs = 0;
prof.samples.forEach((id, i) => {
  const dt = prof.timeDeltas[i] ?? 0;
  selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  totalUs += dt;
});

const where = (cf: CallFrame): string => (cf.url ? cf.url.replace(/^file:\/\/.*?\/(src|bench|test)\//, '$1/') : '(native)');
let underUs = 0;
let gcUs = 0;
const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, t] of selfUs) {
  const n = nodes.get(id)!;
  if (n.callFrame.functionName === '(garbage collector)') gcUs += t;
  const onStack = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) onStack.add(nodes.get(cur)!.callFrame.functionName);
  if (!required.every((f) => onStack.has(f))) continue;
  underUs += t;
  const f = where(n.callFrame);
  const k = `${f}:${n.callFrame.functionName || '(anonymous)'}`;
  byFn.set(k, (byFn.get(k) ?? 0) + t);
  byFile.set(f, (byFile.get(f) ?? 0) + t);
}

const pct = (t: number, of: number): string => `${((100 * t) / of).toFixed(1).padStart(5)}%`;

/** The build steps, outermost first (src/compile/build.ts), and what a sample under none of them is. */
const STEPS = ['loadPolicy', 'defaultEngineDeps', 'libraryStamp', 'upstreamStamp', 'readUpstream', 'planView', 'encodeView', 'writeFileAtomic', 'formatConfig', 'moduleOnlyKeys'];

/** Where one sample's time went, from its stack (innermost frame first). */
function phaseOf(stack: CallFrame[]): string {
  const top = stack[0]!;
  if (top.functionName === '(garbage collector)') return 'GC';
  if (top.functionName === '(program)' || top.functionName === '(idle)' || top.functionName === '(root)') return `V8/Node outside JavaScript ${top.functionName}`;
  if (stack.some((f) => /\/node_modules\/(ajv|fast-uri|fast-deep-equal|json-schema-traverse)\//.test(f.url))) return 'ajv';
  if (stack.some((f) => f.functionName === 'generateKeyPairSync' || f.functionName === 'signOneShot')) return 'crypto floor calls (keygen, sign)';
  if (stack.some((f) => /\/node_modules\/pkcs11js\//.test(f.url))) return 'pkcs11js';
  const step = [...stack].reverse().find((f) => STEPS.includes(f.functionName) && !f.url.startsWith('node:'));
  if (step) return `step ${step.functionName}`;
  if (stack.some((f) => /^node:internal\/(modules|bootstrap)\//.test(f.url) || f.functionName === 'compileForInternalLoader')) return 'module loading and start-up';
  return 'other';
}

if (phases) {
  const byPhase = new Map<string, number>();
  for (const [id, t] of selfUs) {
    const stack: CallFrame[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) stack.push(nodes.get(cur)!.callFrame);
    const k = phaseOf(stack);
    byPhase.set(k, (byPhase.get(k) ?? 0) + t);
  }
  process.stdout.write(`${file}\ntotal sampled ${(totalUs / 1000).toFixed(1)} ms\n`);
  for (const [k, t] of [...byPhase].sort((a, b) => b[1] - a[1])) process.stdout.write(`${(t / 1000).toFixed(1).padStart(8)} ms ${pct(t, totalUs)}  ${k}\n`);
  process.exit(0);
}
process.stdout.write(`${file}\n`);
process.stdout.write(`total ${(totalUs / 1000).toFixed(0)} ms; under ${under}: ${(underUs / 1000).toFixed(0)} ms; GC (whole process): ${(gcUs / 1000).toFixed(0)} ms = ${pct(gcUs, totalUs)} of total\n`);
process.stdout.write(`\nself time under ${under}, by file:\n`);
for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`${pct(t, underUs)}  ${k}\n`);
process.stdout.write(`\nself time under ${under}, by function:\n`);
for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(t, underUs)}  ${k}\n`);
