// Runs a command with a bounded time and collects its output; never throws
// on a non-zero exit (the caller asserts on it).

import { spawn } from 'node:child_process';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    // A command that exits without reading its input is not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs and throws with the output when the command fails. */
export async function runOk(cmd: string, args: readonly string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}${r.timedOut ? ' (timed out)' : ''}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The Debian 12 package each tool the tests run comes from (.ci/run installs them all). */
const TOOL_PACKAGES: Record<string, string> = {
  certutil: 'libnss3-tools', modutil: 'libnss3-tools', vfychain: 'libnss3-tools', tstclnt: 'libnss3-tools',
  'p11-kit': 'p11-kit', trust: 'p11-kit', p11tool: 'gnutls-bin', 'gnutls-cli': 'gnutls-bin', certtool: 'gnutls-bin',
  'pkcs11-tool': 'opensc', openssl: 'openssl', csplit: 'coreutils', sh: 'dash',
  'firefox-esr': 'firefox-esr', thunderbird: 'thunderbird', knotd: 'knot', knotc: 'knot',
  unbound: 'unbound', 'unbound-checkconf': 'unbound', Xvfb: 'xvfb', dunst: 'dunst', dunstctl: 'dunst',
  'notify-send': 'libnotify-bin', 'dbus-daemon': 'dbus', 'rsvg-convert': 'librsvg2-bin',
  gcc: 'build-essential', 'pkg-config': 'pkg-config', clang: 'clang libclang-rt-14-dev', nm: 'binutils',
  java: 'default-jdk-headless', javac: 'default-jdk-headless', keytool: 'default-jdk-headless',
  setpriv: 'util-linux', unshare: 'util-linux', nsenter: 'util-linux', runuser: 'util-linux',
  'dpkg-divert': 'dpkg', sudo: 'sudo', git: 'git', npm: 'nodejs (NodeSource: README, Quick start)',
};

/** Fails loudly, saying what to install, when a tool the tests need is missing (CI installs them all). */
export async function requireTool(name: string, path = process.env.PATH ?? ''): Promise<void> {
  // The search path is passed, never set in process.env: tests in one file run
  // at once, and a changed PATH there would hide tools from the others.
  const r = await run('/bin/sh', ['-c', `command -v ${name}`], { env: { ...process.env, PATH: path } });
  const pkg = TOOL_PACKAGES[name];
  if (r.code !== 0) throw new Error(`${name} is not installed: ${pkg ? `sudo apt-get install ${pkg}` : 'install it'} (.ci/run installs every tool the tests use)`);
}
