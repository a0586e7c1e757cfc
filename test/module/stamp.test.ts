// The upstream stamp covers what p11-kit-trust actually reads: every file
// under each trust path (edited in place included), `~` paths as p11-kit
// expands them, and its built-in paths when the parameters name none. The
// module (addon/stamp.c) must compute exactly what the build
// (src/view/stamp.ts) wrote, so a fresh build is served and any change to a
// trust file gives the closed view. Judged by NSS's verifiers.

import test from 'ava';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, type BuildOptions, type BuildResult } from '../../src/compile/build.js';
import { readConfig } from '../../src/config.js';
import { decodeView } from '../../src/view/format.js';
import { p11kitPathsArgument, upstreamStamp } from '../../src/view/stamp.js';

/** addon/stamp.c STAMP_MAX_DEPTH and STAMP_MAX_ENTRIES. */
const STAMP_LIMITS = { depth: 8, entries: 4096 } as const;
import { withEnv } from '../helpers/env.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { makeNssDb, vfychain } from '../helpers/nss.js';
import { DIST_CLI, MODULE, P11KIT_TRUST, UPSTREAM_SHIM } from '../helpers/paths.js';
import { run } from '../helpers/run.js';

let pki: TestPki;
let other: TestPki;
let dir: string;
let dbCount = 0;

