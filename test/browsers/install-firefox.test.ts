// `ncfence install firefox` into a copy of the Firefox ESR install
// directory, judged by headless Firefox; `doctor` and `status` on it;
// `uninstall` restoring the directory exactly; and the refusals.

import test from 'ava';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIREFOX_ESR140_DIR, FIREFOX_INSTALL_DIR, copyFirefoxInstall, probeUrls, requireFirefoxEsr140 } from '../helpers/firefox.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { CLI, DIST_CLI, P11KIT_TRUST, ROOT } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';
import { startTlsServer, type TlsServer } from '../helpers/tlsServer.js';
import { treeDigest } from '../helpers/tree.js';

const HOSTS = ['www.example.com', 'www.example.bit'];
let pki: TestPki;
let dir: string;
const servers = new Map<string, TlsServer>();

test.before(async () => {
  for (const tool of ['firefox-esr', 'setpriv']) await requireTool(tool);
  requireFirefoxEsr140();
  pki = await makeTestPki(HOSTS);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-install-ff-'));
  for (const host of HOSTS) {
    const leaf = pki.leaves.get(host)!;
    servers.set(host, await startTlsServer({ certChainPem: leaf.chainPem, keyPem: leaf.keyPem }));
  }
});
test.after.always(async () => {
  for (const s of servers.values()) await s.close();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeoutMs: 120_000, env: { ...env, NCFENCE_CONFIG: '' } });
