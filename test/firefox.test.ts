// Headless Firefox ESR with ncfence as its roots module (a copy of the
// install directory with ncfence as libnssckbi.so). The fake public root is
// served by p11-kit-trust; the control installs the plain upstream instead
// (through a parameter-passing shim, since Firefox passes no parameters).

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../src/compile/build.js';
import { copyFirefoxInstall, probeUrls, type ProbeResult } from './helpers/firefox.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { MODULE, P11KIT_TRUST, UPSTREAM_SHIM } from './helpers/paths.js';
import { startTlsServer, type TlsServer } from './helpers/tlsServer.js';
import { requireTool } from './helpers/run.js';

const HOSTS = ['www.example.com', 'www.example.bit'];
let pki: TestPki;
let dir: string;
let servers: Map<string, TlsServer>;
let config: string;

test.before(async () => {
  await requireTool('firefox-esr');
  pki = await makeTestPki(HOSTS);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-ff-test-'));
  config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out') })).config;
  servers = new Map();
  for (const host of HOSTS) {
    const leaf = pki.leaves.get(host)!;
    servers.set(host, await startTlsServer({ certChainPem: leaf.chainPem, keyPem: leaf.keyPem }));
  }
});

test.after.always(async () => {
  for (const s of servers?.values() ?? []) await s.close();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const url = (host: string): string => `https://${host}:${servers.get(host)!.port}/probe-${host}.js`;

async function probe(install: string, module: string, env: Record<string, string>): Promise<ProbeResult> {
  const firefox = await copyFirefoxInstall(join(dir, install), module);
  return probeUrls({ firefox, urls: HOSTS.map(url), hosts: HOSTS, timeoutMs: 60_000, env });
}

test.serial('ncfence as Firefox roots module: .com loads, .bit fails', async (t) => {
  const r = await probe('fenced', MODULE, { NCFENCE_CONFIG: config });
  t.regex(r.log, /loaded external CKBI from gre directory/, 'Firefox must load the module from its install directory');
  t.is(r.results[url('www.example.com')], 'load', r.output.slice(-2000));
  t.is(r.results[url('www.example.bit')], 'error', r.output.slice(-2000));
  // Firefox reports a name-constraint violation as bad_certificate (42);
  // an unfenced or missing anchor would show as unknown_ca (48).
  const alerts = servers.get('www.example.bit')!.tlsErrors;
  t.true(alerts.some((e) => /alert number 42/.test(e)), alerts.join('\n'));
  t.false(alerts.some((e) => /alert number 48/.test(e)), alerts.join('\n'));
});

test.serial('control: plain upstream as Firefox roots module loads both', async (t) => {
  const r = await probe('control', UPSTREAM_SHIM, {
    NCFENCE_TEST_UPSTREAM: P11KIT_TRUST,
    NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${pki.trustDir}`,
  });
  t.regex(r.log, /loaded external CKBI from gre directory/);
  t.is(r.results[url('www.example.com')], 'load', r.output.slice(-2000));
  t.is(r.results[url('www.example.bit')], 'load', r.output.slice(-2000));
});
