// The first start after an update: what a consumer waits while the module
// rebuilds a view that an update made stale (addon/rebuild.c), against the
// same start with a fresh view, interleaved round by round in one run.
//
//   node --import tsx bench/update.bench.ts [--out FILE] [--quick]
//
// Cases: the system CKBI (the nss target) and p11-kit-trust over the
// system's CA store (the p11-kit target), each consumed by NSS (`certutil -L`
// listing every certificate with its trust, through the module), and Firefox
// ESR 153 with its own roots (start-up to "roots loaded", read from inside
// it). Each is measured in place (the consumer owns the install: root) and
// in the user's own directory (uid 65534 consuming root's install). An
// update is stood in for by touching the install's policy copy: the stamp
// changes, and the rebuild does everything an upstream update makes it do
// (read upstream, fence, write). Budget (issue "Keep the fence through
// routine updates"): 1.5 s added, once.
//
// Needs `npm run build`, setpriv (util-linux) and Firefox ESR.

import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { build } from '../src/compile/build.js';
import { P11KIT_TRUST, packageRebuild, rebuildKeys } from '../src/install/common.js';
import { readBrowserRoots } from '../src/browser/probe.js';
import { CKBI, CLI, MODULE, ROOT, machineInfo, parseArgs, round, sh, stats, writeJsonAtomic, type Stats } from './lib.js';

const USER = 65534;
const BUDGET_MS = 1500;

const args = parseArgs('update');
const n = args.quick ? 3 : 11;
const nBrowser = args.quick ? 2 : 7;
const dir = mkdtempSync('/tmp/ncfence-bench-update-');
chmodSync(dir, 0o755);

/** Makes the view stale as an update would (the stamp covers the policy's mtime). */
function touch(file: string): void {
  const t = new Date(Date.now() + Math.floor(Math.random() * 1e6));
  utimesSync(file, t, t);
}

interface Case {
  fresh: Stats;
  stale: Stats;
  /** stale - fresh, paired round by round. */
  added: Stats;
  withinBudget: boolean;
}

/** `rounds` pairs of starts: one with a fresh view, then the first after an update (`policy` touched); and what the second adds. */
async function freshThenStale(rounds: number, policy: string, start: () => number | Promise<number>): Promise<Case> {
  const fresh: number[] = [];
  const stale: number[] = [];
  for (let k = 0; k < rounds; k++) {
    fresh.push(await start());
    touch(policy);
    stale.push(await start());
  }
  const added = stale.map((s, i) => s - fresh[i]!);
  const a = round(stats(added));
  return { fresh: round(stats(fresh)), stale: round(stats(stale)), added: a, withinBudget: a.p50 <= BUDGET_MS };
}

/** A root-owned install over `upstream`, with the package's rebuild command; its NSS database, for root and for the user. */
async function moduleInstall(name: string, upstream: string, policy: string): Promise<{ config: string; policy: string; dbRoot: string; dbUser: string; home: string }> {
  const d = join(dir, name);
  mkdirSync(d, { mode: 0o755 });
  const policyCopy = join(d, 'policy.json');
  copyFileSync(policy, policyCopy);
  const b = await build({ upstream, upstreamParams: '', outDir: d, policyFile: policyCopy, ...rebuildKeys(packageRebuild()) });
  const home = join(d, 'home');
  mkdirSync(home);
  chownSync(home, USER, USER);
  const dbs: string[] = [];
  for (const who of ['root', 'user']) {
    const db = join(d, `db-${who}`);
    mkdirSync(db);
    sh('certutil', ['-N', '--empty-password', '-d', `sql:${db}`]);
    sh('modutil', ['-dbdir', `sql:${db}`, '-add', 'ncfence', '-libfile', MODULE, '-force'], { ...process.env, NCFENCE_CONFIG: '/nonexistent' });
    if (who === 'user') sh('chown', ['-R', `${USER}:${USER}`, db]);
    dbs.push(db);
  }
  return { config: b.config, policy: policyCopy, dbRoot: dbs[0]!, dbUser: dbs[1]!, home };
}