test.before(async () => {
  if (!existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm ci (or npm run build) first`);
  [pki, other] = await Promise.all([
    makeTestPki(['www.example.com', 'www.example.bit']),
    makeTestPki([], '/O=ncfence tests/CN=Another Public Root CA'),
  ]);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-stamp-'));
});
test.after.always(() => {
  pki?.cleanup();
  other?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs `build` with extra environment variables set in this process (HOME, the shim's upstream). */
async function buildWith(opts: BuildOptions, env: Record<string, string> = {}): Promise<BuildResult> {
  return withEnv(env, () => build(opts));
}

interface Verdicts {
  com: boolean;
  bit: boolean;
  comPkix: boolean;
  warnings: string;
  output: string;
}

/** What NSS makes of the test chains through the module with this configuration. */
async function judge(config: string, extraEnv: Record<string, string> = {}): Promise<Verdicts> {
  const env = { ...process.env, ...extraEnv, NCFENCE_CONFIG: config };
  const db = await makeNssDb(join(dir, `db-${++dbCount}`), 'ncfence', MODULE, '', env);
  const com = await vfychain(db, pki.leaves.get('www.example.com')!.certFile, pki.interFile, false, env);
  const comPkix = await vfychain(db, pki.leaves.get('www.example.com')!.certFile, pki.interFile, true, env);
  const bit = await vfychain(db, pki.leaves.get('www.example.bit')!.certFile, pki.interFile, false, env);
  const output = [com.output, comPkix.output, bit.output].join('\n');
  const warnings = (output.match(/^\(ncfence:\d+\) WARNING: .*$/gm) ?? []).join('\n');
  return { com: com.ok, comPkix: comPkix.ok, bit: bit.ok, warnings, output };
}

/** Overwrites a file with another CA under the same name; the size changes too, so a coarse clock cannot hide it. */
function replaceWithOtherRoot(file: string): void {
  writeFileSync(file, `another root, written over ${file}\n${other.rootPem}`);
}

/** Edits a PEM file in place without changing what it holds (a comment line). */
function touchContent(file: string): void {
  writeFileSync(file, `${readFileSync(file, 'utf8')}# edited\n`);
}

function assertFresh(t: import('ava').ExecutionContext, v: Verdicts, what: string): void {
  t.true(v.com, `${what}: a fresh view must be served (.com verifies):\n${v.output}`);
  t.true(v.comPkix, `${what}: libpkix must verify .com too:\n${v.output}`);
  t.false(v.bit, `${what}: .bit must not verify under a public root`);
  t.is(v.warnings, '', `${what}: a fresh view gives no warning`);
}

function assertStale(t: import('ava').ExecutionContext, v: Verdicts, what: string): void {
  t.false(v.com, `${what}: a stale view must be closed:\n${v.output}`);
  t.false(v.comPkix, `${what}: libpkix must refuse too`);
  t.false(v.bit);
  t.regex(v.warnings, /is stale/, what);
}

test.serial('a trust file edited in place makes the view stale, and the removed root is no longer accepted', async (t) => {
  const trust = join(dir, 'inplace', 'trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true });
  const bundle = join(trust, 'anchors', 'bundle.pem');
  copyFileSync(pki.rootFile, bundle);
  const r = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${trust}`, outDir: join(dir, 'inplace', 'out') });
  assertFresh(t, await judge(r.config), 'before the edit');
  const dirMtime = statSync(join(trust, 'anchors')).mtimeMs;
  replaceWithOtherRoot(bundle);
  t.is(statSync(join(trust, 'anchors')).mtimeMs, dirMtime, 'an edit in place leaves the directory mtime alone');
  assertStale(t, await judge(r.config), 'after the edit');
});

test.serial('a trust file edited in place is rebuilt by the configured command, without the removed root', async (t) => {
  const trust = join(dir, 'inplace-rebuild', 'trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true });
  const bundle = join(trust, 'anchors', 'bundle.pem');
  copyFileSync(pki.rootFile, bundle);
  const r = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${trust}`, outDir: join(dir, 'inplace-rebuild', 'out'), rebuildCommand: DIST_CLI });
  assertFresh(t, await judge(r.config), 'before the edit');
  const before = readFileSync(r.view);
  replaceWithOtherRoot(bundle);
  // The first load (modutil's, in judge) finds the view stale and rebuilds it.
  const v = await judge(r.config);
  t.false(v.com, `the root that was removed from the trust file must not be accepted:\n${v.output}`);
  t.false(v.comPkix);
  t.is(v.warnings, '', 'the rebuilt view is fresh');
  const cfg = readConfig(r.config);
  t.notDeepEqual(readFileSync(r.view), before, 'the view was rebuilt');
  t.is(decodeView(readFileSync(r.view)).stamp, upstreamStamp(cfg.upstream, cfg.upstreamParams, cfg.policy, cfg.upstreamTrustPaths));
});

/** A trust tree for one case: the parameters naming it, the environment the build and module share, and an edit. */
interface Tree {
  params: string;
  env?: Record<string, string>;
  /** A file p11-kit-trust reads, edited in place after the build. */
  edit: () => void;
}

const trees: { name: string; setup: (d: string) => Tree }[] = [
  {
    name: 'nested directories, odd names, a symlinked file',
    setup: (d) => {
      const trust = join(d, 'trust');
      const deep = join(trust, 'anchors', 'a', 'b', 'c');
      mkdirSync(deep, { recursive: true });
      mkdirSync(join(trust, 'empty dir'));
      mkdirSync(join(trust, 'blocklist'));
      copyFileSync(pki.rootFile, join(trust, 'anchors', 'root.pem'));
      writeFileSync(join(deep, 'note 100% ü\n.txt'), 'not a certificate\n');
      const outside = join(d, 'outside.pem');
      copyFileSync(pki.interFile, outside);
      symlinkSync(outside, join(trust, 'linked.pem'));
      symlinkSync(join(d, 'nowhere'), join(trust, 'dangling.pem'));
      return { params: `paths=${trust}`, edit: () => touchContent(outside) };
    },
  },
  {
    name: 'a file deep below the trust path',
    setup: (d) => {
      const trust = join(d, 'trust');
      const deep = join(trust, 'x', 'y', 'z');
      mkdirSync(deep, { recursive: true });
      mkdirSync(join(trust, 'anchors'));
      copyFileSync(pki.rootFile, join(trust, 'anchors', 'root.pem'));
      writeFileSync(join(deep, 'deep.pem'), 'unused\n');
      return { params: `paths=${trust}`, edit: () => writeFileSync(join(deep, 'deep.pem'), 'still unused, longer\n') };
    },
  },
  {
    name: 'a ~ path, expanded with HOME as p11-kit does',
    setup: (d) => {
      const home = join(d, 'home');
      mkdirSync(join(home, 'my trust', 'anchors'), { recursive: true });
      copyFileSync(pki.rootFile, join(home, 'my trust', 'anchors', 'root.pem'));
      return { params: `'paths=~/my trust'`, env: { HOME: `${home}/` }, edit: () => touchContent(join(home, 'my trust', 'anchors', 'root.pem')) };
    },
  },
  {
    name: 'a ~/.config path, expanded with XDG_CONFIG_HOME as p11-kit does',
    setup: (d) => {
      const xdg = join(d, 'xdg');
      mkdirSync(join(xdg, 'trust', 'anchors'), { recursive: true });
      copyFileSync(pki.rootFile, join(xdg, 'trust', 'anchors', 'root.pem'));
      return {
        params: 'paths=~/.config/trust',
        env: { HOME: join(d, 'home-unused'), XDG_CONFIG_HOME: xdg },
        edit: () => touchContent(join(xdg, 'trust', 'anchors', 'root.pem')),
      };
    },
  },
  {
    name: 'files named directly, quoting, and the last paths argument winning',
    setup: (d) => {
      mkdirSync(join(d, 'with space'));
      const root = join(d, 'with space', 'root.pem');
      copyFileSync(pki.rootFile, root);
      return { params: `paths=/nonexistent verbose=no "paths=${d}/nothing-here::${root}"`, edit: () => touchContent(root) };
    },
  },
];

for (const c of trees) {
  test.serial(`the module agrees with the build, and an edit makes the view stale: ${c.name}`, async (t) => {
    const d = mkdtempSync(join(dir, 'tree-'));
    const tree = c.setup(d);
    const r = await buildWith({ upstream: P11KIT_TRUST, upstreamParams: tree.params, outDir: join(d, 'out') }, tree.env);
    assertFresh(t, await judge(r.config, tree.env), 'fresh build');
    tree.edit();
    assertStale(t, await judge(r.config, tree.env), 'after the edit');
  });
}

test.serial('a ~ path is stamped as expanded: another HOME at load time makes the view stale', async (t) => {
  const d = mkdtempSync(join(dir, 'home-'));
  for (const h of ['home1', 'home2']) {
    mkdirSync(join(d, h, 'trust', 'anchors'), { recursive: true });
    copyFileSync(pki.rootFile, join(d, h, 'trust', 'anchors', 'root.pem'));
  }
  const r = await buildWith({ upstream: P11KIT_TRUST, upstreamParams: 'paths=~/trust', outDir: join(d, 'out') }, { HOME: join(d, 'home1') });
  t.true(decodeView(readFileSync(r.view)).stamp.includes(`${join(d, 'home1', 'trust', 'anchors', 'root.pem')}`));
  assertFresh(t, await judge(r.config, { HOME: join(d, 'home1') }), 'same HOME');
  assertStale(t, await judge(r.config, { HOME: join(d, 'home2') }), 'another HOME');
});

// p11-kit-trust with no paths= reads its compiled-in trust paths. The build
// learns them from upstream and writes them into ncfence.conf.

async function pkgConfigTrustPaths(): Promise<string | undefined> {
  const r = await run('pkg-config', ['--variable=p11_trust_paths', 'p11-kit-1']).catch(() => undefined);
  return r && r.code === 0 ? r.stdout.trim() : undefined;
}

function stampLineFor(path: string): RegExp {
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  try {
    const s = statSync(path, { bigint: true });
    const sec = s.mtimeNs / 1_000_000_000n;
    const ns = String(s.mtimeNs % 1_000_000_000n).padStart(9, '0');
    return s.isDirectory() ? new RegExp(`^d ${sec}\\.${ns} ${esc(path)}$`, 'm') : new RegExp(`^f ${s.size} ${sec}\\.${ns} ${esc(path)}$`, 'm');
  } catch {
    return new RegExp(`^- ${esc(path)}$`, 'm');
  }
}

test.serial('p11-kit-trust with no parameters: its built-in trust paths are in the configuration and the stamp', async (t) => {
  const builtin = await pkgConfigTrustPaths();
  if (builtin === undefined) {
    t.fail('pkg-config --variable=p11_trust_paths p11-kit-1 failed: install pkg-config and libp11-kit-dev (.ci/run)');
    return;
  }
  const r = await build({ upstream: P11KIT_TRUST, upstreamParams: '', outDir: join(dir, 'builtin', 'out') });
  const cfg = readConfig(r.config);
  t.is(cfg.upstreamTrustPaths, builtin, 'the paths upstream reports are the ones it was compiled with');
  const stamp = decodeView(readFileSync(r.view)).stamp;
  for (const p of builtin.split(':').filter((x) => x !== '')) t.regex(stamp, stampLineFor(p));
  t.is(stamp, upstreamStamp(cfg.upstream, cfg.upstreamParams, cfg.policy, cfg.upstreamTrustPaths));
  // The module agrees: the system roots are served fenced, with no warning.
  const env = { ...process.env, NCFENCE_CONFIG: r.config };
  const db = await makeNssDb(join(dir, 'builtin', 'db'), 'ncfence', MODULE, '', env);
  const list = await run('certutil', ['-L', '-d', db, '-h', 'all'], { env });
  t.notRegex(list.stderr, /WARNING/, list.stderr);
  t.regex(list.stdout, /ncfence anchor for .*\sCT?,/, "the fenced view is served");
});

test.serial('built-in trust paths (behind the test shim): an edit in place makes the view stale', async (t) => {
  // The shim hands p11-kit-trust `paths=DIR` itself, so to ncfence (which
  // passes no parameters) DIR looks like a built-in path.
  const d = mkdtempSync(join(dir, 'shim-'));
  const trust = join(d, 'trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'anchors', 'bundle.pem'));
  const env = { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${trust}` };
  const r = await buildWith({ upstream: UPSTREAM_SHIM, upstreamParams: '', outDir: join(d, 'out') }, env);
  t.is(readConfig(r.config).upstreamTrustPaths, trust);
  assertFresh(t, await judge(r.config, env), 'fresh build');
  replaceWithOtherRoot(join(trust, 'anchors', 'bundle.pem'));
  assertStale(t, await judge(r.config, env), 'after the edit');
});

// Bounds: a tree too deep or too large cannot be fingerprinted cheaply, so
// the build refuses it and the module treats the view as stale.

test.serial('a trust path nested deeper than the bound: the build refuses, the module serves the closed view', async (t) => {
  const d = mkdtempSync(join(dir, 'deep-'));
  const trust = join(d, 'trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'anchors', 'root.pem'));
  const r = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${trust}`, outDir: join(d, 'out') });
  const levels = Array.from({ length: STAMP_LIMITS.depth + 1 }, (_, i) => `l${i + 1}`);
  mkdirSync(join(trust, ...levels), { recursive: true });
  const v = await judge(r.config);
  t.false(v.com, v.output);
  t.regex(v.warnings, new RegExp(`is stale: .*nested deeper than ${STAMP_LIMITS.depth} levels`));
  await t.throwsAsync(build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${trust}`, outDir: join(d, 'out2') }), { message: new RegExp(`nested deeper than ${STAMP_LIMITS.depth} levels`) });
});

test.serial('a trust path with more entries than the bound: the build refuses, the module serves the closed view', async (t) => {
  const d = mkdtempSync(join(dir, 'many-'));
  const trust = join(d, 'trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'anchors', 'root.pem'));
  const r = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${trust}`, outDir: join(d, 'out') });
  mkdirSync(join(trust, 'many'));
  for (let i = 0; i < STAMP_LIMITS.entries; i++) writeFileSync(join(trust, 'many', String(i)), '');
  const v = await judge(r.config);
  t.false(v.com, v.output);
  t.regex(v.warnings, new RegExp(`is stale: .*more than ${STAMP_LIMITS.entries} entries`));
  t.throws(() => upstreamStamp(P11KIT_TRUST, `paths=${trust}`, r.policy), { message: new RegExp(`more than ${STAMP_LIMITS.entries} entries`) });
});

