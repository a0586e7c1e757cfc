// Judging a browser's roots as it uses them against its own
// (src/browser/compare.ts), and a Tor Browser layout to judge.

import type { ExecutionContext } from 'ava';
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RootComparison } from '../../src/browser/compare.js';
import { FIREFOX_ESR140_DIR, hardlinkCopy } from './firefox.js';

/** The browser uses exactly its own roots, fenced: nothing missing, added, changed or unfenced. */
export function assertEquivalent(t: ExecutionContext, c: RootComparison): void {
  for (const k of ['missing', 'extra', 'differences', 'unfenced', 'originalsTrusted', 'otherObjects'] as const) {
    t.deepEqual(c[k], [], `${k}: ${c[k].slice(0, 5).map((d) => `${d.label}: ${d.what}`).join('; ')}`);
  }
  t.is(c.matched, c.stockRoots);
  t.true(c.stockRoots > 100);
}

/**
 * A Tor Browser 15 layout (tor-browser-build projects/browser/build) around
 * Firefox ESR 140, its base: tor-browser/Browser/ holds the browser with
 * the ELF binary as firefox.real, a `firefox` wrapper script, the
 * start-tor-browser launcher, TorBrowser/Data/Browser/profile.default and
 * TorBrowser/Tor; its prefs turn the certificate database off as Tor
 * Browser's do (security.nocertdb, private browsing). `copy` fills
 * Browser/ from a browser directory (hard links by default).
 */
export async function torBrowserStandIn(root: string, src = FIREFOX_ESR140_DIR, copy: (src: string, dest: string) => Promise<void> = hardlinkCopy): Promise<string> {
  const browser = join(root, 'tor-browser', 'Browser');
  mkdirSync(browser, { recursive: true });
  await copy(src, browser);
  rmSync(join(browser, 'firefox-bin'), { force: true });
  renameSync(join(browser, 'firefox-esr'), join(browser, 'firefox.real'));
  writeFileSync(join(browser, 'firefox'), '#!/bin/sh\nexec "$(dirname "$0")/firefox.real" "$@"\n');
  writeFileSync(join(browser, 'start-tor-browser'), '#!/bin/sh\ncd "$(dirname "$0")" && HOME="$PWD" exec ./firefox "$@"\n');
  for (const f of ['firefox', 'start-tor-browser']) chmodSync(join(browser, f), 0o755);
  mkdirSync(join(browser, 'TorBrowser', 'Data', 'Browser', 'profile.default'), { recursive: true });
  mkdirSync(join(browser, 'TorBrowser', 'Tor'), { recursive: true });
  writeFileSync(join(browser, 'defaults', 'pref', '001-tor-browser-standin.js'), 'pref("security.nocertdb", true);\npref("browser.privatebrowsing.autostart", true);\n');
  return join(root, 'tor-browser');
}
