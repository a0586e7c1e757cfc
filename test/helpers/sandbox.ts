// A disposable copy of this machine's whole system for tests that change
// system packages (apt-get install, upgrade, dpkg-divert, /etc): an overlay
// of / whose changes go to a tmpfs, in a mount namespace of its own, entered
// with chroot. Real Debian packages, real dpkg and apt, real programs; the
// host's packages and files are never touched, and everything is gone when
// the sandbox is closed. The network namespace is the host's, so servers
// started by the test on loopback are reachable from inside, and the host's
// files (this checkout, a test's temporary files) are visible read-through.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { run, type RunResult } from './run.js';

export interface Sandbox {
  /** The sandbox's / as seen from the host's mount namespace (empty there: only inside is it mounted). */
  root: string;
  /** Runs a command inside, as root or as `user`, with a clean environment plus `env`. */
  run(cmd: string[], o?: { user?: string; env?: Record<string, string>; timeoutMs?: number; input?: string }): Promise<RunResult>;
  /** Kills everything running inside and drops the namespace (and with it every change). */
  close(): Promise<void>;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export async function makeSandbox(): Promise<Sandbox> {
  const base = mkdtempSync('/tmp/ncfence-sandbox-');
  const merged = join(base, 'merged');
  // The holder keeps the mount namespace alive; commands enter it with nsenter.
  const holder: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', '--fork', 'sleep', '7200'], { stdio: 'ignore' });
  let pid = 0;
  for (let i = 0; i < 200 && pid === 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const r = await run('pgrep', ['-P', String(holder.pid), '-x', 'sleep']);
    pid = Number(r.stdout.trim().split('\n')[0]) || 0;
  }
  if (pid === 0) {
    holder.kill('SIGKILL');
    throw new Error('could not start the sandbox namespace (unshare --mount)');
  }
  const ns = (args: string[], timeoutMs = 60_000) => run('nsenter', ['-t', String(pid), '-m', ...args], { timeoutMs });
  const setup = [
    `mount -t tmpfs -o size=8g tmpfs ${base}`,
    `mkdir ${base}/upper ${base}/work ${merged}`,
    `mount -t overlay overlay -o lowerdir=/,upperdir=${base}/upper,workdir=${base}/work ${merged}`,
    `mount -t proc proc ${merged}/proc`,
    `mount --rbind /sys ${merged}/sys`,
    `mount --rbind /dev ${merged}/dev`,
    `mount -t tmpfs tmpfs ${merged}/run`,
  ].join(' && ');
  const r = await ns(['sh', '-ec', setup]);
  if (r.code !== 0) {
    holder.kill('SIGKILL');
    throw new Error(`could not set up the sandbox: ${r.stderr}`);
  }
  const sandbox: Sandbox = {
    root: merged,
    run: (cmd, o = {}) => {
      const env = ['env', '-i', `PATH=${PATH}`, 'LANG=C.UTF-8', ...(o.user ? [] : ['HOME=/root']), ...Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`)];
      const as = o.user ? ['runuser', '-u', o.user, '--', 'env', `HOME=/home/${o.user}`] : [];
      return run('nsenter', ['-t', String(pid), '-m', 'chroot', merged, ...env, ...as, ...cmd], { timeoutMs: o.timeoutMs ?? 120_000, input: o.input });
    },
    close: async () => {
      // Whatever runs inside (a browser a test started) holds the namespace too.
      for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
        try {
          if (readlinkSync(`/proc/${p}/root`) === merged) process.kill(Number(p), 'SIGKILL');
        } catch {
          // gone, or not ours
        }
      }
      holder.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      try {
        rmdirSync(base);
      } catch {
        // the namespace is still going away; the directory is empty either way
      }
    },
  };
  return sandbox;
}
