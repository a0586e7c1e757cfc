// Starts the Firefox of an install directory headless, offline, with a
// throwaway profile, and reports whether its PSM log says the roots module
// came from the install directory. Bounded in time; kills what it started.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OFFLINE_PREFS = [
  'app.update.disabledForTesting', 'browser.shell.checkDefaultBrowser', 'datareporting.policy.dataSubmissionEnabled',
  'toolkit.telemetry.enabled', 'browser.safebrowsing.malware.enabled', 'browser.safebrowsing.phishing.enabled',
  'network.captive-portal-service.enabled', 'network.connectivity-service.enabled', 'extensions.update.enabled',
  'browser.startup.homepage_override.mstone', 'media.gmp-manager.updateEnabled', 'browser.discovery.enabled',
];

export interface ProbeOutcome {
  loadedFromInstallDir: boolean;
  /** The PSM log line that decided it, if any. */
  line?: string;
  error?: string;
}

function firefoxBinary(dir: string): string | undefined {
  return ['firefox-esr', 'firefox', 'firefox-bin'].map((n) => join(dir, n)).find((p) => existsSync(p));
}

function killLeftovers(marker: string): void {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already, or not ours to read
    }
  }
}

export async function probeFirefoxRoots(dir: string, timeoutMs = 30_000): Promise<ProbeOutcome> {
  const bin = firefoxBinary(dir);
  if (!bin) return { loadedFromInstallDir: false, error: `no Firefox executable in ${dir}` };
  const tmp = mkdtempSync(join(tmpdir(), 'ncfence-doctor-ff-'));
  const profile = join(tmp, 'profile');
  const log = join(tmp, 'moz.log');
  try {
    const prefs = OFFLINE_PREFS.map((p) => `user_pref("${p}", ${p.endsWith('mstone') ? '"ignore"' : 'false'});`).join('\n');
    mkdirSync(profile);
    writeFileSync(join(profile, 'user.js'), `${prefs}\nuser_pref("network.proxy.type", 0);\n`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: tmp,
      XDG_CACHE_HOME: join(tmp, 'cache'),
      XDG_CONFIG_HOME: join(tmp, 'config'),
      MOZ_LOG: 'sync,pipnss:5',
      MOZ_LOG_FILE: log,
      MOZ_REMOTE_SETTINGS_DEVTOOLS: '1',
      MOZ_CRASHREPORTER_DISABLE: '1',
    };
    delete env.DISPLAY;
    delete env.WAYLAND_DISPLAY;
    const child = spawn(bin, ['--headless', '-no-remote', '-profile', profile, 'about:blank'], { env, detached: true, stdio: 'ignore' });
    const deadline = Date.now() + timeoutMs;
    let line: string | undefined;
    while (Date.now() < deadline && line === undefined && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
      for (const f of readdirSync(tmp).filter((n) => n.startsWith('moz.log'))) {
        const m = /^.*loaded (?:external )?CKBI from .*$/m.exec(readFileSync(join(tmp, f), 'utf8'));
        if (m) line = m[0];
      }
    }
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    killLeftovers(tmp);
    if (line === undefined) return { loadedFromInstallDir: false, error: `Firefox logged no roots-module line within ${timeoutMs} ms` };
    return { loadedFromInstallDir: /loaded external CKBI from gre directory/.test(line), line: line.trim() };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
