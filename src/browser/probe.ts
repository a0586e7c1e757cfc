// Reads a browser's roots from inside the browser (docs/design.md, "Browser
// targets"): starts it headless, offline, with a throwaway profile whose
// pkcs11.txt loads libncfence-probe.so (addon/probe/probe.c), which writes
// every object of the roots token the browser uses to a file. Bounded in
// time; kills everything it started.
//
// `stock: true` reads the browser's own builtins: the browser runs from a
// shadow of its directory (its executable copied, everything else linked)
// without libnssckbi.so, so it cannot load ncfence (or any other roots file)
// and falls back to the roots compiled into its libxul. This is also what
// keeps a rebuild from recursing into itself. `stock: false` reads what the
// browser really uses as installed (doctor, tests).

import { spawn } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError } from '../engine/errors.js';
import type { UpstreamObject } from '../pkcs11/objects.js';
import { STRUCT_SIZES, type TokenSnapshot } from '../view/format.js';
import { browserBinary } from './layout.js';
import { safeTempBase } from '../install/owner.js';

export const PROBE_LIBRARY = fileURLToPath(new URL('../../build/Release/libncfence-probe.so', import.meta.url));
const PROBE_VERSION = 'ncfence-probe-v1';

/** Files of an install directory the shadow leaves out: any roots module file and what ncfence puts beside it. */
const NOT_SHADOWED = /^(libnssckbi\.so.*|ncfence\.conf.*|view\.ncfv.*|ncfence-install\.json.*|ncfence-policy\.json.*)$/;

const QUIET_PREFS: [string, string][] = [
  ['app.update.disabledForTesting', 'true'],
  ['app.update.auto', 'false'],
  ['browser.shell.checkDefaultBrowser', 'false'],
  ['datareporting.policy.dataSubmissionEnabled', 'false'],
  ['toolkit.telemetry.enabled', 'false'],
  ['browser.safebrowsing.malware.enabled', 'false'],
  ['browser.safebrowsing.phishing.enabled', 'false'],
  ['network.captive-portal-service.enabled', 'false'],
  ['network.connectivity-service.enabled', 'false'],
  ['extensions.update.enabled', 'false'],
  ['browser.startup.homepage_override.mstone', '"ignore"'],
  ['media.gmp-manager.updateEnabled', 'false'],
  ['network.proxy.type', '0'],
  ['mail.shell.checkDefaultClient', 'false'],
  // Tor Browser turns the certificate database, and with it pkcs11.txt,
  // off (security.nocertdb, synced with private browsing at start-up).
  ['security.nocertdb', 'false'],
  ['browser.privatebrowsing.autostart', 'false'],
];

/** The roots token a browser uses, as read from inside it. */
export interface BrowserRoots {
  /** The install directory read. */
  dir: string;
  /** NSS's name for the module ("Builtin Roots Module" in Firefox). */
  module: string;
  /** The file it was loaded from; undefined for the roots compiled into libxul. */
  dll?: string;
  /** The shared object its functions live in (dladdr). */
  functionsIn: string;
  /** Whether its token holds NSS's root-list object. */
  rootList: boolean;
  manufacturer: string;
  description: string;
  /** Its slot's description (a closed ncfence view says why there: addon/notice.c). */
  slotDescription: string;
  tokenLabel: string;
  objects: UpstreamObject[];
  /** The token as recorded for the view (browser targets serve it). */
  snapshot?: TokenSnapshot;
  millis: number;
}

