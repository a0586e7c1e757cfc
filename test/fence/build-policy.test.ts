// `ncfence build` with no --policy (issue 19, item 3): the README's own
// commands. Its main upstream, the system CKBI, is read by NSS programs, and
// the README loads what it builds into NSS (certutil, tstclnt). With
// rules/default.json that left NSS the holes the nss target closes (a `.bit`
// CN beside an IP-only SAN, trailing dots). build now takes the policy of
// what reads its upstream: nss.json for NSS's libnssckbi.so, p11-kit.json
// (whose NSS form NSS gets) for any other module, default.json only for a
// browser's own roots.
//
// Judged: the policy each build reports and the exclusions of an R' it
// wrote (openssl); the README's "See it working" steps as written (certutil
// through the module, then openssl on ISRG Root X1's fenced form); and the
// hostile-name corpus (test/helpers/hostileNames.ts) through the README's
// second build (p11-kit-trust over a directory, no --policy) and tstclnt
// loading the module, as the README runs it.

import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TARGET_POLICY } from '../../src/policy.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { makeNssDb, startOpensslServer, tstclnt } from '../helpers/nss.js';
import { cases } from '../helpers/hostileNames.js';
import { CLI, MODULE, P11KIT_TRUST, ROOT, SYSTEM_CKBI } from '../helpers/paths.js';
import { requireTool, run, runOk } from '../helpers/run.js';

let dir: string;
let pki: TestPki;
const leaves = new Map<string, { certFile: string; keyFile: string }>();

test.before(async () => {
  for (const tool of ['certutil', 'modutil', 'tstclnt', 'openssl', 'csplit']) await requireTool(tool);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-build-policy-'));
  pki = await makeTestPki([]);
  for (const [i, c] of cases.entries()) leaves.set(c.name, await pki.issueLeaf(`case${i}`, c.subject, c.ext));
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Built {
  policy: string;
  config: string;
}
const build = async (args: string[]): Promise<Built> => {
  const r = await runOk(process.execPath, ['--import', 'tsx', CLI, 'build', ...args, '--json'], { timeoutMs: 120_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
  return JSON.parse(r.stdout) as Built;
};

test('README, "See it working": ncfence build on the system CKBI takes rules/nss.json, and ISRG Root X1\'s fenced form excludes every name form NSS reads', async (t) => {
  // As README.md runs it: build, a scratch database with the module, certutil, csplit, openssl.
  const view = join(dir, 'nf', 'view');
  const result = await build(['--out', view]);
  t.is(result.policy, TARGET_POLICY.nss);
  const env = { ...process.env, NCFENCE_CONFIG: result.config };
  const db = await makeNssDb(join(dir, 'nf', 'db'), 'ncfence', MODULE, '', env);
  const list = await runOk('certutil', ['-L', '-d', db, '-h', 'all'], { env });
  t.regex(list.stdout, /^Builtin Object Token:ISRG Root X1\s+,,\s*$/m);
  t.regex(list.stdout, /^Builtin Object Token:ncfence anchor for ISRG Root X1\s+C,,\s*$/m);
  const pem = await runOk('certutil', ['-L', '-d', db, '-n', 'Builtin Object Token:ISRG Root X1', '-a'], { env });
  await runOk('csplit', ['-s', '-z', '-f', join(dir, 'nf', 'r'), '-', '/-----BEGIN CERTIFICATE/', '{*}'], { input: pem.stdout });
  let described = '';
  for (const f of ['r00', 'r01']) {
    const o = await run('openssl', ['x509', '-in', join(dir, 'nf', f), '-noout', '-subject', '-issuer', '-ext', 'nameConstraints']);
    if (/issuer=O = ncfence local anchor/.test(o.stdout)) described = o.stdout;
  }
  t.regex(described, /subject=C = US, O = Internet Security Research Group, CN = ISRG Root X1/, pem.stdout);
  t.regex(described, /X509v3 Name Constraints: critical/);
  for (const name of ['DNS:bit', 'DNS:bit.', 'email:bit', 'email:.bit', 'email:bit.', 'email:.bit.', 'IP:0.0.0.0/0.0.0.0', 'IP:0:0:0:0:0:0:0:0/0:0:0:0:0:0:0:0']) {
    t.true(described.split('\n').some((l) => l.trim() === name), `R' excludes ${name}:\n${described}`);
  }
  t.regex(readFileSync(result.config, 'utf8'), new RegExp(`^upstream = ${SYSTEM_CKBI}$`, 'm'));
});

test('any other module gets rules/p11-kit.json; a browser\'s own roots rules/default.json', async (t) => {
  const other = await build(['--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`, '--out', join(dir, 'other')]);
  t.is(other.policy, TARGET_POLICY['p11-kit']);
  // A libnssckbi.so that is p11-kit-trust (Fedora's alternatives link): what it really is decides.
  const fedora = join(dir, 'fedora');
  mkdirSync(fedora);
  symlinkSync(P11KIT_TRUST, join(fedora, 'libnssckbi.so'));
  const linked = await build(['--upstream', join(fedora, 'libnssckbi.so'), '--upstream-params', `paths=${pki.trustDir}`, '--out', join(dir, 'linked')]);
  t.is(linked.policy, TARGET_POLICY['p11-kit']);
  // An explicit --policy is kept.
  const named = await build(['--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`, '--policy', TARGET_POLICY.browser, '--out', join(dir, 'named')]);
  t.is(named.policy, TARGET_POLICY.browser);
  const { policyForUpstream } = await import('../../src/policy.js');
  t.is(policyForUpstream('/usr/lib/firefox-esr/libxul.so', true), TARGET_POLICY.browser);
  t.is(policyForUpstream('/usr/lib64/libnssckbi.so', false), TARGET_POLICY.nss);
});

// README's second example: a throwaway CA in a p11-kit trust directory,
// `ncfence build --upstream p11-kit-trust.so --upstream-params paths=... --out view`,
// then tstclnt -D -R the module. NSS is in that process, so it gets the NSS form.
let readmeConfig: string | undefined;
const readmeBuild = async (): Promise<string> => {
  readmeConfig ??= (await build(['--upstream', P11KIT_TRUST, '--upstream-params', `paths=${pki.trustDir}`, '--out', join(dir, 'readme-view')])).config;
  return readmeConfig;
};

for (const c of cases) {
  const expected = c.nssPolicy ?? c.ok;
  test.serial(`README's build, tstclnt through the module: ${c.name}: ${expected ? 'accepted' : 'refused'}`, async (t) => {
    const config = await readmeBuild();
    const leaf = leaves.get(c.name)!;
    const server = await startOpensslServer(leaf.certFile, leaf.keyFile, pki.interFile);
    try {
      const v = await tstclnt(server.port, c.host, { module: MODULE }, { ...process.env, NCFENCE_CONFIG: config });
      t.is(v.ok, expected, v.output);
    } finally {
      server.stop();
    }
  });
}

test('the README\'s commands are the ones tested here', (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  t.regex(readme, /^ncfence build --out view$/m);
  t.regex(readme, /^ncfence build --upstream \/usr\/lib\/x86_64-linux-gnu\/pkcs11\/p11-kit-trust\.so --upstream-params paths=\$PWD\/trust --out view2$/m);
  t.regex(readme, /tstclnt -D -R "\$MODULE"/);
  t.notRegex(readme, /ncfence build [^\n]*--policy/, 'the README names no policy: build must pick a safe one');
});
