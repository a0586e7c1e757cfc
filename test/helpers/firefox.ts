// Test helpers that drive a real (headless) Firefox ESR against loopback
// servers.
//
// Firefox looks for `<install dir>/libnssckbi.so` (the "gre directory") before
// falling back to the roots compiled into libxul (security/manager/ssl/
// nsNSSComponent.cpp, LoadLoadableCertsTask::LoadLoadableRoots), so tests that want Firefox to
// use a particular roots module make a cheap (hardlinked) copy of the install
// with that file replaced and start the copy's real binary.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import {
  access,
  constants as fsConstants,
  copyFile,
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** Where Debian's firefox-esr package installs Firefox. */
export const FIREFOX_INSTALL_DIR = '/usr/lib/firefox-esr';
/**
 * Firefox ESR 140 (the base of Tor Browser 15), unpacked beside the system's
 * ESR by .ci/run (test/get-firefox-esr140.sh: `apt-get download` of the newest
 * firefox-esr 140 in the archive, then `dpkg -x`) without installing it.
 */
export const FIREFOX_ESR140_DIR = process.env.NCFENCE_ESR140_DIR ?? '/var/cache/ncfence-test/firefox-esr-140/usr/lib/firefox-esr';

/** Fails saying what to run when Firefox ESR 140 is not unpacked where the tests look. */
export function requireFirefoxEsr140(): void {
  if (!existsSync(join(FIREFOX_ESR140_DIR, 'libxul.so'))) {
    throw new Error(`Firefox ESR 140 is not unpacked at ${FIREFOX_ESR140_DIR}: run sudo bash test/get-firefox-esr140.sh (.ci/run does)`);
  }
}
/** Where Debian's thunderbird package installs Thunderbird. */
export const THUNDERBIRD_INSTALL_DIR = '/usr/lib/thunderbird';

/** Names the real browser executable may have inside an install dir, in order of preference. */
const FIREFOX_BINARY_NAMES = ['firefox-esr', 'firefox', 'firefox-bin', 'thunderbird-bin'];

