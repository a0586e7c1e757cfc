// Generic PKCS#11 tools list the module without errors: GnuTLS's p11tool and
// OpenSC's pkcs11-tool, over the system CKBI, and pkcs11-tool over the
// system p11-kit-trust too.

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, type BuildResult } from '../../src/compile/build.js';
import { MODULE, P11KIT_TRUST, SYSTEM_CKBI } from '../helpers/paths.js';
import { requireTool, runOk } from '../helpers/run.js';

let dir: string;
let result: BuildResult;
let env: NodeJS.ProcessEnv;
test.before(async () => {
  for (const tool of ['p11tool', 'pkcs11-tool']) await requireTool(tool);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-tools-'));
  result = await build({ upstream: SYSTEM_CKBI, upstreamParams: '', outDir: dir });
  env = { ...process.env, NCFENCE_CONFIG: result.config };
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const count = (s: string, re: RegExp): number => s.match(re)?.length ?? 0;

test('p11tool lists every certificate, and only anchors and cross-certificates as trusted', async (t) => {
  const fenced = result.summary.rootsFenced;
  const all = await runOk('p11tool', ['--provider', MODULE, '--list-all'], { env });
  const upstreamCerts = await runOk('p11tool', ['--provider', SYSTEM_CKBI, '--list-all']);
  t.is(count(all.stdout, /Type: X\.509 Certificate/g), count(upstreamCerts.stdout, /Type: X\.509 Certificate/g) + 2 * fenced);
  t.notRegex(all.stderr, /error/i);
  // GnuTLS takes anchors from CKA_TRUSTED: R' and L(R), never R.
  const trusted = await runOk('p11tool', ['--provider', MODULE, '--list-all-trusted'], { env });
  t.is(count(trusted.stdout, /Type: X\.509 Certificate/g), 2 * fenced);
});

test('pkcs11-tool lists every object', async (t) => {
  const r = await runOk('pkcs11-tool', ['--module', MODULE, '-O'], { env });
  const direct = await runOk('pkcs11-tool', ['--module', SYSTEM_CKBI, '-O']);
  t.is(count(r.stdout, /Certificate Object/g), count(direct.stdout, /Certificate Object/g) + 2 * result.summary.rootsFenced);
  t.notRegex(r.stderr, /error/i);
});

// pkcs11-tool calls C_Initialize(NULL), i.e. single-threaded use with no
// flags. p11-kit-trust refuses an argument structure without
// CKF_OS_LOCKING_OK, so ncfence must not pass the caller's zero flags on:
// it did, and the view went closed with a misleading warning.
test('pkcs11-tool over the system p11-kit-trust sees the anchors, with no warning', async (t) => {
  const p11dir = mkdtempSync(join(tmpdir(), 'ncfence-tools-p11-'));
  try {
    const p11 = await build({ upstream: P11KIT_TRUST, upstreamParams: '', outDir: p11dir });
    t.true(p11.summary.rootsFenced > 0, 'the system p11-kit-trust has trusted roots to fence');
    const r = await runOk('pkcs11-tool', ['--module', MODULE, '-O'], { env: { ...process.env, NCFENCE_CONFIG: p11.config } });
    t.notRegex(r.stderr, /WARNING|error/i, r.stderr);
    t.regex(r.stdout, /label:\s+ncfence anchor for /);
  } finally {
    rmSync(p11dir, { recursive: true, force: true });
  }
});

test('a tool the tests need that is missing fails the suite, naming the Debian package to install', async (t) => {
  const e = await t.throwsAsync(requireTool('certutil', '/nonexistent'));
  t.is(e?.message, 'certutil is not installed: sudo apt-get install libnss3-tools (.ci/run installs every tool the tests use)');
});
