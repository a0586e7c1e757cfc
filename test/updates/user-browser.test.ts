// A browser a user keeps in their home (Firefox unpacked there, Tor Browser),
// installed by that user, then updated the way such browsers are: its files
// replaced by the next release's (an unpacked update, Tor Browser's
// updater). Nobody runs ncfence afterwards. The user's next start of the
// browser must use the new release's own roots, fenced: read from inside
// the browser, started as that user, and compared with the new release's
// own roots (src/browser/compare.ts).

import test from 'ava';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBrowserRoots } from '../../src/browser/probe.js';
import { compareRootPrograms } from '../../src/browser/compare.js';
import { FIREFOX_ESR140_DIR, requireFirefoxEsr140, FIREFOX_INSTALL_DIR, copyFirefoxInstall, swapBrowser } from '../helpers/firefox.js';
import { DIST_CLI } from '../helpers/paths.js';
import { assertEquivalent, torBrowserStandIn } from '../helpers/roots.js';
import { requireTool, run, runOk } from '../helpers/run.js';

const USER = 65534;
let dir: string;
let home: string;
let stock153: Awaited<ReturnType<typeof readBrowserRoots>>;

test.before(async () => {
  for (const tool of ['firefox-esr', 'setpriv']) await requireTool(tool);
  requireFirefoxEsr140();
  dir = mkdtempSync(join(tmpdir(), 'ncfence-user-browser-'));
  chmodSync(dir, 0o755);
  home = join(dir, 'home');
  mkdirSync(home);
  await runOk('chown', [`${USER}:${USER}`, home]);
  stock153 = await readBrowserRoots(FIREFOX_INSTALL_DIR, { stock: true });
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A command as the user, with HOME in the test directory. */
const asUser = (cmd: string, args: string[]) =>
  run('setpriv', [`--reuid=${USER}`, `--regid=${USER}`, '--clear-groups', 'env', '-i', 'PATH=/usr/bin:/bin', `HOME=${home}`, cmd, ...args], { timeoutMs: 180_000 });

/** A full copy the user owns (links followed: nothing points back into the system's files). */
async function userCopy(src: string, dest: string): Promise<void> {
  await runOk('cp', ['-aL', `${src}/.`, dest], { timeoutMs: 180_000 });
  await runOk('chown', ['-R', `${USER}:${USER}`, dest]);
}

/** An update that replaces the browser's files with the next release's, as the user: what ncfence placed stays. */
async function replaceFiles(gre: string, next: string, keep: (name: string) => boolean): Promise<void> {
  for (const name of readdirSync(gre)) if (!keep(name)) rmSync(join(gre, name), { recursive: true, force: true });
  const r = await asUser('cp', ['-aL', '--no-preserve=ownership', `${next}/.`, gre]);
  if (r.code !== 0) throw new Error(r.stderr);
}

const ncfenceFile = (name: string): boolean => /^(libnssckbi\.so|ncfence\.conf|view\.ncfv|ncfence-policy\.json)$/.test(name);

test.serial("Firefox in the user's home, updated from ESR 140 to ESR 153 by replacing its files: the next start uses ESR 153's own roots, fenced", async (t) => {
  const ff = join(home, 'firefox');
  mkdirSync(ff);
  await userCopy(FIREFOX_ESR140_DIR, ff);
  const inst = await asUser(process.execPath, [DIST_CLI, 'install', 'firefox', '--dir', ff]);
  t.is(inst.code, 0, inst.stderr);
  t.regex(inst.stdout, /checked: +all \d{3} roots Firefox trusts on its own are fenced/);
  t.true(existsSync(join(home, '.local/state/ncfence/installs')), "recorded in the user's own state directory");

  await replaceFiles(ff, FIREFOX_INSTALL_DIR, ncfenceFile);
  let stderr = '';
  const used = await readBrowserRoots(ff, { stock: false, allowRebuild: true, uid: USER, timeoutMs: 90_000, stderr: (s) => (stderr = s) });
  assertEquivalent(t, compareRootPrograms(stock153.objects, used.objects));
  t.regex(stderr, /is stale: the browser .* changed since it was built.*running .* to rebuild it\n/);
  t.log(`first start after the update: roots loaded in ${used.millis} ms (rebuild included)`);
  const st = await asUser(process.execPath, [DIST_CLI, 'status']);
  t.is(st.code, 0, st.stdout + st.stderr);
  t.regex(st.stdout, new RegExp(`firefox +${ff} +ok`));
});

test.serial("Tor Browser in the user's home, its files replaced by the next release's: the next start uses the new release's own roots, fenced", async (t) => {
  const top = await torBrowserStandIn(join(home, 'tb'), FIREFOX_ESR140_DIR, userCopy);
  await runOk('chown', ['-R', `${USER}:${USER}`, join(home, 'tb')]);
  const inst = await asUser(process.execPath, [DIST_CLI, 'install', 'tor-browser', '--dir', top]);
  t.is(inst.code, 0, inst.stderr);
  const gre = join(top, 'Browser');
  // The updater replaces the browser's own files; its data and launcher stay.
  await replaceFiles(gre, FIREFOX_INSTALL_DIR, (n) => ncfenceFile(n) || /^(TorBrowser|start-tor-browser|firefox)$/.test(n));
  await asUser('mv', [join(gre, 'firefox-esr'), join(gre, 'firefox.real')]);
  const used = await readBrowserRoots(gre, { stock: false, allowRebuild: true, uid: USER, timeoutMs: 90_000 });
  assertEquivalent(t, compareRootPrograms(stock153.objects, used.objects));
});

test.serial("a system Firefox changed without its hook running (dpkg -i, a copied tree): a user's first start builds and keeps a view of their own; the system's view is not touched", async (t) => {
  const ff = join(dir, 'system-firefox');
  await copyFirefoxInstall(ff);
  // Root's records in a system root of this test's own: refresh goes through all of them.
  const env = { ...process.env, NCFENCE_CONFIG: '', NCFENCE_SYSTEM_ROOT: join(dir, 'system-root') };
  mkdirSync(env.NCFENCE_SYSTEM_ROOT);
  const inst = await run(process.execPath, [DIST_CLI, 'install', 'firefox', '--dir', ff], { timeoutMs: 180_000, env });
  t.is(inst.code, 0, inst.stderr);
  const installed = readFileSync(join(ff, 'view.ncfv'));
  await swapBrowser(ff, FIREFOX_ESR140_DIR);
  const stock140 = await readBrowserRoots(FIREFOX_ESR140_DIR, { stock: true });
  let stderr = '';
  const first = await readBrowserRoots(ff, { stock: false, allowRebuild: true, uid: USER, timeoutMs: 90_000, env: { HOME: home, XDG_CACHE_HOME: join(home, '.cache') }, stderr: (s) => (stderr = s) });
  assertEquivalent(t, compareRootPrograms(stock140.objects, first.objects));
  t.regex(stderr, /running .* to rebuild it in this user's own directory/);
  t.true(readFileSync(join(ff, 'view.ncfv')).equals(installed), "the system's view is root's to rebuild");
  // The next start uses it as it is (no rebuild is allowed here at all).
  const next = await readBrowserRoots(ff, { stock: false, uid: USER, env: { HOME: home, XDG_CACHE_HOME: join(home, '.cache') } });
  assertEquivalent(t, compareRootPrograms(stock140.objects, next.objects));
  // Root's hook (or root's own next start) brings the system's view up to date.
  const refresh = await run(process.execPath, [DIST_CLI, 'refresh'], { timeoutMs: 180_000, env });
  t.is(refresh.code, 0, refresh.stderr);
  t.regex(refresh.stdout, new RegExp(`firefox at ${ff}: view rebuilt`));
  t.is((await run(process.execPath, [DIST_CLI, 'uninstall', 'firefox', '--dir', ff], { timeoutMs: 60_000, env })).code, 0);
});
