// Where Gecko browsers live and what their install directories hold:
// Firefox (and Firefox ESR), Thunderbird and Tor Browser. Every one loads
// `<install dir>/libnssckbi.so` as its roots module when the file exists
// (Firefox security/manager/ssl/nsNSSComponent.cpp,
// LoadLoadableCertsTask::LoadLoadableRoots: the GRE directory before the
// roots built into libxul), where the install directory holds libxul.so.

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../engine/errors.js';

export type BrowserTarget = 'firefox' | 'thunderbird' | 'tor-browser';
export const BROWSER_TARGETS: readonly BrowserTarget[] = ['firefox', 'thunderbird', 'tor-browser'];

/** What each target calls itself in messages. */
export const BROWSER_NAME: Record<BrowserTarget, string> = { firefox: 'Firefox', thunderbird: 'Thunderbird', 'tor-browser': 'Tor Browser' };

/** Install directories tried when none is named, in order. */
export function browserCandidates(target: BrowserTarget): string[] {
  const home = homedir();
  switch (target) {
    case 'firefox':
      return ['/usr/lib/firefox-esr', '/usr/lib/firefox', '/opt/firefox', '/usr/local/lib/firefox'];
    case 'thunderbird':
      return ['/usr/lib/thunderbird', '/opt/thunderbird', '/usr/local/lib/thunderbird'];
    case 'tor-browser':
      // Tor Browser's archive unpacks to tor-browser/ with the browser in
      // tor-browser/Browser/ (tor-browser-build projects/browser/build); the
      // launcher tor-browser/Browser/start-tor-browser runs the binary there.
      return [
        join(home, 'tor-browser/Browser'),
        join(home, 'tor-browser_en-US/Browser'),
        join(home, '.local/share/torbrowser/tbb/x86_64/tor-browser/Browser'),
        '/opt/tor-browser/Browser',
      ];
  }
}

/**
 * The browser's install directory for a directory a user names: the
 * directory holding libxul.so itself, or a Tor Browser top directory
 * (tor-browser/, whose browser is in Browser/).
 */
export function resolveBrowserDir(dir: string): string | undefined {
  if (isBrowserDir(dir)) return dir;
  const inner = join(dir, 'Browser');
  return isBrowserDir(inner) ? inner : undefined;
}

export function isBrowserDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && existsSync(join(dir, 'libxul.so'));
  } catch {
    return false;
  }
}

export function findBrowserDir(target: BrowserTarget): string {
  const found = browserCandidates(target).find(isBrowserDir);
  if (!found) {
    throw new EngineError('USAGE', `no ${BROWSER_NAME[target]} install found in ${browserCandidates(target).join(', ')}; name one with --dir DIR`);
  }
  return found;
}

function isElfExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(4);
      return readSync(fd, b, 0, 4, 0) === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * The browser's own executable in its install directory (never a launcher
 * script: Tor Browser's start-tor-browser and older `firefox` wrappers
 * would start tor or change the profile).
 */
export function browserBinary(dir: string): string {
  const names = ['firefox-esr', 'firefox', 'firefox.real', 'thunderbird', 'firefox-bin', 'thunderbird-bin'];
  const found = names.map((n) => join(dir, n)).find(isElfExecutable);
  if (!found) throw new EngineError('USAGE', `no browser executable (${names.join(', ')}) in ${dir}`);
  return found;
}
