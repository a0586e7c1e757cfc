// `ncfence install nss` in a disposable root: dpkg-divert moves the roots
// module aside and ncfence takes its name. The disposable root's
// "libnssckbi.so" is a copy of p11-kit-trust serving the test's fake public
// root (a CKBI stand-in whose parameters the install passes on). Judged by
// tstclnt and vfychain; uninstall must restore the file byte for byte.

import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { makeNssDb, startOpensslServer, tstclnt, vfychain } from '../helpers/nss.js';
import { CLI, MODULE, P11KIT_TRUST } from '../helpers/paths.js';
import { requireTool, run, runOk } from '../helpers/run.js';

const LIB = 'usr/lib/x86_64-linux-gnu';
let pki: TestPki;
let root: string;
const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

test.before(async () => {
  for (const tool of ['dpkg-divert', 'tstclnt', 'vfychain']) await requireTool(tool);
  pki = await makeTestPki(['www.example.com', 'www.example.bit']);
  root = mkdtempSync(join(tmpdir(), 'ncfence-nss-root-'));
  mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  mkdirSync(join(root, LIB), { recursive: true });
  copyFileSync(P11KIT_TRUST, join(root, LIB, 'libnssckbi.so'));
});
test.after.always(() => {
  pki?.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
});

const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeoutMs: 120_000 });

test.serial('install nss diverts the roots module, NSS tools see the fenced view, uninstall restores it', async (t) => {
  const ckbi = join(root, LIB, 'libnssckbi.so');
  const original = sha(ckbi);
  const inst = await cli(['install', 'nss', '--root', root, '--upstream-params', `paths=${pki.trustDir}`]);
  t.is(inst.code, 0, inst.stderr);
  t.is(sha(ckbi), sha(MODULE), 'the module now has the roots module\'s name');
  t.is(sha(join(root, LIB, 'libnssckbi.so.ncfence-orig')), original, 'the original moved aside intact');
  const list = await runOk('dpkg-divert', ['--root', root, '--list']);
  t.regex(list.stdout, /local diversion of \/usr\/lib\/x86_64-linux-gnu\/libnssckbi\.so to \/usr\/lib\/x86_64-linux-gnu\/libnssckbi\.so\.ncfence-orig/);

  // Programs load the module by its usual name; its configuration is the system one (under the root).
  const env = { ...process.env, NCFENCE_CONFIG: join(root, 'etc/ncfence/ncfence.conf') };
  for (const host of ['www.example.com', 'www.example.bit']) {
    const leaf = pki.leaves.get(host)!;
    const server = await startOpensslServer(leaf.certFile, leaf.keyFile, pki.interFile);
    try {
      const v = await tstclnt(server.port, host, { module: ckbi }, env);
      t.is(v.ok, host.endsWith('.com'), v.output);
      if (host.endsWith('.bit')) t.regex(v.output, /SEC_ERROR_CERT_NOT_IN_NAME_SPACE/);
    } finally {
      server.stop();
    }
  }
  const db = await makeNssDb(join(root, 'nssdb'), 'roots', ckbi, '', env);
  t.true((await vfychain(db, pki.leaves.get('www.example.com')!.certFile, pki.interFile, false, env)).ok);
  const bit = await vfychain(db, pki.leaves.get('www.example.bit')!.certFile, pki.interFile, false, env);
  t.false(bit.ok);
  t.regex(bit.output, /ERROR -8080/);

  // status and doctor look under the same --root.
  const st = JSON.parse((await cli(['status', '--json', '--root', root])).stdout) as { target: string; location: string; viewState: string }[];
  t.like(st.find((r) => r.target === 'nss'), { location: root, viewState: 'fresh' });
  const doc = await cli(['doctor', '--root', root, '--no-firefox']);
  t.regex(doc.stdout, new RegExp(`^nss at ${root}\n {2}ok {3}module file`, 'm'));
  // The install's own copy of the nss policy (bit., every IP address excluded).
  t.regex(readFileSync(join(root, 'etc/ncfence/ncfence.conf'), 'utf8'), /^policy = .*\/var\/lib\/ncfence\/nss\/policy\.json$/m);

  const un = await cli(['uninstall', 'nss', '--root', root]);
  t.is(un.code, 0, un.stderr);
  t.is(sha(ckbi), original, 'restored byte for byte');
  t.false(existsSync(join(root, LIB, 'libnssckbi.so.ncfence-orig')));
  t.false(existsSync(join(root, 'etc/ncfence/ncfence.conf')));
  for (const d of ['etc/ncfence', 'var/lib/ncfence/nss', 'var/lib/ncfence']) t.false(existsSync(join(root, d)), `${d} is left behind, empty`);
  t.is((await runOk('dpkg-divert', ['--root', root, '--list'])).stdout.trim(), '');
});

test.serial('install nss refuses a roots module someone else diverted', async (t) => {
  const ckbi = join(root, LIB, 'libnssckbi.so');
  await runOk('dpkg-divert', ['--root', root, '--local', '--rename', '--divert', `/${LIB}/libnssckbi.so.other`, '--add', `/${LIB}/libnssckbi.so`]);
  try {
    const r = await cli(['install', 'nss', '--root', root]);
    t.is(r.code, 2);
    t.regex(r.stderr, /already diverted to \/usr\/lib\/x86_64-linux-gnu\/libnssckbi\.so\.other by someone else/);
  } finally {
    await runOk('dpkg-divert', ['--root', root, '--local', '--rename', '--divert', `/${LIB}/libnssckbi.so.other`, '--remove', `/${LIB}/libnssckbi.so`]);
  }
  t.true(existsSync(ckbi));
});
