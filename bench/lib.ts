// Shared bench helpers: command line, timing statistics, machine info and
// atomic JSON output. Benches measure only; nothing here asserts on timing.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../src/compile/build.js';
import { machine, pct } from '../src/bench/run.js';
import { arch, platform, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const MODULE = join(ROOT, 'build/Release/libncfence.so');
export const CLI = join(ROOT, 'dist/cli/main.js');
export const CKBI = '/usr/lib/x86_64-linux-gnu/libnssckbi.so';

/** Runs a command to its end (two minutes at most), throwing with its stderr when it fails; returns its stdout and stderr. */
export function sh(cmd: string, a: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, a, { encoding: 'utf8', timeout: 120_000, env: env ?? process.env });
  if (r.status !== 0) throw new Error(`${cmd} ${a.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout + r.stderr;
}

/** Compiles a native timing loop of bench/native/ (NAME.c) into `dir`, and returns its path. */
export function compileNative(name: string, dir: string): string {
  const bin = join(dir, name);
  execFileSync('gcc', ['-std=c11', '-O2', '-I/usr/include/p11-kit-1', '-o', bin, join(ROOT, `bench/native/${name}.c`), '-ldl']);
  return bin;
}

/** `[--out FILE] [--quick]`; `out` is an absolute path, bench/results/<name>.json by default. */
export function parseArgs(name: string, argv: readonly string[] = process.argv.slice(2)): { out: string; quick: boolean } {
  let out = fileURLToPath(new URL(`./results/${name}.json`, import.meta.url));
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--out' && argv[i + 1] !== undefined) out = resolve(argv[++i]!);
    else if (a.startsWith('--out=')) out = resolve(a.slice('--out='.length));
    else {
      process.stderr.write(`usage: node --import tsx bench/${name}.bench.ts [--out FILE] [--quick]\n`);
      process.exit(2);
    }
  }
  return { out, quick };
}

export interface Stats {
  n: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error('stats: no samples');
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    min: s[0]!,
    p50: pct(s, 50),
    p95: pct(s, 95),
    p99: pct(s, 99),
    max: s[s.length - 1]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** Median (mean of the two middle values for an even count). */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new Error('median: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Rounds every number in a Stats (or a plain number) to `digits` decimals, for output. */
export function round<T extends number | Stats>(v: T, digits = 1): T {
  const f = 10 ** digits;
  const r = (x: number): number => Math.round(x * f) / f;
  if (typeof v === 'number') return r(v) as T;
  const s = v as Stats;
  return { n: s.n, min: r(s.min), p50: r(s.p50), p95: r(s.p95), p99: r(s.p99), max: r(s.max), mean: r(s.mean) } as T;
}

/** What `ncfence bench` says of the machine, with the date, the OS and the memory. */
export function machineInfo() {
  return { date: new Date().toISOString(), os: `${platform()} ${release()}`, arch: arch(), memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10, ...machine() };
}

/** Writes JSON atomically (temp file, fsync, rename: the build step's writer). */
export function writeJsonAtomic(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Fixed-width number for the text summary. */
export function fmt(v: number, digits = 1, width = 9): string {
  return v.toFixed(digits).padStart(width);
}

/**
 * Ratio of the means of two samples with a percentile-bootstrap 95% interval
 * (seeded, so a run's numbers can be recomputed from its JSON).
 */
export function meanRatioCI(a: readonly number[], b: readonly number[], resamples = 2000, seed = 1): { ratio: number; lo: number; hi: number } {
  let state = seed >>> 0 || 1;
  const next = (n: number): number => {
    // xorshift32: enough for resampling indices
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % n;
  };
  const mean = (xs: readonly number[]): number => xs.reduce((x, y) => x + y, 0) / xs.length;
  const draw = (xs: readonly number[]): number => {
    let sum = 0;
    for (let i = 0; i < xs.length; i++) sum += xs[next(xs.length)]!;
    return sum / xs.length;
  };
  const rs: number[] = [];
  for (let i = 0; i < resamples; i++) rs.push(draw(a) / draw(b));
  rs.sort((x, y) => x - y);
  return { ratio: mean(a) / mean(b), lo: rs[Math.floor(resamples * 0.025)]!, hi: rs[Math.floor(resamples * 0.975)]! };
}