function run(cmd: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (err) {
        reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${String(stderr)}`));
      } else {
        resolvePromise();
      }
    });
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function isEmptyOrMissingDir(path: string): Promise<boolean> {
  try {
    return (await readdir(path)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/**
 * The Debian install has relative symlinks pointing outside the install dir
 * (e.g. `distribution -> ../../share/firefox-esr/distribution`,
 * `browser/defaults -> ../../../share/...`, which carries /etc/firefox-esr prefs).
 * In a copy elsewhere those dangle; re-point them at the absolute target
 * resolved against the original location.
 */
async function fixDanglingRelativeSymlinks(srcRoot: string, destRoot: string, rel = ''): Promise<void> {
  const here = join(destRoot, rel);
  for (const entry of await readdir(here, { withFileTypes: true })) {
    const relPath = join(rel, entry.name);
    const destPath = join(destRoot, relPath);
    if (entry.isSymbolicLink()) {
      const target = await readlink(destPath);
      if (isAbsolute(target)) continue;
      const resolvesInCopy = await stat(destPath).then(
        () => true,
        () => false,
      );
      if (resolvesInCopy) continue;
      const originalTarget = resolve(dirname(join(srcRoot, relPath)), target);
      if (!(await exists(originalTarget))) continue;
      await unlink(destPath);
      await symlink(originalTarget, destPath);
    } else if (entry.isDirectory()) {
      await fixDanglingRelativeSymlinks(srcRoot, destRoot, relPath);
    }
  }
}

/**
 * Copy a browser install (default /usr/lib/firefox-esr) to `destDir` (hardlinks if possible, else a full
 * copy), optionally installing `rootsModule` as `destDir/libnssckbi.so` (as a
 * regular, non-hardlinked file), and return the path of the real Firefox
 * executable inside the copy. Starting that path makes the copy Firefox's GRE
 * directory, so it picks up the copy's libnssckbi.so.
 *
 * `destDir` must not exist or be empty.
 */
export async function copyFirefoxInstall(destDir: string, rootsModule?: string, src = FIREFOX_INSTALL_DIR): Promise<string> {
  const dest = resolve(destDir);
  if (!(await isEmptyOrMissingDir(dest))) {
    throw new Error(`copyFirefoxInstall: ${dest} exists and is not empty`);
  }
  await mkdir(dirname(dest), { recursive: true });
  try {
    // `src/.` copies the contents whether or not dest exists already.
    await run('cp', ['-al', `${src}/.`, dest], 120_000);
  } catch {
    // Different filesystem, or hardlinks not permitted: full copy.
    await rm(dest, { recursive: true, force: true });
    await run('cp', ['-a', `${src}/.`, dest], 300_000);
  }
  await fixDanglingRelativeSymlinks(src, dest);

  if (rootsModule !== undefined) {
    const target = join(dest, 'libnssckbi.so');
    // Unlink first: writing through a hardlink would modify the original install.
    await rm(target, { force: true });
    await copyFile(rootsModule, target);
    await chmod(target, 0o755);
  }

  for (const name of FIREFOX_BINARY_NAMES) {
    const candidate = join(dest, name);
    try {
      const st = await lstat(candidate);
      if (!st.isFile()) continue; // skip the firefox-bin -> firefox-esr symlink
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // try next name
    }
  }
  throw new Error(`copyFirefoxInstall: no Firefox executable found in ${dest}`);
}

export interface ProbeResult {
  /** Outcome per URL (keyed by the URL string, so pass distinct URLs). */
  results: Record<string, 'load' | 'error' | 'timeout'>;
  /** With retryAfterMs: the outcome of each URL's first try (results holds the last). */
  firstTry: Record<string, 'load' | 'error' | 'timeout'>;
  /** Milliseconds from the start of each URL's last try to its load or error event, as the page measured them. */
  ms: Record<string, number>;
  /** Concatenated MOZ_LOG output (pipnss:5) of all Firefox processes. */
  log: string;
  /** Tail of Firefox's stdout+stderr (diagnostics only). */
  output: string;
}

export interface ProbeOptions {
  /** Firefox executable (e.g. from copyFirefoxInstall, or /usr/lib/firefox-esr/firefox-esr). */
  firefox: string;
  /** Script URLs to load, each via `<script src=URL>`. */
  urls: string[];
  /**
   * Host names that resolve to loopback (network.dns.localDomains). Every URL's
   * host must be one of these, `localhost` or a 127.x IP literal (else throws),
   * so that no real DNS lookup can happen.
   */
  hosts: string[];
  /**
   * Upper bound for waiting for all reports, counted from Firefox's launch
   * (startup included; prepareProfile is not). Cleanup adds at most ~15 s.
   */
  timeoutMs: number;
  /**
   * Extra environment variables for Firefox (override the defaults). If you
   * override MOZ_LOG, keep `sync` in it or log lines may be lost on kill.
   */
  env?: Record<string, string>;
  /** Extra raw user.js lines, e.g. `user_pref("foo", true);`. */
  profilePrefs?: string[];
  /** Called with the fresh profile dir after user.js is written, before Firefox starts. */
  prepareProfile?: (profileDir: string) => Promise<void>;
  /**
   * Load a URL whose first try fails once more, this many ms later (a reload:
   * ncfence answers a `.bit` name whose source is slow on a later try).
   */
  retryAfterMs?: number;
  /** Load the URLs in the page one after the other (each once the one before has loaded or failed), not all at once. */
  sequential?: boolean;
  /** Start loading this many ms after the page has loaded (a browser that has settled after its start-up). */
  startAfterMs?: number;
}

/** user.js prefs that keep Firefox off the network and make startup quick. */
export const BASE_PREFS: Record<string, string | number | boolean> = {
  // Updates
  'app.update.disabledForTesting': true,
  'app.update.auto': false,
  'app.update.checkInstallTime': false,
  'app.update.url': '',
  'extensions.update.enabled': false,
  'extensions.update.autoUpdateDefault': false,
  'extensions.systemAddon.update.enabled': false,
  'extensions.systemAddon.update.url': '',
  'extensions.getAddons.cache.enabled': false,
  'extensions.getAddons.discovery.api_url': 'data:,',
  'extensions.htmlaboutaddons.recommendations.enabled': false,
  'extensions.blocklist.enabled': false,
  'browser.search.update': false,
  'media.gmp-manager.url': 'data:,',
  'media.gmp-manager.updateEnabled': false,
  'media.gmp-gmpopenh264.enabled': false,
  'media.gmp-widevinecdm.enabled': false,
  // Telemetry / data reporting / studies
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.policy.dataSubmissionPolicyBypassNotification': true,
  'datareporting.healthreport.uploadEnabled': false,
  'datareporting.usage.uploadEnabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.server': 'data:,',
  'toolkit.telemetry.archive.enabled': false,
  'toolkit.telemetry.shutdownPingSender.enabled': false,
  'toolkit.telemetry.newProfilePing.enabled': false,
  'toolkit.telemetry.firstShutdownPing.enabled': false,
  'toolkit.telemetry.updatePing.enabled': false,
  'toolkit.telemetry.bhrPing.enabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'app.normandy.enabled': false,
  'app.normandy.api_url': '',
  'app.shield.optoutstudies.enabled': false,
  'messaging-system.rsexperimentloader.enabled': false,
  'browser.ping-centre.telemetry': false,
  'browser.discovery.enabled': false,
  'browser.crashReports.unsubmittedCheck.enabled': false,
  'breakpad.reportURL': '',
  // Remote settings (also feeds CRLite, intermediates, Nimbus, translations...)
  'services.settings.server': 'data:,#remote-settings-dummy/v1',
  'security.remote_settings.crlite_filters.enabled': false,
  'security.remote_settings.intermediates.enabled': false,
  // Captive portal / connectivity checks
  'network.captive-portal-service.enabled': false,
  'captivedetect.canonicalURL': '',
  'network.connectivity-service.enabled': false,
  // DNS: no DoH/TRR, no prefetching, no HTTPS RR lookups
  'network.trr.mode': 5,
  'network.trr.uri': '',
  'network.trr.confirmationNS': 'skip',
  'doh-rollout.disable-heuristics': true,
  'doh-rollout.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.dns.native_https_query': false,
  'network.dns.echconfig.enabled': false,
  'network.prefetch-next': false,
  'network.predictor.enabled': false,
  'network.http.speculative-parallel-limit': 0,
  'network.http.http3.enable': false,
  'network.proxy.type': 0,
  // Safe Browsing / tracking-protection list updates
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.safebrowsing.downloads.remote.enabled': false,
  'browser.safebrowsing.blockedURIs.enabled': false,
  'browser.safebrowsing.passwords.enabled': false,
  'browser.safebrowsing.update.enabled': false,
  'browser.safebrowsing.provider.google.updateURL': '',
  'browser.safebrowsing.provider.google.gethashURL': '',
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.google4.gethashURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'browser.safebrowsing.provider.mozilla.gethashURL': '',
  // Certificate checking that would go to the network
  'security.OCSP.enabled': 0,
  'security.OCSP.require': false,
  'security.certerrors.mitm.priming.enabled': false,
  'security.certerrors.mitm.auto_enable_enterprise_roots': false,
  'security.enterprise_roots.enabled': false,
  // First-run / start pages / new tab
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.startup.page': 0,
  'browser.startup.homepage': 'about:blank',
  'browser.startup.firstrunSkipsHomepage': true,
  'startup.homepage_welcome_url': '',
  'startup.homepage_welcome_url.additional': '',
  'startup.homepage_override_url': '',
  'browser.aboutwelcome.enabled': false,
  'trailhead.firstrun.didSeeAboutWelcome': true,
  'browser.newtabpage.enabled': false,
  'browser.newtab.preload': false,
  'browser.newtabpage.activity-stream.feeds.system.topstories': false,
  'browser.newtabpage.activity-stream.feeds.section.topstories': false,
  'browser.newtabpage.activity-stream.feeds.snippets': false,
  'browser.newtabpage.activity-stream.feeds.topsites': false,
  'browser.newtabpage.activity-stream.feeds.telemetry': false,
  'browser.newtabpage.activity-stream.telemetry': false,
  'browser.newtabpage.activity-stream.default.sites': '',
  'browser.topsites.contile.enabled': false,
  'browser.topsites.useRemoteSetting': false,
  'browser.uitour.enabled': false,
  'browser.urlbar.quicksuggest.enabled': false,
  'browser.pagethumbnails.capturing_disabled': true,
  'browser.tabs.warnOnClose': false,
  'browser.warnOnQuit': false,
  'browser.sessionstore.resume_from_crash': false,
  'toolkit.startup.max_resumed_crashes': -1,
  // Misc services that phone home
  'identity.fxaccounts.enabled': false,
  'dom.push.connection.enabled': false,
  'dom.push.serverURL': '',
  'geo.provider.network.url': '',
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'browser.search.geoip.url': '',
  'browser.translations.enable': false,
  'browser.ml.enable': false,
  'signon.management.page.breach-alerts.enabled': false,
  'signon.rememberSignons': false,
  // Keep our http:// page as is
  'dom.security.https_first': false,
  'dom.security.https_only_mode': false,
  // Page console output to stdout (ends up in ProbeResult.output)
  'browser.dom.window.dump.enabled': true,
  'devtools.console.stdout.content': true,
};

export function prefLine(name: string, value: string | number | boolean): string {
  return `user_pref(${JSON.stringify(name)}, ${JSON.stringify(value)});`;
}

function probePage(urls: string[], retryAfterMs: number | undefined, sequential: boolean, startAfterMs: number): string {
  // The report uses an <img> ping so that nothing (CORS, fetch) can interfere.
  const script = `
const urls = ${JSON.stringify(urls).replace(/</g, '\\u003c')};
const retryAfterMs = ${JSON.stringify(retryAfterMs ?? null)};
new Image().src = '/ready?t=' + Date.now();
const load = (i, attempt, first, next) => {
  const u = urls[i];
  let done = false;
  const t0 = performance.now();
  const settle = (r) => {
    if (done) return;
    done = true;
    if (r === 'error' && attempt === 0 && retryAfterMs !== null) return void setTimeout(() => load(i, 1, r, next), retryAfterMs);
    new Image().src = '/report?i=' + i + '&r=' + r + '&first=' + (first || r) + '&ms=' + (performance.now() - t0) + '&t=' + Date.now();
    next();
  };
  const s = document.createElement('script');
  s.onload = () => settle('load');
  s.onerror = () => settle('error');
  s.src = attempt === 0 ? u : u + (u.includes('?') ? '&' : '?') + 'retry=' + attempt;
  document.head.appendChild(s);
};
setTimeout(() => {
  if (${JSON.stringify(sequential)}) {
    const step = (i) => { if (i < urls.length) load(i, 0, '', () => step(i + 1)); };
    step(0);
  } else {
    urls.forEach((u, i) => load(i, 0, '', () => undefined));
  }
}, ${JSON.stringify(startAfterMs)});
`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>ncfence probe</title></head><body><script>${script}</script></body></html>`;
}

/** Waits for `p` at most `ms` milliseconds; resolves undefined on timeout or rejection. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => resolvePromise(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolvePromise(v);
      },
      () => {
        clearTimeout(timer);
        resolvePromise(undefined);
      },
    );
  });
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // group gone already
  }
  try {
    child.kill(signal);
  } catch {
    // already dead
  }
}

/**
 * SIGKILL leftover processes whose command line mentions `marker` (our temp
 * dir). Firefox's crashhelper puts itself in its own process group and is
 * re-parented to init, so the group kill does not reach it.
 */
export async function killByCmdline(marker: string): Promise<void> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  } catch {
    return;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(marker)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone, or not ours to read
    }
  }
}