/** One NSS consumer start: certutil listing every certificate and its trust through the module. */
function certutil(i: Awaited<ReturnType<typeof moduleInstall>>, asUser: boolean): number {
  const base = ['env', '-i', 'PATH=/usr/bin:/bin', `NCFENCE_CONFIG=${i.config}`];
  const cmd = asUser
    ? ['setpriv', `--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', ...base, `HOME=${i.home}`, 'certutil', '-L', '-h', 'all', '-d', `sql:${i.dbUser}`]
    : [...base, `HOME=${join(dir, 'root-home')}`, 'certutil', '-L', '-h', 'all', '-d', `sql:${i.dbRoot}`];
  const t = performance.now();
  const out = sh(cmd[0]!, cmd.slice(1));
  const ms = performance.now() - t;
  if (!out.includes('ncfence anchor for ')) throw new Error(`the consumer did not get a fenced view:\n${out.slice(-2000)}`);
  return ms;
}

function moduleCase(i: Awaited<ReturnType<typeof moduleInstall>>, asUser: boolean): Promise<Case> {
  certutil(i, asUser); // warm the page cache, and a fresh view for the user
  return freshThenStale(n, i.policy, () => certutil(i, asUser));
}

async function browserCase(asUser: boolean): Promise<Case> {
  const ff = join(dir, asUser ? 'firefox-user' : 'firefox-root');
  sh('cp', ['-al', '/usr/lib/firefox-esr', ff]);
  sh(process.execPath, [CLI, 'install', 'firefox', '--dir', ff], { ...process.env, NCFENCE_CONFIG: '', NCFENCE_SYSTEM_ROOT: join(dir, 'system-root') });
  const home = join(dir, asUser ? 'ff-home-user' : 'ff-home-root');
  mkdirSync(home);
  if (asUser) chownSync(home, USER, USER);
  const start = async (): Promise<number> =>
    (await readBrowserRoots(ff, { stock: false, allowRebuild: true, timeoutMs: 60_000, ...(asUser ? { uid: USER } : {}), env: { HOME: home, XDG_CACHE_HOME: join(home, '.cache') } })).millis;
  await start();
  return freshThenStale(nBrowser, join(ff, 'ncfence-policy.json'), start);
}

try {
  mkdirSync(join(dir, 'root-home'));
  mkdirSync(join(dir, 'system-root'));
  const ckbi = await moduleInstall('nss', CKBI, join(ROOT, 'rules/nss.json'));
  const p11kit = await moduleInstall('p11-kit', P11KIT_TRUST, join(ROOT, 'rules/p11-kit.json'));
  const cases: Record<string, Case> = {
    'nss, in place (root)': await moduleCase(ckbi, false),
    "nss, the user's own view": await moduleCase(ckbi, true),
    'p11-kit, in place (root)': await moduleCase(p11kit, false),
    "p11-kit, the user's own view": await moduleCase(p11kit, true),
    'Firefox ESR 153, in place (root)': await browserCase(false),
    "Firefox ESR 153, the user's own view": await browserCase(true),
  };
  const result = {
    bench: 'update',
    machine: machineInfo(),
    rounds: { modules: n, browser: nBrowser },
    budgetMs: BUDGET_MS,
    what: 'first start after an update (stale view, rebuilt by the module) minus the same start with a fresh view, paired round by round; milliseconds',
    cases,
  };
  writeJsonAtomic(args.out, result);
  for (const [name, c] of Object.entries(cases)) {
    process.stdout.write(`${name.padEnd(38)} fresh p50 ${String(c.fresh.p50).padStart(6)} ms   stale p50 ${String(c.stale.p50).padStart(6)} ms   added p50 ${String(c.added.p50).padStart(6)} ms, p95 ${String(c.added.p95).padStart(6)} ms  ${c.withinBudget ? 'within' : 'OVER'} ${BUDGET_MS} ms\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
