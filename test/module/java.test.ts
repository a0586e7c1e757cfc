// Java through PKCS#11 (issue 11, item 3): SunPKCS11 makes every CKA_TRUSTED
// certificate of a module a trust anchor, and Java's PKIX ignores a trust
// anchor's NameConstraints. Over ncfence, R' (CKA_TRUSTED for p11-kit
// consumers) would be R itself to Java: a public CA's .bit certificate was
// accepted. The module now presents nothing as CKA_TRUSTED inside a JVM, so
// Java trusts nothing through it (closed, with a warning). No set of PKCS#11
// objects can fence Java: it needs an anchor on every path and ignores that
// anchor's constraints (docs/security-model.md). Control: the same client over
// the plain upstream accepts both names, so the client can tell the cases apart.

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { startOpensslServer } from '../helpers/nss.js';
import { MODULE as BUILT_MODULE, P11KIT_TRUST, ROOT, UPSTREAM_SHIM } from '../helpers/paths.js';

const MODULE = process.env.NCFENCE_TEST_MODULE ?? BUILT_MODULE;
import { requireTool, run, runOk } from '../helpers/run.js';

let dir: string;
let pki: TestPki;
let config: string;

test.before(async () => {
  for (const tool of ['java', 'javac']) await requireTool(tool);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-java-'));
  await runOk('javac', ['-d', dir, join(ROOT, 'test/fixtures/JavaTls.java')], { timeoutMs: 120_000 });
  pki = await makeTestPki(['www.example.com', 'www.example.bit']);
  config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out'), policyFile: join(ROOT, 'rules/p11-kit.json') })).config;
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function javaTls(module: string, host: string, env: NodeJS.ProcessEnv) {
  const leaf = pki.leaves.get(host)!;
  const server = await startOpensslServer(leaf.certFile, leaf.keyFile, pki.interFile);
  try {
    const r = await run('java', ['-cp', dir, 'JavaTls', module, host, String(server.port)], { env, timeoutMs: 60_000 });
    return { ...r, accepted: /^accepted$/m.test(r.stdout), anchors: Number(/^anchors (\d+)$/m.exec(r.stdout)?.[1] ?? -1) };
  } finally {
    server.stop();
  }
}

test.serial('Java over ncfence through SunPKCS11: no anchor, so a public CA cannot vouch for .bit (nor anything: closed, said once)', async (t) => {
  const env = { ...process.env, NCFENCE_CONFIG: config };
  for (const host of ['www.example.bit', 'www.example.com']) {
    const r = await javaTls(MODULE, host, env);
    t.is(r.anchors, 0, r.stdout + r.stderr);
    t.false(r.accepted, `${host}: ${r.stdout}`);
    t.regex(r.stderr, /the host is a Java VM, whose PKIX ignores the name constraints of a trust anchor; ncfence presents no certificate as CKA_TRUSTED/);
  }
});

test.serial('control: Java over the plain upstream accepts both names (the client tells them apart)', async (t) => {
  const env = { ...process.env, NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${pki.trustDir}` };
  for (const host of ['www.example.bit', 'www.example.com']) {
    const r = await javaTls(UPSTREAM_SHIM, host, env);
    t.true(r.anchors > 0, r.stdout + r.stderr);
    t.true(r.accepted, `${host}: ${r.stdout}${r.stderr}`);
  }
});
