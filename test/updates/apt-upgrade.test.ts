// The routine updates Debian ships, end to end, on the real packages, in a
// sandbox of this system (test/helpers/sandbox.ts: an overlay of / in a
// mount namespace of its own, so the host's packages never change):
//
//  1. the previous versions of firefox-esr, thunderbird, libnss3 and
//     ca-certificates are installed with apt-get;
//  2. ncfence is installed system-wide for firefox, thunderbird, nss and
//     p11-kit, as root;
//  3. apt-get upgrades them to the current versions, and nothing of ncfence
//     is run by anyone (what runs, runs from Debian's own hooks);
//  4. an unprivileged user then checks what their programs get: Firefox's
//     and Thunderbird's roots tokens, read from inside each, equal each
//     program's own new roots, fenced (`doctor`, src/browser/compare.ts);
//     the system NSS roots module's anchors are all ncfence anchors, one per
//     root the upgraded CKBI trusts, and no original root is one (certutil);
//     the same through p11-kit-proxy for the upgraded ca-certificates;
//  5. a local CA is added with update-ca-certificates: GnuTLS through p11-kit
//     accepts a .com under it and refuses its .bit (gnutls-cli);
//  6. ncfence is uninstalled, and the sandbox dropped; the host's package
//     versions are as they were.

import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSandbox, type Sandbox } from '../helpers/sandbox.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { startOpensslServer } from '../helpers/nss.js';
import { DIST_CLI } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

const OLD_DEBS = '/var/cache/ncfence-test/debs';
/** What test/get-old-debs.sh chose: `package=version`, an older version of each than apt's candidate. */
const OLD_LIST = join(OLD_DEBS, 'versions.txt');
const PACKAGES = ['firefox-esr', 'thunderbird', 'libnss3', 'libnss3-tools', 'libnss3-dev', 'ca-certificates'];
const CKBI = '/usr/lib/x86_64-linux-gnu/libnssckbi.so';
const P11KIT_PROXY = '/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so';
const USER = 'ncfence-user';

let box: Sandbox;
let pki: TestPki;
let hostVersions: string;
let old: string[];

const versions = async (inside?: Sandbox): Promise<string> => {
  const args = ['-W', '-f', '${Package}=${Version}\\n', ...PACKAGES];
  const r = inside ? await inside.run(['dpkg-query', ...args]) : await run('dpkg-query', args);
  return sorted(r.stdout.split('\n'));
};
/** Lines in a fixed order (dpkg-query prints packages in its own). */
const sorted = (lines: string[]): string => lines.filter((l) => l !== '').sort().join('\n') + '\n';
/** apt's candidate of each package, as versions() prints them: what an upgrade installs. */
const candidates = async (inside: Sandbox): Promise<string> => {
  const lines: string[] = [];
  for (const p of PACKAGES) {
    const r = await inside.run(['apt-cache', 'policy', p]);
    const m = /Candidate:\s*(\S+)/.exec(r.stdout);
    if (!m || m[1] === '(none)') throw new Error(`apt has no candidate for ${p}: ${r.stdout}`);
    lines.push(`${p}=${m[1]}`);
  }
  return sorted(lines);
};

