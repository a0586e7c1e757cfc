// The module inside a setuid program (issue: "No way around the fence",
// item 5). The invoker (uid 65534) runs a setuid-root copy of the native
// harness: the environment is theirs, the privileges are not. The module
// must not take its configuration from that environment, must start no
// process (rebuild, service), and must only talk to a service run by the
// user the process acts as (its effective uid). A control runs the same
// harness without setuid, where the environment is honoured: the test's
// attack would work if the module read it.

import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHarness } from '../helpers/native.js';
import { MODULE, ROOT, SYSTEM_CKBI } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

const NOBODY = 65534;
const MODULE_UNDER_TEST = process.env.NCFENCE_TEST_MODULE ?? MODULE;
let dir: string;
let harness: string;
let setuidHarness: string;

test.before(async () => {
  await requireTool('setpriv');
  await requireTool('gcc');
  dir = mkdtempSync(join(tmpdir(), 'ncfence-priv-'));
  chmodSync(dir, 0o755);
  harness = await buildHarness(dir, 'plain');
  chmodSync(harness, 0o755);
  setuidHarness = join(dir, 'harness-setuid');
  copyFileSync(harness, setuidHarness);
  chownSync(setuidHarness, 0, 0);
  chmodSync(setuidHarness, 0o4755);
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A root-owned directory holding a copy of the module and, optionally, ncfence.conf beside it. */
function moduleDir(name: string, config?: string): string {
  const d = join(dir, name);
  mkdirSync(d, { mode: 0o755 });
  copyFileSync(MODULE_UNDER_TEST, join(d, 'libncfence.so'));
  chmodSync(join(d, 'libncfence.so'), 0o755);
  if (config !== undefined) writeFileSync(join(d, 'ncfence.conf'), config, { mode: 0o644 });
  return d;
}

/** A directory the invoker owns, as an attacker's would be. */
function invokerDir(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { mode: 0o755 });
  chownSync(d, NOBODY, NOBODY);
  return d;
}

/** A script that records that it ran, and as whom. */
function marker(d: string, name: string): { script: string; file: string } {
  const file = join(d, `${name}.ran`);
  const script = join(d, `${name}.sh`);
  writeFileSync(script, `#!/bin/sh\nid -u > ${file}\n`, { mode: 0o755 });
  return { script, file };
}

const baseConfig = (view: string): string => `upstream = ${SYSTEM_CKBI}\nupstream-params =\nview = ${view}\npolicy = ${join(ROOT, 'rules/default.json')}\n`;

/** Runs `harness livestart MODULE 1` as uid 65534: one Namecoin lookup after C_Initialize. */
function asInvoker(bin: string, moduleFile: string, env: NodeJS.ProcessEnv) {
  return run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'env', '-i', `PATH=/usr/bin:/bin`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), bin, 'livestart', moduleFile, '1'], { timeoutMs: 60_000 });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('setuid: NCFENCE_CONFIG from the invoker is ignored, so its rebuild command never runs as root', async (t) => {
  const mine = invokerDir('attacker');
  const evil = marker(mine, 'evil');
  const evilConfig = join(mine, 'evil.conf');
  writeFileSync(evilConfig, `${baseConfig(join(mine, 'missing.ncfv'))}rebuild = ${evil.script}\n`);
  const m = moduleDir('no-config');

  // Control: the same harness without setuid honours the variable and runs the command (as the invoker).
  const plain = await asInvoker(harness, join(m, 'libncfence.so'), { NCFENCE_CONFIG: evilConfig });
  t.regex(plain.stderr, /running .*evil\.sh to rebuild it/, plain.stderr);
  t.is(readFileSync(evil.file, 'utf8').trim(), String(NOBODY));
  rmSync(evil.file);

  const r = await asInvoker(setuidHarness, join(m, 'libncfence.so'), { NCFENCE_CONFIG: evilConfig });
  await pause(200);
  t.false(existsSync(evil.file), `the invoker's rebuild command ran as uid ${existsSync(evil.file) ? readFileSync(evil.file, 'utf8').trim() : '-'}`);
  t.regex(r.stderr, /no configuration/);
});

test.serial("setuid: a stale view is not rebuilt, even with the owner's own rebuild command", async (t) => {
  const m = join(dir, 'rebuild');
  mkdirSync(m, { mode: 0o755 });
  const own = marker(m, 'rebuild');
  moduleDirInto(m, `${baseConfig(join(m, 'missing.ncfv'))}rebuild = ${own.script}\n`);
  const r = await asInvoker(setuidHarness, join(m, 'libncfence.so'), {});
  await pause(200);
  t.false(existsSync(own.file), 'the rebuild command ran inside a setuid program');
  t.regex(r.stderr, /not running .*rebuild\.sh to rebuild it: this process runs with elevated privileges/);
});

test.serial('setuid: the .bit service is not started by the module', async (t) => {
  const m = join(dir, 'service-start');
  mkdirSync(m, { mode: 0o755 });
  const start = marker(m, 'start');
  moduleDirInto(m, `${baseConfig(join(m, 'missing.ncfv'))}service = ${join(m, 'none.sock')}\nservice-command = ${start.script}\nservice-timeout-ms = 300\n`);
  const r = await asInvoker(setuidHarness, join(m, 'libncfence.so'), {});
  await pause(300);
  t.false(existsSync(start.file), 'the service command ran inside a setuid program');
  t.regex(r.stderr, /not starting the \.bit service .*elevated privileges/);
});

test.serial("setuid: a service run by the invoker is not asked (the peer must be the effective uid)", async (t) => {
  const mine = invokerDir('service-owner');
  const socket = join(mine, 's.sock');
  const received = join(mine, 'received');
  // The invoker's own "service": records whatever a client sends.
  const svc: ChildProcess = spawn(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e',
      `require('net').createServer((c) => c.on('data', (d) => require('fs').appendFileSync(${JSON.stringify(received)}, d))).listen(${JSON.stringify(socket)})`],
    { stdio: 'ignore' },
  );
  try {
    for (let i = 0; i < 100 && !existsSync(socket); i++) await pause(50);
    t.true(existsSync(socket), 'the invoker service is listening');
    const m = join(dir, 'service-peer');
    mkdirSync(m, { mode: 0o755 });
    moduleDirInto(m, `${baseConfig(join(m, 'missing.ncfv'))}service = ${socket}\nservice-timeout-ms = 500\n`);
    // Control: not setuid, the invoker's service is the invoker's own and is asked.
    await asInvoker(harness, join(m, 'libncfence.so'), {});
    await pause(200);
    t.true(existsSync(received) && readFileSync(received).length > 0, 'control: the service was asked');
    rmSync(received, { force: true });
    const r = await asInvoker(setuidHarness, join(m, 'libncfence.so'), {});
    await pause(200);
    t.false(existsSync(received), 'a setuid-root process sent a lookup to a service run by its invoker');
    t.regex(r.stderr, /is not run by this user; ignoring it/);
  } finally {
    svc.kill('SIGKILL');
  }
});

function moduleDirInto(d: string, config: string): void {
  copyFileSync(MODULE_UNDER_TEST, join(d, 'libncfence.so'));
  chmodSync(join(d, 'libncfence.so'), 0o755);
  writeFileSync(join(d, 'ncfence.conf'), config, { mode: 0o644 });
}