function unescape(s: string): string {
  return Buffer.from(s.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

const hexBytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** Parses the probe's output (format: addon/probe/probe.c). */
export function parseProbeOutput(text: string, dir: string, millis: number): BrowserRoots {
  const lines = text.split('\n');
  if (lines[0] !== PROBE_VERSION) throw new EngineError('UPSTREAM', `the roots probe wrote an unknown format (${lines[0]?.slice(0, 40)})`);
  const fields = new Map<string, string>();
  const objects: UpstreamObject[] = [];
  let ended = false;
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const sp = line.indexOf(' ');
    const key = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    if (key === 'end') ended = true;
    else if (key === 'object') objects.push({ slot: Number(rest), attrs: new Map() });
    else if (key === 'attr') {
      const [type, value = ''] = rest.split(' ');
      const o = objects[objects.length - 1];
      if (!o || !type) throw new EngineError('UPSTREAM', 'the roots probe wrote an attribute outside an object');
      o.attrs.set(parseInt(type, 16), hexBytes(value));
    } else fields.set(key, rest);
  }
  const error = fields.get('error');
  if (error !== undefined) throw new EngineError('UPSTREAM', `could not read the browser's roots from inside it: ${unescape(error)}`);
  if (!ended) throw new EngineError('UPSTREAM', 'the roots probe output is cut short');
  const get = (k: string): string => unescape(fields.get(k) ?? '-');
  const trimmed = (k: string): string => get(k).replace(/[ \0]+$/, '');
  const dll = get('dll');
  const raw = (k: string): Uint8Array | undefined => (fields.has(k) ? hexBytes(fields.get(k)!) : undefined);
  const info = raw('info-raw');
  const slotInfo = raw('slot-info-raw');
  const tokenInfo = raw('token-info-raw');
  const slot = fields.get('slot');
  const snapshot =
    info?.length === STRUCT_SIZES.info && slotInfo?.length === STRUCT_SIZES.slotInfo && tokenInfo?.length === STRUCT_SIZES.tokenInfo && slot !== undefined
      ? { info, slot: Number(slot), slotInfo, tokenInfo, objects: objects.map((o) => ({ slot: o.slot, attrs: [...o.attrs.entries()] })) }
      : undefined;
  return {
    dir,
    module: get('module'),
    ...(dll === '-' ? {} : { dll }),
    functionsIn: get('functions-in'),
    rootList: fields.get('root-list') === 'yes',
    manufacturer: trimmed('manufacturer'),
    description: trimmed('description'),
    slotDescription: trimmed('slot-description'),
    tokenLabel: trimmed('token-label'),
    objects,
    ...(snapshot ? { snapshot } : {}),
    millis,
  };
}

/** A copy of the install directory's layout that runs the same browser but holds no roots module file. */
function makeShadow(dir: string, into: string, binary: string): string {
  mkdirSync(into);
  for (const name of readdirSync(dir)) {
    if (NOT_SHADOWED.test(name)) continue;
    const from = join(dir, name);
    if (from === binary) {
      // The browser finds its directory from its executable's real path
      // (/proc/self/exe), so the executable itself is copied.
      copyFileSync(from, join(into, name));
      continue;
    }
    let target: string;
    try {
      target = realpathSync(from);
    } catch {
      continue; // a dangling link in the install directory: nothing to run
    }
    symlinkSync(target, join(into, name));
  }
  return join(into, basename(binary));
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

export interface ReadOptions {
  /** Read the browser's own builtins (a shadow without libnssckbi.so) rather than what it uses as installed. */
  stock: boolean;
  timeoutMs?: number;
  /** Let an ncfence module the browser loads run its rebuild (tests of the update path); off by default. */
  allowRebuild?: boolean;
  /** Extra environment for the browser (tests). */
  env?: NodeJS.ProcessEnv;
  /** Receives the browser's stderr (tests: the module's warnings). */
  stderr?: (text: string) => void;
  /** Run the browser as this user (tests, as root: a user's own browser). */
  uid?: number;
}

function browserEnv(tmp: string, o: ReadOptions): NodeJS.ProcessEnv {
  // A clean environment: a rebuild runs inside a browser, whose MOZ_* and
  // XRE_* variables (profile, restart state) must not reach the browser
  // started here.
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmp,
    XDG_CACHE_HOME: join(tmp, 'cache'),
    XDG_CONFIG_HOME: join(tmp, 'config'),
    XDG_DATA_HOME: join(tmp, 'data'),
    LANG: 'C.UTF-8',
    // Its own temporary directory: Firefox ESR 153 started while another
    // ESR 153 sat in C_Initialize (a rebuild at start-up) waited 5 s on
    // something it shares through $TMPDIR (strace; bench/browser.bench.ts).
    TMPDIR: tmp,
    MOZ_HEADLESS: '1',
    MOZ_CRASHREPORTER_DISABLE: '1',
    MOZ_DISABLE_AUTO_SAFE_MODE: '1',
    ...(o.allowRebuild ? {} : { NCFENCE_REBUILDING: '1' }),
    ...o.env,
  };
}

/** Starts the browser of `dir` with the probe and returns what it read. */
export async function readBrowserRoots(dir: string, o: ReadOptions): Promise<BrowserRoots> {
  const started = performance.now();
  const timeoutMs = o.timeoutMs ?? 30_000;
  if (!existsSync(PROBE_LIBRARY)) throw new EngineError('USAGE', `the roots probe ${PROBE_LIBRARY} is missing: run npm ci (or npm run build) in the ncfence package`);
  const realBinary = browserBinary(dir);
  // Root ignores $TMPDIR: under sudo -E it is the user's, who could swap
  // the directory the browser loads the probe from (owner.ts).
  const tmp = mkdtempSync(join(safeTempBase(), 'ncfence-browser-'));
  if (/[\s"'\\]/.test(tmp)) throw new EngineError('USAGE', `temporary directory ${tmp} has a space or quote, which pkcs11.txt cannot hold; set TMPDIR`);
  const out = join(tmp, 'roots.txt');
  let stderr = '';
  try {
    const binary = o.stock ? makeShadow(dir, join(tmp, 'gre'), realBinary) : realBinary;
    const probe = join(tmp, 'libncfence-probe.so');
    copyFileSync(PROBE_LIBRARY, probe);
    const profile = join(tmp, 'profile');
    mkdirSync(profile);
    writeFileSync(join(profile, 'pkcs11.txt'), `library=${probe}\nname=ncfence roots probe\nparameters=${out}\n\n`);
    writeFileSync(join(profile, 'user.js'), QUIET_PREFS.map(([k, v]) => `user_pref("${k}", ${v});`).join('\n') + '\n');
    if (o.uid !== undefined) for (const p of [tmp, profile, probe, join(profile, 'pkcs11.txt'), join(profile, 'user.js')]) chownSync(p, o.uid, o.uid);
    const child = spawn(binary, ['--headless', '-no-remote', '-profile', profile, 'about:blank'], {
      env: browserEnv(tmp, o),
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(o.uid !== undefined ? { uid: o.uid, gid: o.uid } : {}),
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 1 << 20) stderr += d.toString();
    });
    let spawnError: Error | undefined;
    child.once('error', (e) => (spawnError = e));
    const deadline = Date.now() + timeoutMs;
    try {
      while (!existsSync(out)) {
        if (spawnError) throw new EngineError('UPSTREAM', `cannot start ${binary}: ${spawnError.message}`);
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new EngineError('UPSTREAM', `${realBinary} exited (${child.exitCode ?? child.signalCode}) before its roots could be read${stderr ? `: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`);
        }
        if (Date.now() > deadline) throw new EngineError('UPSTREAM', `${realBinary} did not load a roots module within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      killLeftovers(tmp);
    }
    const roots = parseProbeOutput(readFileSync(out, 'utf8'), dir, Math.round(performance.now() - started));
    o.stderr?.(stderr);
    if (o.stock) checkBuiltins(roots, join(dir, 'libxul.so'), realBinary);
    return roots;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The same file, whichever link names it. */
function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The stock read must have found the roots compiled into this browser's
 * libxul (loaded by function, from no file of their own), and nothing else.
 * Thunderbird loads libxul by its real path, Firefox by the shadow's link:
 * the file is compared, not the name.
 */
function checkBuiltins(roots: BrowserRoots, libxul: string, binary: string): void {
  const why =
    roots.dll !== undefined || !sameFile(roots.functionsIn, libxul)
      ? `its roots module came from ${roots.dll ?? roots.functionsIn}, not from its libxul.so`
      : !roots.rootList
        ? 'its roots token holds no root list'
        : roots.manufacturer !== 'Mozilla Foundation'
          ? `its roots module says it is made by "${roots.manufacturer}"`
          : undefined;
  if (why) throw new EngineError('UPSTREAM', `${binary} did not use its own built-in roots (${why}); ncfence reads a browser's roots only from the browser itself`);
}