const url = (host: string): string => `https://${host}:${servers.get(host)!.port}/install-${host}.js`;
const upstream = (): string[] => ['--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`];

for (const [name, src] of [['Firefox ESR 153', FIREFOX_INSTALL_DIR], ['Firefox ESR 140', FIREFOX_ESR140_DIR]] as const) test.serial(`${name}: install, Firefox, doctor, status, uninstall: the directory comes back byte for byte`, async (t) => {
  const ff = join(dir, name.replace(/\W+/g, '-'));
  const firefox = await copyFirefoxInstall(ff, undefined, src);
  const before = treeDigest(ff);

  const systemBefore = treeDigest(src);
  const inst = await cli(['install', 'firefox', '--firefox-dir', ff, ...upstream()]);
  t.is(inst.code, 0, inst.stderr);
  t.regex(inst.stdout, /installed firefox: module .*libnssckbi\.so/);
  // The copy hardlinks the system install: ncfence must replace files, never write through a link.
  t.deepEqual(treeDigest(src), systemBefore);

  // No NCFENCE_CONFIG: the module finds ncfence.conf beside itself, as in real use.
  const env = { NCFENCE_CONFIG: '' };
  const r = await probeUrls({ firefox, urls: HOSTS.map(url), hosts: HOSTS, timeoutMs: 60_000, env });
  t.regex(r.log, /loaded external CKBI from gre directory/);
  t.is(r.results[url('www.example.com')], 'load', r.output.slice(-2000));
  t.is(r.results[url('www.example.bit')], 'error', r.output.slice(-2000));

  const doc = await cli(['doctor', '--firefox-dir', ff]);
  t.is(doc.code, 0, doc.stdout + doc.stderr);
  t.regex(doc.stdout, /ok {3}Firefox loads ncfence: its roots module is .*libnssckbi\.so \(ncfence\)/);
  // The test roots are not Firefox's: said, not failed, since --upstream chose them.
  t.regex(doc.stdout, /ok {3}Firefox's own roots: \d+ differences from the \d+ roots Firefox trusts on its own: .*named with --upstream/);
  t.regex(doc.stdout, /ok {3}view fresh/);

  const st = await cli(['status', '--json', '--firefox-dir', ff]);
  const rows = JSON.parse(st.stdout) as { target: string; location: string; viewState: string; rootsFenced: number }[];
  t.like(rows.find((x) => x.location === ff), { target: 'firefox', viewState: 'fresh', rootsFenced: 1 });

  // doctor notices a stale view and says how to fix it.
  writeFileSync(join(pki.trustDir, 'anchors', 'touch.pem'), readFileSync(pki.rootFile));
  const stale = await cli(['doctor', '--no-firefox', '--firefox-dir', ff]);
  rmSync(join(pki.trustDir, 'anchors', 'touch.pem'));
  t.is(stale.code, 1);
  t.regex(stale.stdout, /FAIL view fresh: .*stale.*\n\s+fix: sudo ncfence refresh \(rebuilds the view; or sudo ncfence install firefox --dir /);

  const un = await cli(['uninstall', 'firefox', '--firefox-dir', ff]);
  t.is(un.code, 0, un.stderr);
  t.deepEqual(treeDigest(ff), before);
});

test.serial('an existing roots module is kept, wrapped, and restored by uninstall', async (t) => {
  const ff = join(dir, 'firefox-with-module');
  await copyFirefoxInstall(ff, P11KIT_TRUST); // a PKCS#11 module already at libnssckbi.so
  const before = treeDigest(ff);
  const inst = await cli(['install', 'firefox', '--firefox-dir', ff, '--upstream-params', `paths=${pki.trustDir}`]);
  t.is(inst.code, 0, inst.stderr);
  t.regex(inst.stdout, /upstream: +.*libnssckbi\.so\.ncfence-orig/);
  t.regex(inst.stdout, /kept: +.*libnssckbi\.so as .*libnssckbi\.so\.ncfence-orig/);
  const un = await cli(['uninstall', 'firefox', '--firefox-dir', ff]);
  t.is(un.code, 0, un.stderr);
  t.deepEqual(treeDigest(ff), before);
});

const refusals: { name: string; setup: (d: string) => Promise<string[]>; message: RegExp; user?: boolean }[] = [
  { name: 'not a Firefox directory', setup: async (d) => (mkdirSync(d), ['--firefox-dir', d]), message: /does not look like a Firefox install directory \(it has no libxul\.so\)/ },
  {
    name: 'an unknown file at libnssckbi.so',
    setup: async (d) => {
      await copyFirefoxInstall(d);
      writeFileSync(join(d, 'libnssckbi.so'), 'not a module');
      return ['--firefox-dir', d];
    },
    message: /libnssckbi\.so exists and is not a PKCS#11 module; .*move it away first/,
  },
  {
    name: 'a directory this user cannot write',
    setup: async (d) => {
      await copyFirefoxInstall(d);
      chmodSync(dir, 0o755);
      chmodSync(d, 0o755);
      return ['--firefox-dir', d];
    },
    message: /is not writable by this user: run ncfence as its owner/,
    user: true,
  },
];

for (const c of refusals) {
  test.serial(`install refuses ${c.name}, changing nothing`, async (t) => {
    const d = join(dir, `refuse-${c.name.replace(/\W+/g, '-')}`);
    const args = await c.setup(d);
    const before = treeDigest(d);
    const r = c.user
      ? await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', `HOME=${dir}`, process.execPath, DIST_CLI, 'install', 'firefox', ...args, ...upstream()], { timeoutMs: 60_000 })
      : await cli(['install', 'firefox', ...args, ...upstream()]);
    t.is(r.code, 2, r.stdout + r.stderr);
    t.regex(r.stderr, c.message);
    t.deepEqual(treeDigest(d), before);
  });
}

test.serial('an install owns a copy of its policy: changing the policy it was given leaves the install fresh', async (t) => {
  const ff = join(dir, 'own-policy');
  await copyFirefoxInstall(ff);
  const given = join(dir, 'given-policy.json');
  writeFileSync(given, readFileSync(join(ROOT, 'rules/default.json')));
  const inst = await cli(['install', 'firefox', '--dir', ff, '--policy', given, ...upstream()]);
  t.is(inst.code, 0, inst.stderr);
  t.regex(readFileSync(join(ff, 'ncfence.conf'), 'utf8'), new RegExp(`^policy = ${ff}/ncfence-policy\\.json$`, 'm'));
  // What a git pull or a package upgrade does to the file the install was made from.
  writeFileSync(given, readFileSync(given, 'utf8').replace('"schema": 1', '"schema": 1 '));
  const st = JSON.parse((await cli(['status', '--json', '--dir', ff])).stdout) as { location: string; viewState: string }[];
  t.is(st.find((r) => r.location === ff)?.viewState, 'fresh');
  t.is((await cli(['uninstall', 'firefox', '--dir', ff])).code, 0);
  t.false(existsSync(join(ff, 'ncfence-policy.json')));
});
