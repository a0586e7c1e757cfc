// The install targets, each in one place: its name, what it is for, the
// options only it takes, and how it installs and uninstalls. The CLI,
// `status` and `doctor` go through this table; adding a target is adding
// an entry here and its module.

import type { BrowserTarget } from '../browser/layout.js';
import { TARGET_POLICY } from '../policy.js';
import type { InstallCommonOptions, Manifest, Target } from './common.js';
import type { Check } from './status.js';

/** What every install takes, and whether p11-kit's is for this user only. */
export interface InstallRequest extends InstallCommonOptions {
  user: boolean;
}

export interface UninstallRequest {
  dir?: string;
  root?: string;
  user: boolean;
}

export interface TargetSpec {
  name: Target;
  /** The command list's lines for `install NAME` (--help). */
  help: string;
  /** Options only this target takes (besides the ones every install takes). */
  options: readonly string[];
  /** The policy this package gives it (docs/policy.md, "Per-target policies"). */
  policy: string;
  /** Whether it fences a browser's own roots (status shows where they came from). */
  browser: boolean;
  install(r: InstallRequest): Promise<Manifest>;
  uninstall(r: UninstallRequest): Promise<Manifest>;
  /** What the commands that install it again or forget it (commandFor) name after the target: where the record says. */
  where(m: Manifest): string;
  /** doctor's checks of its own, beyond the module, view and service (a browser: start it). */
  checks?(m: Manifest): Promise<Check[]>;
}

const browser = (name: BrowserTarget, help: string): TargetSpec => ({
  name,
  help,
  options: ['dir', 'firefox-dir', 'auto-rebuild'],
  policy: TARGET_POLICY.browser,
  browser: true,
  // Loaded on first use: each command loads only what it runs (a rebuild
  // at a consumer's start-up is a CLI run too).
  install: async (r) => (await import('./browser.js')).installBrowser(name, r),
  uninstall: async (r) => (await import('./browser.js')).uninstallBrowser(name, r.dir, r.root),
  where: (m) => ` --dir ${m.location}`,
  checks: async (m) => (await import('./status.js')).browserChecks(name, m.location, m),
});

export const TARGETS: readonly TargetSpec[] = [
  browser(
    'firefox',
    `Put the module at <Firefox dir>/libnssckbi.so, keeping
                        any file it replaces, with a view of Firefox's own
                        roots (read from inside Firefox), fenced; then start
                        Firefox to check it uses exactly those, or undo.`,
  ),
  browser('thunderbird', 'The same for Thunderbird.'),
  browser(
    'tor-browser',
    `The same for Tor Browser (--dir: tor-browser/ or its
                        Browser/ directory).`,
  ),
  {
    name: 'nss',
    help: `Replace the system NSS roots module the Debian way
                        (dpkg-divert), wrapping the diverted original.`,
    options: ['root'],
    policy: TARGET_POLICY.nss,
    browser: false,
    install: async (r) => (await import('./nss.js')).installNss(r),
    uninstall: async (r) => (await import('./nss.js')).uninstallNss(r.root),
    where: (m) => (m.location === '/' ? '' : ` --root ${m.location}`),
  },
  {
    name: 'p11-kit',
    help: `Register the module for p11-kit consumers (GnuTLS...)
                        with trust-policy: yes, and switch p11-kit-trust off
                        for them; --user for this user only.`,
    options: ['user', 'root'],
    policy: TARGET_POLICY['p11-kit'],
    browser: false,
    install: async (r) => (await import('./p11kit.js')).installP11Kit(r),
    uninstall: async (r) => (await import('./p11kit.js')).uninstallP11Kit(r.user, r.root),
    where: (m) => (m.scope === 'system' ? '' : ' --user'),
  },
];

export const TARGET_NAMES: readonly Target[] = TARGETS.map((t) => t.name);

export function targetSpec(name: string): TargetSpec | undefined {
  return TARGETS.find((t) => t.name === name);
}

/** The entry of a recorded install's target (records are written by this table's installs). */
export function specOf(m: Manifest): TargetSpec {
  const t = targetSpec(m.target);
  if (!t) throw new Error(`install record for an unknown target ${m.target}`);
  return t;
}

/** The command that installs a recorded install again (run by the user who made it), or forgets it. */
export function commandFor(verb: 'install' | 'uninstall', m: Manifest): string {
  return `${m.scope === 'system' ? 'sudo ' : ''}ncfence ${verb} ${m.target}${specOf(m).where(m)}`;
}
