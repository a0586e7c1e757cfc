// `ncfence build` on the machine's real NSS built-in roots module, judged
// by certutil listing the roots through the plain CKBI and through ncfence.

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeNssDb } from '../helpers/nss.js';
import { CLI, MODULE, SYSTEM_CKBI } from '../helpers/paths.js';
import { requireTool, runOk } from '../helpers/run.js';

let dir: string;
test.before(async () => {
  await requireTool('certutil');
  dir = mkdtempSync(join(tmpdir(), 'ncfence-ckbi-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** certutil -L lines as "label<TAB>trust flags", token prefix removed. */
async function listRoots(db: string, env?: NodeJS.ProcessEnv): Promise<string[]> {
  const r = await runOk('certutil', ['-L', '-h', 'all', '-d', db], { env });
  return r.stdout
    .split('\n')
    .map((l) => /^Builtin Object Token:(.*?)\s+([CcTPpu,]*,[CcTPpu,]*,[CcTPpu]*)\s*$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]!.trim()}\t${m[2]}`);
}

const trusted = (line: string): boolean => /\t.*C/.test(line);

test('build on the system CKBI fences every trusted root and keeps the distrust record', async (t) => {
  const out = join(dir, 'out');
  const r = await runOk(process.execPath, ['--import', 'tsx', CLI, 'build', '--out', out, '--json'], { timeoutMs: 120_000 });
  const result = JSON.parse(r.stdout) as { upstream: string; config: string; summary: { rootsFenced: number; rootsDropped: unknown[]; distrustRecords: number; passedThrough: number; upstreamObjects: number; hidden: number } };
  t.is(result.upstream, SYSTEM_CKBI);

  const plain = await listRoots(await makeNssDb(join(dir, 'plain'), 'ckbi', SYSTEM_CKBI));
  const env = { ...process.env, NCFENCE_CONFIG: result.config };
  const fenced = await listRoots(await makeNssDb(join(dir, 'fenced'), 'ncfence', MODULE, '', env), env);

  const plainTrusted = plain.filter(trusted);
  const fencedTrusted = fenced.filter(trusted);
  t.true(plainTrusted.length > 100, `the system CKBI lists ${plainTrusted.length} trusted roots`);
  t.is(result.summary.rootsFenced, plainTrusted.length);
  t.deepEqual(result.summary.rootsDropped, []);
  // Through ncfence, every trust anchor is a local anchor with exactly the trust of the root it stands for.
  t.deepEqual(fencedTrusted.sort(), plainTrusted.map((l) => `ncfence anchor for ${l}`).sort());
  // Explicit distrust records (DigiNotar on this machine) pass through untouched.
  const distrusted = plain.filter((l) => /\tp,p,p$/.test(l));
  t.is(distrusted.length, result.summary.distrustRecords);
  t.true(distrusted.length >= 1);
  for (const l of distrusted) t.true(fenced.includes(l), `${l} must stay distrusted`);
  // Every original root is still listed, none of them trusted.
  const originalNames = plain.map((l) => l.split('\t')[0]);
  for (const name of originalNames) t.true(fenced.some((l) => l.startsWith(`${name}\t`) && !trusted(l)), `${name} listed without trust`);
  t.log(
    `system CKBI: ${result.summary.upstreamObjects} objects, ${plain.length} certificates, ${plainTrusted.length} trusted; ` +
      `fenced ${result.summary.rootsFenced}, distrust records kept ${distrusted.length}, hidden ${result.summary.hidden}`,
  );
});