// How p11-kit-trust reads its parameter string (p11-kit common/argv.c,
// trust/module.c): split on white space outside quotes, `paths` before `=` or
// `:`, the last one wins, and `paths` with no value means the built-in paths.
const argCases: { name: string; params: string; paths: string | undefined }[] = [
  { name: 'empty', params: '', paths: undefined },
  { name: 'one list', params: 'paths=/a:/b', paths: '/a:/b' },
  { name: 'colon after the key', params: 'paths:/a', paths: '/a' },
  { name: 'the last one wins', params: 'paths=/a verbose=yes paths=/b', paths: '/b' },
  { name: 'no value: built-in paths', params: 'paths=/a paths', paths: undefined },
  { name: 'empty value: no paths at all', params: 'paths=', paths: '' },
  { name: 'double quotes', params: '"paths=/a b"', paths: '/a b' },
  { name: 'quotes inside the value', params: "paths='/a b':/c", paths: '/a b:/c' },
  { name: 'backslash outside quotes is kept', params: 'paths=/a\\ b', paths: '/a\\ b' },
  { name: 'escaped quote inside quotes', params: '"paths=/a\\"b"', paths: '/a"b' },
  { name: 'tabs and newlines separate', params: 'verbose=no\tpaths=/a\n', paths: '/a' },
  { name: 'a trailing backslash drops the last argument', params: 'paths=/a paths=/b\\', paths: '/a' },
  { name: 'another key is not paths', params: 'pathsx=/a', paths: undefined },
];
for (const c of argCases) {
  test(`p11-kit parameter parsing: ${c.name}`, (t) => {
    t.is(p11kitPathsArgument(c.params), c.paths);
  });
}