async function readLogs(logDir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(logDir)).sort();
  } catch {
    return '';
  }
  const parts: string[] = [];
  for (const name of names) {
    try {
      const text = await readFile(join(logDir, name), 'utf8');
      parts.push(`==> ${name} <==\n${text}`);
    } catch {
      // not a readable file
    }
  }
  return parts.join('\n');
}

/**
 * Refuse URLs whose host would need a real DNS lookup: only names listed in
 * `hosts` (mapped to loopback by network.dns.localDomains), localhost and
 * loopback IP literals are allowed.
 */
function assertLoopbackOnly(urls: string[], hosts: string[]): void {
  const allowed = new Set(hosts.map((h) => h.toLowerCase()));
  for (const u of urls) {
    const host = new URL(u).hostname.toLowerCase();
    const ok = allowed.has(host) || host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
    if (!ok) throw new Error(`probeUrls: host of ${u} is not in hosts and not loopback`);
  }
}

const OUTPUT_LIMIT = 256 * 1024;

/**
 * Start headless Firefox with a fresh profile on a loopback page that loads
 * each URL with `<script src=URL>` and reports onload/onerror back. Never
 * hangs: everything is bounded by `timeoutMs` plus a few seconds of cleanup.
 */
export async function probeUrls(opts: ProbeOptions): Promise<ProbeResult> {
  assertLoopbackOnly(opts.urls, opts.hosts);
  const results: Record<string, 'load' | 'error' | 'timeout'> = {};
  const firstTry: Record<string, 'load' | 'error' | 'timeout'> = {};
  const ms: Record<string, number> = {};
  for (const u of opts.urls) results[u] = firstTry[u] = 'timeout';
  const reported = new Set<number>();

  const base = await mkdtemp(join(tmpdir(), 'ncfence-ff-'));
  const profileDir = join(base, 'profile');
  const homeDir = join(base, 'home');
  const cacheDir = join(base, 'cache');
  const logDir = join(base, 'log');
  const runtimeDir = join(base, 'runtime');

  let output = '';
  let child: ChildProcess | undefined;
  let resolveAllReported: () => void = () => {};
  const allReported = new Promise<void>((r) => {
    resolveAllReported = r;
  });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(probePage(opts.urls, opts.retryAfterMs, opts.sequential ?? false, opts.startAfterMs ?? 0));
      return;
    }
    if (url.pathname === '/ready') {
      if (opts.urls.length === 0) resolveAllReported();
      res.writeHead(204, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (url.pathname === '/report') {
      const i = Number(url.searchParams.get('i'));
      const r = url.searchParams.get('r');
      const u = opts.urls[i];
      if (Number.isInteger(i) && u !== undefined && (r === 'load' || r === 'error') && !reported.has(i)) {
        reported.add(i);
        results[u] = r;
        const first = url.searchParams.get('first');
        firstTry[u] = first === 'load' || first === 'error' ? first : r;
        ms[u] = Number(url.searchParams.get('ms'));
        if (reported.size === opts.urls.length) resolveAllReported();
      }
      res.writeHead(204, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    res.writeHead(404);
    res.end();
  });

  try {
    await Promise.all([profileDir, homeDir, cacheDir, logDir, runtimeDir].map((d) => mkdir(d, { mode: 0o700 })));

    const prefs = { ...BASE_PREFS, 'network.dns.localDomains': opts.hosts.join(',') };
    const userJs = [...Object.entries(prefs).map(([k, v]) => prefLine(k, v)), ...(opts.profilePrefs ?? [])];
    await writeFile(join(profileDir, 'user.js'), userJs.join('\n') + '\n');
    if (opts.prepareProfile) await opts.prepareProfile(profileDir);

    server.listen(0, '127.0.0.1');
    await withTimeout(once(server, 'listening'), 10_000);
    const port = (server.address() as AddressInfo | null)?.port;
    if (port === undefined) throw new Error('probeUrls: http server did not start');

    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined) env[k] = v;
    }
    Object.assign(env, {
      HOME: homeDir,
      XDG_CACHE_HOME: cacheDir,
      XDG_CONFIG_HOME: join(homeDir, '.config'),
      XDG_DATA_HOME: join(homeDir, '.local', 'share'),
      XDG_RUNTIME_DIR: runtimeDir,
      TMPDIR: base,
      MOZ_HEADLESS: '1',
      MOZ_NO_REMOTE: '1',
      MOZ_CRASHREPORTER_DISABLE: '1',
      // Release builds ignore services.settings.server (and keep fetching from
      // firefox.settings.services.mozilla.com) unless this is set.
      MOZ_REMOTE_SETTINGS_DEVTOOLS: '1',
      MOZ_DISABLE_AUTO_SAFE_MODE: '1',
      MOZ_LOG: 'sync,pipnss:5',
      MOZ_LOG_FILE: join(logDir, 'moz.log'),
    });
    delete env['DISPLAY']; // headless: never touch a real display
    delete env['WAYLAND_DISPLAY'];
    Object.assign(env, opts.env ?? {});

    const deadline = Date.now() + opts.timeoutMs;
    // Firefox runs with cwd = the temp dir, so make a relative executable path absolute.
    const firefox = opts.firefox.includes('/') ? resolve(opts.firefox) : opts.firefox;
    child = spawn(firefox, ['--headless', '-no-remote', '-profile', profileDir, `http://127.0.0.1:${port}/`], {
      env,
      cwd: base,
      detached: true, // own process group, so we can kill content processes too
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const exited = new Promise<void>((r) => {
      child?.once('exit', () => r());
      child?.once('error', (err) => {
        append(Buffer.from(`\n[spawn error] ${err.message}\n`));
        r();
      });
    });

    await withTimeout(Promise.race([allReported, exited]), Math.max(0, deadline - Date.now()));

    // Stop Firefox: SIGTERM to the group, then SIGKILL.
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child, 'SIGTERM');
      await withTimeout(exited, 5_000);
    }
    killGroup(child, 'SIGKILL'); // stragglers in the group (content processes)
    await withTimeout(exited, 5_000);

    const log = await readLogs(logDir);
    return { results, firstTry, ms, log, output };
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) killGroup(child, 'SIGKILL');
    if (child) await killByCmdline(`${base}/`);
    server.closeAllConnections();
    if (server.listening) {
      await withTimeout(
        new Promise<void>((r) => server.close(() => r())),
        5_000,
      );
    }
    // Content processes may linger for a moment after SIGKILL of the group; retry removal.
    await rm(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }).catch(() => undefined);
  }
}

/**
 * A browser update under an install: replaces the browser files of `copy`
 * with those of `src` (hard links: ncfence replaces files by rename, never
 * writes through a link), keeping what ncfence placed there.
 */
export async function swapBrowser(copy: string, src: string): Promise<void> {
  const { INSTALLED_NAMES } = await import('../../src/install/browser.js');
  for (const name of await readdir(copy)) {
    if (INSTALLED_NAMES.includes(name)) continue;
    await rm(join(copy, name), { recursive: true, force: true });
  }
  await hardlinkCopy(src, copy);
}

/** cp -al of a directory's contents into `dest`. */
export async function hardlinkCopy(src: string, dest: string): Promise<void> {
  await run('cp', ['-al', `${src}/.`, dest], 120_000);
}
