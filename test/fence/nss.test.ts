// ncfence wrapping a fake "public" hierarchy served by p11-kit-trust,
// judged by NSS's own verifiers (classic and libpkix) and by tstclnt against
// a real TLS server; the same checks on the plain upstream are the control.

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { makeNssDb, startOpensslServer, tstclnt, vfychain } from '../helpers/nss.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';
import { requireTool } from '../helpers/run.js';

const NAMES = ['www.example.com', 'www.example.bit'] as const;

interface Ctx {
  pki: TestPki;
  dir: string;
  env: NodeJS.ProcessEnv;
  fencedDb: string;
  controlDb: string;
}
let ctx: Ctx;

test.before(async () => {
  for (const tool of ['openssl', 'certutil', 'modutil', 'vfychain', 'tstclnt']) await requireTool(tool);
  const pki = await makeTestPki(NAMES);
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-nss-'));
  const params = `paths=${pki.trustDir}`;
  const result = await build({ upstream: P11KIT_TRUST, upstreamParams: params, outDir: join(dir, 'out') });
  const env = { ...process.env, NCFENCE_CONFIG: result.config };
  ctx = {
    pki,
    dir,
    env,
    fencedDb: await makeNssDb(join(dir, 'fenced'), 'ncfence', MODULE, '', env),
    controlDb: await makeNssDb(join(dir, 'control'), 'upstream', P11KIT_TRUST, params),
  };
});

test.after.always(() => {
  ctx?.pki.cleanup();
  if (ctx) rmSync(ctx.dir, { recursive: true, force: true });
});

const cases = [
  { name: '.com chain accepted through ncfence', host: 'www.example.com', fenced: true, ok: true },
  { name: '.bit chain refused through ncfence', host: 'www.example.bit', fenced: true, ok: false },
  { name: 'control: plain upstream accepts .com', host: 'www.example.com', fenced: false, ok: true },
  { name: 'control: plain upstream accepts .bit', host: 'www.example.bit', fenced: false, ok: true },
] as const;

for (const c of cases) {
  test(`vfychain classic: ${c.name}`, async (t) => {
    const leaf = ctx.pki.leaves.get(c.host)!;
    const v = await vfychain(c.fenced ? ctx.fencedDb : ctx.controlDb, leaf.certFile, ctx.pki.interFile, false, ctx.env);
    t.is(v.ok, c.ok, v.output);
    // The classic verifier names the reason: the fenced root's name constraint.
    if (!c.ok) t.regex(v.output, /ERROR -8080/, v.output);
  });

  test(`vfychain libpkix (-pp): ${c.name}`, async (t) => {
    const leaf = ctx.pki.leaves.get(c.host)!;
    const v = await vfychain(c.fenced ? ctx.fencedDb : ctx.controlDb, leaf.certFile, ctx.pki.interFile, true, ctx.env);
    // libpkix backtracks to the unfenced R after R' fails and then reports
    // R as untrusted (-8172): still a refusal, with a different message.
    t.is(v.ok, c.ok, v.output);
  });

  test(`tstclnt against a TLS server: ${c.name}`, async (t) => {
    const leaf = ctx.pki.leaves.get(c.host)!;
    const server = await startOpensslServer(leaf.certFile, leaf.keyFile, ctx.pki.interFile);
    try {
      // tstclnt -R cannot pass module parameters, so the control uses the database.
      const roots = c.fenced ? { module: MODULE } : { db: ctx.controlDb };
      const v = await tstclnt(server.port, c.host, roots, ctx.env);
      t.is(v.ok, c.ok, v.output);
      if (!c.ok) t.regex(v.output, /SEC_ERROR_CERT_NOT_IN_NAME_SPACE/);
    } finally {
      server.stop();
    }
  });
}
