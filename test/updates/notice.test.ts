// A closed view says why where a person looks (addon/notice.c,
// docs/install.md "When the view is closed"), not only on stderr:
//  - in the roots module's token and slot, which the browser shows under
//    Security Devices: read from inside Firefox;
//  - in one desktop notification through the session's standard mechanism
//    (org.freedesktop.Notifications), received by a real notification
//    daemon (dunst, on a private session bus and X server), at most once an
//    hour per install.

import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBrowserRoots } from '../../src/browser/probe.js';
import { copyFirefoxInstall } from '../helpers/firefox.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { CLI, MODULE, P11KIT_TRUST, ROOT } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

let dir: string;
let pki: TestPki;
test.before(async () => {
  for (const tool of ['firefox-esr', 'Xvfb', 'dbus-daemon', 'dunst', 'dunstctl', 'notify-send', 'pkcs11-tool']) await requireTool(tool);
  pki = await makeTestPki(['www.example.com']);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-notice-'));
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.serial("Firefox's roots module says, from inside Firefox, that no root is trusted and why; a fresh one shows upstream's token", async (t) => {
  const ff = join(dir, 'firefox');
  await copyFirefoxInstall(ff);
  const trust = join(dir, 'trust');
  mkdirSync(join(trust, 'anchors'), { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'anchors', 'root.pem'));
  const inst = await run(process.execPath, ['--import', 'tsx', CLI, 'install', 'firefox', '--dir', ff, '--upstream', P11KIT_TRUST, '--upstream-params', `paths=${trust}`], {
    timeoutMs: 180_000,
    env: { ...process.env, NCFENCE_CONFIG: '', NCFENCE_SYSTEM_ROOT: join(dir, 'system') },
  });
  t.is(inst.code, 0, inst.stderr);
  const fenced = await readBrowserRoots(ff, { stock: false });
  t.is(fenced.tokenLabel, 'trust');
  // The trust store changes and this start may not rebuild (as for a program that cannot): closed.
  copyFileSync(pki.interFile, join(trust, 'anchors', 'other.pem'));
  const closed = await readBrowserRoots(ff, { stock: false });
  t.is(closed.tokenLabel, 'ncfence: NO ROOTS TRUSTED');
  t.is(closed.slotDescription, 'ncfence: no roots trusted (view stale); run ncfence doctor');
});

/** A private X server, session bus and notification daemon; stop() ends them. */
async function desktop(): Promise<{ env: Record<string, string>; stop(): void }> {
  const procs: ChildProcess[] = [];
  const display = `:${90 + Math.floor(Math.random() * 100)}`;
  procs.push(spawn('Xvfb', [display, '-screen', '0', '800x600x24', '-nolisten', 'tcp'], { stdio: 'ignore' }));
  const bus = spawn('dbus-daemon', ['--session', '--nofork', '--print-address'], { stdio: ['ignore', 'pipe', 'ignore'] });
  procs.push(bus);
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('dbus-daemon did not start')), 10_000);
    bus.stdout!.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString().trim());
    });
  });
  const env = { DISPLAY: display, DBUS_SESSION_BUS_ADDRESS: address };
  procs.push(spawn('dunst', [], { env: { ...process.env, ...env }, stdio: 'ignore' }));
  const stop = (): void => {
    for (const p of procs) p.kill('SIGKILL');
  };
  // Until dunst owns the notification service.
  for (let i = 0; i < 100; i++) {
    const r = await run('dunstctl', ['is-paused'], { env: { ...process.env, ...env }, timeoutMs: 5_000 });
    if (r.code === 0) return { env, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error('dunst did not start');
}

interface History {
  data: { summary: { data: string }; body: { data: string }; appname: { data: string } }[][];
}

/**
 * Every notification the daemon received (dunstctl history lists those no
 * longer on screen, so the ones on screen are closed first), waiting a
 * little for one from ncfence to arrive.
 */
async function shownNotifications(env: Record<string, string>): Promise<History> {
  const e = { ...process.env, ...env };
  let h: History = { data: [[]] };
  for (let i = 0; i < 50; i++) {
    await run('dunstctl', ['close-all'], { env: e, timeoutMs: 5_000 });
    h = JSON.parse((await run('dunstctl', ['history'], { env: e, timeoutMs: 5_000 })).stdout) as History;
    if (h.data[0]!.some((n) => n.appname.data === 'ncfence')) return h;
    await new Promise((r) => setTimeout(r, 100));
  }
  return h;
}

test.serial('a closed view sends one desktop notification, which a notification daemon shows; not again within the hour', async (t) => {
  const d = await desktop();
  try {
    const home = join(dir, 'home');
    mkdirSync(home);
    const cfg = join(dir, 'closed.conf');
    writeFileSync(cfg, `upstream = ${P11KIT_TRUST}\nupstream-params = paths=${pki.trustDir}\nview = ${join(dir, 'missing.ncfv')}\npolicy = ${join(ROOT, 'rules/default.json')}\nfix = sudo ncfence refresh\n`);
    chmodSync(cfg, 0o644);
    const env = { ...process.env, ...d.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), NCFENCE_CONFIG: cfg };
    const first = await run('pkcs11-tool', ['--module', MODULE, '--list-slots'], { env, timeoutMs: 30_000 });
    t.regex(first.stderr, /no public root is trusted \(closed view\)/);
    const history = await shownNotifications(d.env);
    const shown = history.data[0]!;
    const ours = shown.filter((n) => n.appname.data === 'ncfence');
    t.is(ours.length, 1, JSON.stringify(history));
    t.is(ours[0]!.summary.data, 'ncfence: no secure site can be verified');
    t.regex(ours[0]!.body.data, /cannot open view .*missing\.ncfv.*Fix: run `sudo ncfence refresh`/s);
    // The next start within the hour: the same warning on stderr, no second notification.
    const again = await run('pkcs11-tool', ['--module', MODULE, '--list-slots'], { env, timeoutMs: 30_000 });
    t.regex(again.stderr, /closed view/);
    await new Promise((r) => setTimeout(r, 1000));
    const after = await shownNotifications(d.env);
    t.is(after.data[0]!.filter((n) => n.appname.data === 'ncfence').length, 1);
  } finally {
    d.stop();
  }
});
