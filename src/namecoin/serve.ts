// `ncfence serve`: the live .bit service. Holds the Namecoin root and TLD CA
// keys in RAM for its lifetime and answers the module's lookups from the
// configured sources, in order.

import { homedir } from 'node:os';
import { join } from 'node:path';
import { defaultEngineDeps } from '../engine/crossSign.js';
import { EngineError } from '../engine/errors.js';
import { createAuthority } from './chain.js';
import { NamecoinLookup, type TlsSource } from './lookup.js';
import { rulesSource } from './rulesSource.js';

export interface ServeOptions {
  socket: string;
  rules?: string;
  dns?: string; // host:port of an ncdns-compatible server
  rpc?: string; // http://127.0.0.1:8336/
  rpcCookie?: string;
  rpcUser?: string;
  rpcPassword?: string;
  /** Source order, e.g. ['rules', 'dns', 'rpc'] (default: those configured, in that order). */
  order?: string[];
  /** Bound on one source's answer (default SOURCE_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Check every source can answer before serving (reachable, credentials readable, loopback); the CLI does. */
  checkSources?: boolean;
  /** One line per lookup (the CLI: stderr). */
  log?: (line: string) => void;
  /** The service's clock (tests pin it to verify committed chains at a fixed time); default: the system's. */
  now?: () => Date;
}

/**
 * How long a source may take. The module does not wait for it (it asks in
 * the background and files late answers: addon/live.c), so a slow source's
 * answer is still worth having; the service's bound on a whole lookup
 * (src/service/server.ts) and the module's on a question in flight
 * (service-timeout-ms) are longer.
 */
export const SOURCE_TIMEOUT_MS = 4000;

export function defaultSocketPath(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, 'ncfence', 'service.sock') : join(homedir(), '.cache', 'ncfence', 'service.sock');
}

async function buildSources(o: ServeOptions): Promise<TlsSource[]> {
  const available: Record<string, () => TlsSource> = {};
  const timeoutMs = o.timeoutMs ?? SOURCE_TIMEOUT_MS;
  if (o.rules) available.rules = () => rulesSource(o.rules!);
  if (o.dns) {
    // An address, not a host name: resolving the DNS server's own name would go through the resolver being bypassed.
    const m = /^\[?([0-9a-fA-F:.]+)\]?:(\d+)$/.exec(o.dns.replace(/^localhost:/, '127.0.0.1:'));
    if (!m) throw new EngineError('USAGE', `--dns expects ADDRESS:PORT (e.g. 127.0.0.1:5391), got ${o.dns}`);
    const { checkDnsServer, checkServerOptions, lookupTlsa } = await import('./dns.js');
    const server = { server: m[1]!, port: Number(m[2]), timeoutMs };
    try {
      checkServerOptions(server);
    } catch (e) {
      throw new EngineError('USAGE', `--dns ${o.dns}: ${(e as Error).message}`, { cause: e });
    }
    available.dns = () => ({ name: `dns ${o.dns}`, lookup: (d) => lookupTlsa(d, server), check: () => checkDnsServer(server) });
  }
  if (o.rpc) {
    const { checkRpc, checkRpcOptions, nameOwner, nameShowTls } = await import('./rpc.js');
    const auth = o.rpcCookie ? { cookieFile: o.rpcCookie } : o.rpcUser && o.rpcPassword ? { user: o.rpcUser, password: o.rpcPassword } : undefined;
    if (!auth) throw new EngineError('USAGE', '--rpc needs --rpc-cookie FILE, or --rpc-user with --rpc-password-file FILE or NCFENCE_RPC_PASSWORD');
    const rpc = { url: o.rpc, auth, timeoutMs };
    try {
      checkRpcOptions(rpc);
    } catch (e) {
      throw new EngineError('USAGE', `--rpc: ${(e as Error).message}`, { cause: e });
    }
    available.rpc = () => ({ name: `rpc ${o.rpc}`, lookup: (d) => nameShowTls(d, rpc), owner: (d) => nameOwner(d, rpc), check: () => checkRpc(rpc) });
  }
  const order = o.order ?? ['rules', 'dns', 'rpc'].filter((k) => k in available);
  if (order.length === 0) throw new EngineError('USAGE', 'no anchor source: give --rules FILE, --dns HOST:PORT or --rpc URL');
  // Every name checked before any source is made (a rules file read), so the first refusal is the only one.
  const unknown = order.find((k) => !Object.hasOwn(available, k));
  if (unknown !== undefined) throw new EngineError('USAGE', `source "${unknown}" in --sources is not configured`);
  return order.map((k) => available[k]!());
}

export async function serve(o: ServeOptions): Promise<{ close(): Promise<void>; socketPath: string; lookup: NamecoinLookup }> {
  const deps = await defaultEngineDeps();
  if (o.now) deps.now = o.now;
  const sources = await buildSources(o);
  // systemd socket activation: LISTEN_FDS=1 for this pid hands over fd 3 (sd_listen_fds(3)).
  const activated = process.env.LISTEN_FDS === '1' && process.env.LISTEN_PID === String(process.pid);
  if (o.checkSources) {
    // The socket first: checking it costs nothing, checking a source up to its timeout.
    if (!activated) (await import('../service/server.js')).checkSocketPath(o.socket);
    for (const source of sources) {
      try {
        await source.check?.();
      } catch (e) {
        if (e instanceof EngineError && e.code === 'USAGE') throw e;
        throw new EngineError('USAGE', `source ${source.name} cannot answer: ${(e as Error).message}. Start it first, or leave it out of --sources`, { cause: e });
      }
    }
  }
  const lookup = new NamecoinLookup(createAuthority(deps), sources, deps, o.log);
  const { startService } = await import('../service/server.js');
  const server = await startService({ socketPath: o.socket, handler: (name) => lookup.answer(name), listenFd: activated ? 3 : undefined });
  return { close: () => server.close(), socketPath: server.socketPath, lookup };
}
