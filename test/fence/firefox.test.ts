// Headless Firefox ESR with ncfence as its roots module (a copy of the
// install directory with ncfence as libnssckbi.so). The fake public root is
// served by p11-kit-trust; the control installs the plain upstream instead
// (through a parameter-passing shim, since Firefox passes no parameters).

import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { TARGET_POLICY } from '../../src/policy.js';
import { copyFirefoxInstall, probeUrls, type ProbeResult } from '../helpers/firefox.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { MODULE, P11KIT_TRUST, UPSTREAM_SHIM } from '../helpers/paths.js';
import { startTlsServer, type TlsServer } from '../helpers/tlsServer.js';
import { requireTool } from '../helpers/run.js';
import { injectionFile, pkcsAnchorRecord } from '../helpers/inject.js';
import { withEnv } from '../helpers/env.js';
import { parseCertificate } from '../../src/engine/asn1/certificate.js';
import { fromPem } from '../helpers/pem.js';

const HOSTS = ['www.example.com', 'www.example.bit'];
let pki: TestPki;
let dir: string;
let servers: Map<string, TlsServer>;
let config: string;

test.before(async () => {
  await requireTool('firefox-esr');
  pki = await makeTestPki(HOSTS);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-ff-test-'));
  // Firefox reads this view: the browser targets' policy (build's own default for this upstream is p11-kit.json, which mozilla::pkix cannot read).
  config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out'), policyFile: TARGET_POLICY.browser })).config;
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

// Newer builtins modules (Firefox's own, NSS 3.114+) describe roots with
// PKCS#11 3.2 CKO_TRUST objects instead of NSS trust records. Upstream here:
// p11-kit-trust holding R as a plain certificate, behind the test shim,
// which leaves out upstream's NSS trust records and adds a CKO_TRUST record
// making R a trust anchor. The control shows this Firefox honours such a
// record; through ncfence, R is fenced and .bit fails.
async function pkcsTrustUpstream(): Promise<Record<string, string>> {
  const d = join(dir, 'pkcs');
  const trust = join(d, 'trust');
  mkdirSync(trust, { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'root.pem')); // a plain file: no trust of its own
  const root = parseCertificate(fromPem(pki.rootPem));
  const inject = injectionFile(join(d, 'inject.bin'), [pkcsAnchorRecord(root, 'Test Public Root CA (3.2 trust)')]);
  return { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${trust}`, NCFENCE_TEST_INJECT: inject, NCFENCE_TEST_HIDE_NSS_TRUST: '1' };
}

test.serial('control: an upstream with only CKO_TRUST records is honoured by this Firefox', async (t) => {
  const r = await probe('pkcs-control', UPSTREAM_SHIM, await pkcsTrustUpstream());
  t.regex(r.log, /loaded external CKBI from gre directory/);
  t.is(r.results[url('www.example.com')], 'load', r.output.slice(-2000));
  t.is(r.results[url('www.example.bit')], 'load', r.output.slice(-2000));
});

test.serial('ncfence over an upstream with only CKO_TRUST records: .com loads, .bit fails', async (t) => {
  const shimEnv = await pkcsTrustUpstream();
  // Firefox reads this view: the browser targets' policy (build's own default for this upstream is p11-kit.json, which mozilla::pkix cannot read).
  const result = await withEnv(shimEnv, () => build({ upstream: UPSTREAM_SHIM, upstreamParams: '', outDir: join(dir, 'pkcs', 'out'), policyFile: TARGET_POLICY.browser }));
  t.is(result.summary.rootsFenced, 1);
  const pkcsConfig = result.config;
  const bit = servers.get('www.example.bit')!;
  const before = bit.tlsErrors.length;
  const r = await probe('pkcs-fenced', MODULE, { ...shimEnv, NCFENCE_CONFIG: pkcsConfig });
  t.is(r.results[url('www.example.com')], 'load', r.output.slice(-2000));
  t.is(r.results[url('www.example.bit')], 'error', r.output.slice(-2000));
  const alerts = bit.tlsErrors.slice(before);
  t.true(alerts.some((e) => /alert number 42/.test(e)), alerts.join('\n'));
});
