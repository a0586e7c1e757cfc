// NSS tool helpers: throwaway databases holding one roots module, vfychain
// and tstclnt runs, and an OpenSSL TLS server on loopback.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { run, runOk, type RunResult } from './run.js';

/** A new NSS database whose only roots come from `module` (with `params` as its parameter string). */
export async function makeNssDb(dir: string, name: string, module: string, params = '', env?: NodeJS.ProcessEnv): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await runOk('certutil', ['-N', '--empty-password', '-d', `sql:${dir}`]);
  const args = ['-dbdir', `sql:${dir}`, '-add', name, '-libfile', module, '-force'];
  if (params) args.push('-string', params);
  await runOk('modutil', args, { env });
  return `sql:${dir}`;
}

export interface Verdict {
  ok: boolean;
  /** NSS error name or number printed by the tool, e.g. "-8080" or "SEC_ERROR_CERT_NOT_IN_NAME_SPACE". */
  output: string;
}

/** vfychain for SSL server usage; `pkix` selects libpkix (-pp), else the classic verifier; `at` pins the time (YYMMDDHHMMZ). */
export async function vfychain(db: string, leafFile: string, interFile: string, pkix: boolean, env?: NodeJS.ProcessEnv, at?: string): Promise<Verdict> {
  const args = ['-d', db, ...(pkix ? ['-pp'] : []), ...(at ? ['-b', at] : []), '-u', '1', '-a', leafFile, '-a', interFile];
  const r = await run('vfychain', args, { env, timeoutMs: 30_000 });
  const output = r.stdout + r.stderr;
  return { ok: r.code === 0 && output.includes('Chain is good!'), output };
}

export interface OpensslServer {
  port: number;
  stop(): void;
}

/** `openssl s_server` on 127.0.0.1 sending leaf + intermediate; killed by stop() or after 60 s. */
export async function startOpensslServer(leafFile: string, keyFile: string, interFile: string): Promise<OpensslServer> {
  const child: ChildProcess = spawn(
    'openssl',
    ['s_server', '-accept', '127.0.0.1:0', '-cert', leafFile, '-key', keyFile, '-cert_chain', interFile, '-www'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const fail = setTimeout(() => reject(new Error(`openssl s_server did not start: ${out}`)), 10_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /ACCEPT\s+127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(fail);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', () => reject(new Error(`openssl s_server exited: ${out}`)));
  });
  return {
    port,
    stop() {
      clearTimeout(killer);
      child.kill('SIGKILL');
    },
  };
}

/** tstclnt against 127.0.0.1:port with SNI and name check `name`, roots from `roots` (a module or a database). */
export async function tstclnt(port: number, name: string, roots: { module: string } | { db: string }, env?: NodeJS.ProcessEnv): Promise<Verdict & { raw: RunResult }> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-a', name, '-Q'];
  if ('module' in roots) args.push('-D', '-R', roots.module);
  else args.push('-d', roots.db);
  const r = await run('tstclnt', args, { env, timeoutMs: 20_000 });
  const output = r.stdout + r.stderr;
  return { ok: r.code === 0 && !/authentication of server cert failed/.test(output), output, raw: r };
}

/**
 * Runs a `.bit` verification again when it fails. A verifier in a fresh
 * process asks the live service and waits for the answer at most 100 ms
 * (addon/live.c); on a loaded machine the service can take longer, and that
 * process fails closed. A visitor would try again, and the second process
 * finds the service's answer ready (its records are cached). So a refusal
 * here is one that happens twice.
 */
export async function bitVerdict<T extends { ok: boolean }>(verify: () => Promise<T>): Promise<T> {
  const first = await verify();
  if (first.ok) return first;
  await new Promise((r) => setTimeout(r, 200));
  return verify();
}
