// After an update of what a view was built from, the next consumer to start
// gets a fresh view of the new roots, fenced, with no command run by anyone
// (docs/install.md, "Updates"; addon/rebuild.c):
//  - a user's consumer of root's install, which it may not rewrite, builds
//    and uses a view of its own, in a directory only it can write; never a
//    stale one, never from a directory another user could write;
//  - root's consumer rebuilds root's install in place;
//  - one consumer builds at a time; an update of ncfence itself counts too;
//  - when no fresh view can be had, the module says so in its token.
// Judged by NSS's verifier (vfychain) run as the consumer, and pkcs11-tool.

import test from 'ava';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { userViewDir } from '../../src/install/state.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { makeNssDb } from '../helpers/nss.js';
import { DIST_CLI, MODULE, P11KIT_TRUST, ROOT } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

const NOBODY = 65534;
let dir: string;
let pki: TestPki;
let other: TestPki;

test.before(async () => {
  for (const tool of ['setpriv', 'vfychain', 'pkcs11-tool']) await requireTool(tool);
  if (!existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm ci (or npm run build) first`);
  [pki, other] = await Promise.all([
    makeTestPki(['www.example.com', 'www.example.bit']),
    makeTestPki(['www.example.com', 'www.example.bit'], '/O=ncfence tests/CN=A Root Added By An Update'),
  ]);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-refresh-'));
  chmodSync(dir, 0o755);
  for (const p of [pki, other]) await run('chmod', ['-R', 'a+rX', p.dir]);
});
test.after.always(() => {
  pki?.cleanup();
  other?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Install {
  config: string;
  view: string;
  trust: string;
  /** Each line: one run of the rebuild command. */
  log: string;
  engine: string;
}

/**
 * A root install of the module over p11-kit-trust (its own trust directory,
 * holding `pki`'s root), whose rebuild command is the package's CLI behind a
 * wrapper that logs each run.
 */
async function rootInstall(name: string): Promise<Install> {
  const d = join(dir, name);
  const trust = join(d, 'trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true, mode: 0o755 });
  copyFileSync(pki.rootFile, join(trust, 'anchors', 'root.pem'));
  const log = join(d, 'rebuilds.log');
  writeFileSync(log, '');
  chmodSync(log, 0o666);
  const wrapper = join(d, 'rebuild.sh');
  writeFileSync(wrapper, `#!/bin/sh\necho "$(id -u) $*" >> ${log}\nexec ${process.execPath} ${DIST_CLI} "$@"\n`, { mode: 0o755 });
  // The package's engine-id, copied so the test can "update ncfence".
  const engine = join(d, 'engine-id');
  copyFileSync(join(ROOT, 'dist/engine-id'), engine);
  chmodSync(engine, 0o644);
  const r = await build({
    upstream: P11KIT_TRUST,
    upstreamParams: `paths=${trust}`,
    outDir: join(d, 'lib'),
    rebuildCommand: wrapper,
    engine,
    policyFile: join(ROOT, 'rules/default.json'),
  });
  return { config: r.config, view: r.view, trust, log, engine };
}

/** A home directory owned by the consumer. */
function home(name: string, uid = NOBODY): string {
  const h = join(dir, name);
  mkdirSync(h, { mode: 0o755 });
  chownSync(h, uid, uid);
  return h;
}

/** An NSS database (owned by uid) whose roots come from the module. */
async function db(name: string, uid = NOBODY): Promise<string> {
  const d = join(dir, name);
  const sql = await makeNssDb(d, 'ncfence', MODULE, '', { ...process.env, NCFENCE_CONFIG: '/nonexistent' });
  await run('chown', ['-R', `${uid}:${uid}`, d]);
  return sql;
}

/** vfychain as uid with HOME h, over `p`'s leaf for host. */
async function verify(uid: number, h: string, sqlDb: string, inst: Install, p: TestPki, host: string): Promise<{ ok: boolean; out: string }> {
  const leaf = p.leaves.get(host)!;
  const r = await run(
    'setpriv',
    [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'env', '-i', 'PATH=/usr/bin:/bin', `HOME=${h}`, `NCFENCE_CONFIG=${inst.config}`, 'vfychain', '-d', sqlDb, '-u', '1', '-a', leaf.certFile, '-a', p.interFile],
    { timeoutMs: 60_000 },
  );
  const out = r.stdout + r.stderr;
  return { ok: r.code === 0 && out.includes('Chain is good!'), out };
}

const rebuilds = (inst: Install): string[] => readFileSync(inst.log, 'utf8').split('\n').filter(Boolean);

/** An update of the CA store: a new root arrives (the stamp sees the trust directory change). */
function addRoot(inst: Install, p: TestPki, name: string): void {
  copyFileSync(p.rootFile, join(inst.trust, 'anchors', name));
}

test.serial("a user's consumer of root's stale install builds a fresh view of its own, of the new roots, fenced; the install is not touched", async (t) => {
  const inst = await rootInstall('user-own');
  const h = home('home-user-own');
  const sqlDb = await db('db-user-own');
  const installed = readFileSync(inst.view);
  addRoot(inst, other, 'added.pem');

  const com = await verify(NOBODY, h, sqlDb, inst, other, 'www.example.com');
  t.true(com.ok, com.out);
  t.regex(com.out, /is stale: .*running .*rebuild\.sh to rebuild it in this user's own directory/);
  const bit = await verify(NOBODY, h, sqlDb, inst, other, 'www.example.bit');
  t.false(bit.ok);
  t.regex(bit.out, /SEC_ERROR_CERT_NOT_IN_NAME_SPACE|-8080/);
  t.true((await verify(NOBODY, h, sqlDb, inst, pki, 'www.example.com')).ok, 'the root that was there before is still fenced and trusted');

  // Built once, as the user, into the user's own directory; then reused.
  t.deepEqual(rebuilds(inst).map((l) => l.split(' ')[0]), [String(NOBODY)]);
  t.regex(rebuilds(inst)[0]!, new RegExp(`refresh --config ${inst.config} --out ${h}/\\.cache/ncfence/views/[0-9a-f]{16}$`));
  const own = join(h, '.cache/ncfence/views');
  const ownDir = join(own, readFileSync(inst.log, 'utf8').match(/views\/([0-9a-f]{16})/)![1]!);
  t.is(statSync(ownDir).uid, NOBODY);
  t.is(statSync(ownDir).mode & 0o777, 0o700);
  t.true(readFileSync(inst.view).equals(installed), "root's installed view is not touched by a user");
  // status computes the same directory the module used.
  t.is(userViewDir(inst.config).replace(/^.*\/views\//, ''), ownDir.replace(/^.*\/views\//, ''));

  // The next update makes the user's view stale too: never served stale, rebuilt again.
  addRoot(inst, other, 'added-again.pem');
  const again = await verify(NOBODY, h, sqlDb, inst, other, 'www.example.com');
  t.true(again.ok, again.out);
  t.is(rebuilds(inst).length, 2);
});

test.serial('a per-user directory another user could write is never used: closed, and said', async (t) => {
  const inst = await rootInstall('not-private');
  const h = home('home-not-private');
  const sqlDb = await db('db-not-private');
  addRoot(inst, other, 'added.pem');
  t.true((await verify(NOBODY, h, sqlDb, inst, other, 'www.example.com')).ok);
  const own = join(h, '.cache/ncfence/views');
  const [id] = await import('node:fs').then((fs) => fs.readdirSync(own));
  chmodSync(join(own, id!), 0o777);
  addRoot(inst, other, 'added-again.pem');
  const r = await verify(NOBODY, h, sqlDb, inst, other, 'www.example.com');
  t.false(r.ok);
  t.regex(r.out, /cannot rebuild it: the per-user view directory is not private: .* is writable by group or others/);
  t.regex(r.out, /no public root is trusted \(closed view\)/);
});

test.serial("root's consumer rebuilds root's install in place", async (t) => {
  const inst = await rootInstall('in-place');
  const h = home('home-root', 0);
  const sqlDb = await db('db-root', 0);
  const before = readFileSync(inst.view);
  addRoot(inst, other, 'added.pem');
  const r = await verify(0, h, sqlDb, inst, other, 'www.example.com');
  t.true(r.ok, r.out);
  t.regex(r.out, /running .*rebuild\.sh to rebuild it$/m);
  t.false(readFileSync(inst.view).equals(before), 'the installed view was rebuilt');
  t.regex(rebuilds(inst)[0]!, new RegExp(`^0 refresh --config ${inst.config}$`));
  t.false(existsSync(join(h, '.cache/ncfence/views')));
  // Fresh now for every user: the next user's consumer rebuilds nothing.
  const u = await verify(NOBODY, home('home-after-root'), await db('db-after-root'), inst, other, 'www.example.com');
  t.true(u.ok, u.out);
  t.is(rebuilds(inst).length, 1);
});

test.serial('consumers starting together rebuild once', async (t) => {
  const inst = await rootInstall('together');
  const h = home('home-together');
  const dbs = await Promise.all([0, 1, 2, 3].map((i) => db(`db-together-${i}`)));
  addRoot(inst, other, 'added.pem');
  const results = await Promise.all(dbs.map((d) => verify(NOBODY, h, d, inst, other, 'www.example.com')));
  for (const r of results) t.true(r.ok, r.out);
  t.is(rebuilds(inst).length, 1, rebuilds(inst).join('\n'));
});

test.serial('an update of ncfence itself (its engine-id) makes the view stale, and the next consumer rebuilds it', async (t) => {
  const inst = await rootInstall('engine');
  const h = home('home-engine');
  const sqlDb = await db('db-engine');
  t.true((await verify(NOBODY, h, sqlDb, inst, pki, 'www.example.com')).ok);
  t.is(rebuilds(inst).length, 0);
  writeFileSync(inst.engine, 'ncfence 0.1.1 0000000000000000000000000000000000000000000000000000000000000000\n');
  const r = await verify(NOBODY, h, sqlDb, inst, pki, 'www.example.com');
  t.true(r.ok, r.out);
  t.regex(r.out, /is stale: .*first difference: the view has "engine=.*engine-id:ncfence 0\.1\.0 /);
  t.is(rebuilds(inst).length, 1);
});

/** The token labels pkcs11-tool lists for the module with this configuration. */
async function tokenLabels(config: string): Promise<string> {
  const r = await run('pkcs11-tool', ['--module', MODULE, '--list-token-slots'], { env: { ...process.env, NCFENCE_CONFIG: config }, timeoutMs: 30_000 });
  return r.stdout + r.stderr;
}

test.serial('a closed view says so in its token; a fenced one shows upstream\'s own', async (t) => {
  const inst = await rootInstall('closed');
  const fenced = await tokenLabels(inst.config);
  t.regex(fenced, /token manufacturer\s*:\s*PKCS#11 Kit/);
  t.notRegex(fenced, /no roots trusted/i);
  // Nothing can rebuild it: the command fails.
  const cfg = readFileSync(inst.config, 'utf8').replace(/^rebuild = .*$/m, `rebuild = ${join(dir, 'closed', 'fail.sh')}`);
  writeFileSync(join(dir, 'closed', 'fail.sh'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
  writeFileSync(inst.config, cfg);
  addRoot(inst, other, 'added.pem');
  const out = await tokenLabels(inst.config);
  t.regex(out, /token label\s*:\s*ncfence: NO ROOTS TRUSTED/);
  t.regex(out, /Slot \d+ \(0x[0-9a-f]+\): ncfence: no roots trusted \(rebuild failed\); run ncfence doctor/);
  // A browser target with no view has no slot of its own: it gets one that says so.
  const browserCfg = join(dir, 'closed', 'browser.conf');
  writeFileSync(browserCfg, `upstream = /usr/lib/firefox-esr/libxul.so\nupstream-kind = browser\nview = ${join(dir, 'closed', 'none.ncfv')}\npolicy = ${join(ROOT, 'rules/default.json')}\n`);
  const b = await tokenLabels(browserCfg);
  t.regex(b, /token label\s*:\s*ncfence: NO ROOTS TRUSTED/);
  t.regex(b, /no roots trusted \(no view\)/);
});
