// A real authoritative DNS server (Knot, from Debian) on loopback serving a
// `bit.` zone, for the ncdns-style anchor source. Bounded start, killed by stop().

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lookupTlsa } from '../../src/namecoin/dns.js';
import { freePort } from './ports.js';

export interface Knot {
  port: number;
  stop(): Promise<void>;
}

/**
 * `records` maps a domain (example.bit) to TLSA rdata strings like "2 1 0 <hex>";
 * `extra` adds zone lines relative to bit. (e.g. "www.example 600 IN A 127.0.0.1").
 */
export async function startKnot(records: Readonly<Record<string, readonly string[]>>, probeDomain: string, extra: readonly string[] = []): Promise<Knot> {
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-knot-'));
  mkdirSync(join(dir, 'run'));
  mkdirSync(join(dir, 'db'));
  const rr = Object.entries(records).flatMap(([domain, rdatas]) => rdatas.map((r) => `*.${domain.replace(/\.bit$/, '')} 600 IN TLSA ${r}`));
  writeFileSync(join(dir, 'bit.zone'), ['$ORIGIN bit.', '$TTL 600', '@ IN SOA ns.bit. hostmaster.bit. 1 3600 600 86400 300', '@ IN NS ns.bit.', 'ns IN A 127.0.0.1', ...rr, ...extra, ''].join('\n'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'knot.conf'),
    [
      'server:', `    rundir: "${dir}/run"`, `    listen: 127.0.0.1@${port}`, '    udp-workers: 1', '    tcp-workers: 1', '    background-workers: 1',
      'database:', `    storage: "${dir}/db"`, 'log:', '  - target: stderr', '    any: warning',
      'template:', '  - id: default', `    storage: "${dir}"`, '    zonefile-sync: -1', '    journal-content: none',
      'zone:', '  - domain: bit', '    file: "bit.zone"', '',
    ].join('\n'),
  );
  const child = spawn('knotd', ['-c', join(dir, 'knot.conf')], { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      await lookupTlsa(probeDomain, { server: '127.0.0.1', port, timeoutMs: 500 });
      return { port, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await stop();
  throw new Error('knotd did not start serving the bit. zone within 15 s');
}
