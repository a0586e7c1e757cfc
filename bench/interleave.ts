// Times whole processes interleaved, round by round, and compares each with
// the last one given (the baseline): how the build process before and after
// a change compares with the floor process in one run (issue 21).
//
//   node --import tsx bench/interleave.ts ROUNDS -- NAME CMD ARGS... -- NAME CMD ARGS... [-- ...]
//
// Each round runs every command once, in the order given, output discarded,
// NCFENCE_CONFIG emptied. Prints, per command, the median, p95 and minimum
// wall time (fork to exit) and median / median of the baseline, and writes
// nothing. It only measures.

import { spawnSync } from 'node:child_process';
import { median, stats } from './lib.js';

const argv = process.argv.slice(2);
const rounds = Number(argv[0]);
const groups: { name: string; cmd: string[] }[] = [];
for (const a of argv.slice(1)) {
  if (a === '--') groups.push({ name: '', cmd: [] });
  else if (groups.length > 0 && groups.at(-1)!.name === '') groups.at(-1)!.name = a;
  else if (groups.length > 0) groups.at(-1)!.cmd.push(a);
}
if (!(Number.isInteger(rounds) && rounds > 0) || groups.length < 2 || groups.some((g) => g.cmd.length === 0)) {
  process.stderr.write('usage: node --import tsx bench/interleave.ts ROUNDS -- NAME CMD ARGS... -- NAME CMD ARGS... (the last is the baseline)\n');
  process.exit(2);
}

const wall = groups.map((): number[] => []);
for (let r = 0; r < rounds; r++) {
  groups.forEach((g, k) => {
    const t = performance.now();
    const run = spawnSync(g.cmd[0]!, g.cmd.slice(1), { stdio: 'ignore', env: { ...process.env, NCFENCE_CONFIG: '' } });
    const ms = performance.now() - t;
    if (run.status !== 0) throw new Error(`${g.name}: ${g.cmd.join(' ')} exited with ${run.status ?? run.signal}`);
    wall[k]!.push(ms);
  });
}
const base = median(wall.at(-1)!);
groups.forEach((g, k) => {
  const s = stats(wall[k]!);
  process.stdout.write(`${g.name.padEnd(12)} median ${median(wall[k]!).toFixed(0).padStart(5)} ms  p95 ${s.p95.toFixed(0).padStart(5)}  min ${s.min.toFixed(0).padStart(5)}  ${(median(wall[k]!) / base).toFixed(2)}x\n`);
});
process.stdout.write(`${rounds} rounds, interleaved in the order given\n`);