test.before(async () => {
  for (const tool of ['unshare', 'nsenter', 'runuser', 'certutil', 'gnutls-cli']) await requireTool(tool);
  if (!existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm ci (or npm run build) first`);
  if (!existsSync(OLD_LIST)) throw new Error(`the previous Debian packages are not in ${OLD_DEBS}: run sudo bash test/get-old-debs.sh (.ci/run does)`);
  old = readFileSync(OLD_LIST, 'utf8').split('\n').filter((l) => l !== '');
  if (old.map((p) => p.split('=')[0]).join(' ') !== PACKAGES.join(' ')) throw new Error(`${OLD_LIST} does not list ${PACKAGES.join(', ')}: run sudo bash test/get-old-debs.sh again`);
  hostVersions = await versions();
  pki = await makeTestPki(['www.example.com', 'www.example.bit'], '/O=ncfence tests/CN=A Local CA');
  await run('chmod', ['-R', 'a+rX', pki.dir]);
  box = await makeSandbox();
});
test.after.always(async () => {
  await box?.close();
  pki?.cleanup();
});

const ok = async (what: string, r: Promise<{ code: number | null; stdout: string; stderr: string }>): Promise<string> => {
  const x = await r;
  if (x.code !== 0) throw new Error(`${what} exited ${x.code}\n${x.stdout.slice(-3000)}\n${x.stderr.slice(-3000)}`);
  return x.stdout + x.stderr;
};
const ncfence = (args: string[], user?: string) => box.run([process.execPath, DIST_CLI, ...args], { timeoutMs: 300_000, ...(user ? { user } : {}) });

/** The nicknames certutil shows as trust anchors (C in SSL or S/MIME), and every nickname, for a database holding one module. */
async function anchors(module: string, name: string): Promise<{ anchors: string[]; all: string[] }> {
  const db = `/home/${USER}/${name}`;
  await ok('mkdir', box.run(['mkdir', '-p', db], { user: USER }));
  await ok('certutil -N', box.run(['certutil', '-N', '--empty-password', '-d', `sql:${db}`], { user: USER }));
  await ok('modutil', box.run(['modutil', '-dbdir', `sql:${db}`, '-add', name, '-libfile', module, '-force'], { user: USER, input: '\n' }));
  const out = await ok('certutil -L', box.run(['certutil', '-L', '-h', 'all', '-d', `sql:${db}`], { user: USER }));
  const rows = out
    .split('\n')
    .map((l) => /^(.*?)\s+([A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[1] !== 'SSL,S/MIME,JAR/XPI');
  return {
    anchors: rows.filter((m) => /C/.test(m[2]!.split(',').slice(0, 2).join(''))).map((m) => m[1]!.replace(/^[^:]*:/, '')),
    all: rows.map((m) => m[1]!.replace(/^[^:]*:/, '')),
  };
}

test.serial('routine Debian upgrades under system-wide installs: every consumer gets the new roots, fenced, with nothing run by anyone', async (t) => {
  // 1. The previous versions, from Debian's archive (fetched ahead by test/get-old-debs.sh).
  await ok('copy debs', box.run(['sh', '-c', `cp ${OLD_DEBS}/*.deb /var/cache/apt/archives/`]));
  await ok('apt-get install (previous versions)', box.run(['apt-get', 'install', '-y', '--allow-downgrades', '--no-install-recommends', ...old], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 900_000 }));
  t.is(await versions(box), sorted(old), 'the previous versions are installed');
  const current = await candidates(box);
  t.log(`from:\n${old.join('\n')}\nto:\n${current}`);
  await ok('useradd', box.run(['useradd', '-m', USER]));

  // 2. ncfence, system-wide, as root.
  for (const target of ['firefox', 'thunderbird', 'nss', 'p11-kit']) {
    const r = await ncfence(['install', target]);
    t.is(r.code, 0, `install ${target}: ${r.stderr}`);
  }
  t.true((await box.run(['test', '-f', '/etc/apt/apt.conf.d/80ncfence'])).code === 0, 'the APT hook is in place');
  const before = await ncfence(['status'], USER);
  t.is(before.code, 0, before.stdout);

  // 3. The upgrade, with apt-get. Nothing of ncfence runs but what Debian's hooks run.
  const upgrade = await ok(
    'apt-get install (current versions)',
    box.run(['apt-get', 'install', '-y', '--no-install-recommends', ...PACKAGES], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 900_000 }),
  );
  t.is(await versions(box), current, 'every package is at its candidate');
  t.regex(upgrade, /firefox at \/usr\/lib\/firefox-esr: view rebuilt/);
  t.log(upgrade.split('\n').filter((l) => / at \/.*: /.test(l)).join('\n'));

  // 4. As an unprivileged user.
  const status = await ncfence(['status'], USER);
  t.is(status.code, 0, status.stdout + status.stderr);
  const doctor = await ncfence(['doctor', '--json'], USER);
  t.is(doctor.code, 0, doctor.stdout + doctor.stderr);
  const reports = JSON.parse(doctor.stdout) as { target: string; checks: { name: string; ok: boolean; detail: string }[] }[];
  for (const [target, name] of [['firefox', 'Firefox'], ['thunderbird', 'Thunderbird']] as const) {
    const own = reports.find((r) => r.target === target)!.checks.find((c) => c.name === `${name}'s own roots`)!;
    t.true(own.ok, own.detail);
    const m = new RegExp(`all (\\d+) roots ${name} trusts on its own are fenced with the same purposes and policy; nothing missing, nothing added`).exec(own.detail);
    t.truthy(m, own.detail);
    t.true(Number(m?.[1]) > 100, own.detail);
    t.true(reports.find((r) => r.target === target)!.checks.find((c) => c.name === `${name} loads ncfence`)!.ok);
  }

  // System NSS: every anchor is an ncfence anchor, one per root the upgraded CKBI trusts.
  const stock = await anchors(`${CKBI}.ncfence-orig`, 'stock');
  const fenced = await anchors(CKBI, 'fenced');
  t.true(stock.anchors.length > 100);
  t.deepEqual(fenced.anchors.filter((a) => !a.startsWith('ncfence anchor for ')), [], 'only ncfence anchors are anchors');
  t.deepEqual(fenced.anchors.map((a) => a.slice('ncfence anchor for '.length)).sort(), [...stock.anchors].sort(), 'one anchor per root the upgraded CKBI trusts');
  for (const a of stock.anchors) t.true(fenced.all.includes(a), `${a} is still there, not as an anchor`);

  // Through p11-kit-proxy: the same for the upgraded ca-certificates.
  const viaProxy = await anchors(P11KIT_PROXY, 'proxy');
  const bundle = await ok('trust list', box.run(['trust', 'list', '--filter=ca-anchors'], { user: USER }));
  const caRoots = (bundle.match(/^pkcs11:/gm) ?? []).length;
  t.true(caRoots > 100, bundle.slice(0, 500));
  t.deepEqual(viaProxy.anchors.filter((a) => !a.startsWith('ncfence anchor for ')), []);
  t.is(viaProxy.anchors.length, caRoots, 'one anchor per root of the upgraded ca-certificates');

  // 5. A local CA, added the Debian way.
  await ok('local CA', box.run(['cp', pki.rootFile, '/usr/local/share/ca-certificates/ncfence-test-local-ca.crt']));
  const update = await ok('update-ca-certificates', box.run(['update-ca-certificates'], { timeoutMs: 300_000 }));
  t.regex(update, /p11-kit at \/usr\/local\/lib\/ncfence: view rebuilt/);
  for (const host of ['www.example.com', 'www.example.bit']) {
    const leaf = pki.leaves.get(host)!;
    const server = await startOpensslServer(leaf.certFile, leaf.keyFile, pki.interFile);
    try {
      const r = await box.run(['gnutls-cli', '--x509cafile', 'pkcs11:', '--verify-hostname', host, '-p', String(server.port), '127.0.0.1'], { user: USER, input: '', timeoutMs: 60_000 });
      const out = r.stdout + r.stderr;
      if (host.endsWith('.com')) t.regex(out, /Status: The certificate is trusted/, out);
      else t.regex(out, /violates the signer's constraints/, out);
    } finally {
      server.stop();
    }
  }

  // 6. Put back: ncfence uninstalled (its hooks with it), the sandbox dropped.
  for (const target of ['p11-kit', 'nss', 'thunderbird', 'firefox']) {
    const r = await ncfence(['uninstall', target]);
    t.is(r.code, 0, `uninstall ${target}: ${r.stderr}`);
  }
  t.not((await box.run(['test', '-e', '/etc/apt/apt.conf.d/80ncfence'])).code, 0, 'the APT hook went with the last install');
  t.is(await versions(), hostVersions, "the host's packages never changed");
});
