// The cost of two forms of R' (rules/p11-kit.json, excludedForNss): every
// search of a view that holds them asks which form the process gets
// (addon/host.c: one dl_iterate_phdr call while the set of loaded objects
// is unchanged). FindObjects by subject over the system CKBI through
// ncfence, with the p11-kit policy (two forms) against the same policy
// without excludedForNss (one form), interleaved in one run; each in a
// process with no known verifier (NSS form) and with GnuTLS preloaded
// (plain form). The timing loop is native (bench/native/pkcs11bench.c).
//
//   node --import tsx bench/forms.bench.ts [--out FILE] [--quick]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../src/compile/build.js';
import { CKBI, MODULE, ROOT, compileNative, fmt, machineInfo, meanRatioCI, median, parseArgs, writeJsonAtomic } from './lib.js';

const GNUTLS = '/usr/lib/x86_64-linux-gnu/libgnutls.so.30';
type Run = { find: { median_ns: number; p95_ns: number }; certificates: number };

const args = parseArgs('forms');
const rounds = args.quick ? 3 : 30;
const dir = mkdtempSync(join(tmpdir(), 'ncfence-bench-forms-'));
try {
  const bench = compileNative('pkcs11bench', dir);
  const twoPolicy = join(ROOT, 'rules/p11-kit.json');
  const onePolicy = join(dir, 'p11-kit-one-form.json');
  const doc = JSON.parse(readFileSync(twoPolicy, 'utf8')) as Record<string, unknown>;
  delete doc.excludedForNss;
  writeFileSync(onePolicy, JSON.stringify(doc));
  const two = await build({ upstream: CKBI, upstreamParams: '', outDir: join(dir, 'two'), policyFile: twoPolicy });
  const one = await build({ upstream: CKBI, upstreamParams: '', outDir: join(dir, 'one'), policyFile: onePolicy });

  const runWith = (config: string, preload: boolean) => (): Run =>
    JSON.parse(execFileSync(bench, [MODULE], { encoding: 'utf8', env: { ...process.env, NCFENCE_CONFIG: config, ...(preload ? { LD_PRELOAD: GNUTLS } : {}) } })) as Run;
  const subjects: Record<string, () => Run> = {
    'one form': runWith(one.config, false),
    'two forms, NSS form': runWith(two.config, false),
    'one form, GnuTLS loaded': runWith(one.config, true),
    'two forms, plain form (GnuTLS loaded)': runWith(two.config, true),
  };
  const runs: Record<string, Run[]> = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) for (const [name, fn] of Object.entries(subjects)) runs[name]!.push(fn());

  // As in module.bench.ts: processes here run in a fast or a slow mode, so
  // the fastest round per subject is the figure compared, with the median of
  // rounds and a bootstrap interval of the fast-mode means beside it.
  const finds = (name: string): number[] => runs[name]!.map((x) => x.find.median_ns);
  const fastest = (name: string): number => Math.min(...finds(name));
  const fast = (name: string): number[] => finds(name).filter((x) => x <= 1.25 * fastest(name));
  const summary = Object.fromEntries(Object.keys(subjects).map((k) => [k, { fastest_ns: fastest(k), median_of_rounds_ns: median(finds(k)), p95_ns: median(runs[k]!.map((x) => x.find.p95_ns)) }]));
  const nssForm = meanRatioCI(fast('two forms, NSS form'), fast('one form'));
  const plainForm = meanRatioCI(fast('two forms, plain form (GnuTLS loaded)'), fast('one form, GnuTLS loaded'));
  const ratios = {
    nss_form_vs_one_form: fastest('two forms, NSS form') / fastest('one form'),
    plain_form_vs_one_form: fastest('two forms, plain form (GnuTLS loaded)') / fastest('one form, GnuTLS loaded'),
  };
  const lines = [
    `forms bench: ${rounds} interleaved rounds, FindObjects{CLASS, SUBJECT} + FindObjects + Final over ${runs['one form']![0]!.certificates} CKBI certificates through ncfence (ns per search)`,
    ...Object.entries(summary).map(([k, s]) => `  ${k.padEnd(40)} fastest ${fmt(s.fastest_ns, 0)}  median ${fmt(s.median_of_rounds_ns, 0)}  p95 ${fmt(s.p95_ns, 0)}`),
    `  two forms / one form, NSS form:   ${ratios.nss_form_vs_one_form.toFixed(3)} (fast-mode means ${nssForm.ratio.toFixed(3)}, 95% CI ${nssForm.lo.toFixed(3)}-${nssForm.hi.toFixed(3)})`,
    `  two forms / one form, plain form: ${ratios.plain_form_vs_one_form.toFixed(3)} (fast-mode means ${plainForm.ratio.toFixed(3)}, 95% CI ${plainForm.lo.toFixed(3)}-${plainForm.hi.toFixed(3)})`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeJsonAtomic(args.out, {
    bench: 'forms',
    machine: machineInfo(),
    parameters: { rounds, upstream: CKBI, rootsFenced: two.summary.rootsFenced, viewObjects: { one: one.summary.viewObjects, two: two.summary.viewObjects } },
    summary,
    ratios,
    fastModeMeans: { nssForm, plainForm },
    runs,
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
