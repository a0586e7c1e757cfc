// Every fault in the view or configuration leaves the module loaded with a
// closed view: no public root is a trust anchor, and one warning line says
// why. Judged by NSS's classic verifier and by listing through certutil.

import test from 'ava';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { DEFAULT_POLICY } from '../../src/policy.js';
import { decodeView, encodeView } from '../../src/view/format.js';
import { ulongBytes } from '../../src/pkcs11/objects.js';
import { AUDIENCE, CKA, CKO } from '../../src/pkcs11/constants.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { makeNssDb, vfychain } from '../helpers/nss.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';
import { run } from '../helpers/run.js';

let pki: TestPki;
let dir: string;
let goodConfig: string;
let goodView: string;
let policyCopy: string;
let policyCopyConfig: string;

test.before(async () => {
  pki = await makeTestPki(['www.example.com', 'www.example.bit']);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-fault-'));
  const r = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'good') });
  goodConfig = r.config;
  goodView = r.view;
  // A view built with a policy of its own, for the policy-edited case.
  policyCopy = join(dir, 'policy.json');
  copyFileSync(DEFAULT_POLICY, policyCopy);
  policyCopyConfig = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'own-policy'), policyFile: policyCopy })).config;
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Writes a config for this fault and returns the NCFENCE_CONFIG value. */
type Fault = (caseDir: string) => string;

function withView(caseDir: string, mutate: (view: Buffer) => Buffer): string {
  const view = join(caseDir, 'view.ncfv');
  writeFileSync(view, mutate(readFileSync(goodView)));
  const conf = join(caseDir, 'ncfence.conf');
  writeFileSync(conf, readFileSync(goodConfig, 'utf8').replace(/^view = .*$/m, `view = ${view}`));
  return conf;
}

const faults: { name: string; fault: Fault; warning: RegExp }[] = [
  { name: 'no configuration file', fault: (d) => join(d, 'absent.conf'), warning: /cannot read configuration/ },
  { name: 'view missing', fault: (d) => missingView(d), warning: /cannot open view/ },
  { name: 'view truncated', fault: (d) => withView(d, (v) => v.subarray(0, v.length - 100)), warning: /truncated/ },
  { name: 'view bit-flipped', fault: (d) => withView(d, (v) => flip(v, v.length - 300)), warning: /checksum mismatch/ },
  { name: 'view of a newer format', fault: (d) => withView(d, (v) => setVersion(v, 99)), warning: /format 99/ },
  { name: 'view of the previous format', fault: (d) => withView(d, (v) => setVersion(v, 2)), warning: /format 2\// },
  // Two forms of R' (rules/p11-kit.json): an object whose audience the
  // module cannot read could be the form this process must not see.
  { name: 'view object with an unknown audience', fault: (d) => withView(d, (v) => withAudience(v, 3)), warning: /malformed audience/ },
  { name: 'view object with two audiences', fault: (d) => withView(d, (v) => withAudience(v, AUDIENCE.NSS_FORM, AUDIENCE.PLAIN_FORM)), warning: /malformed audience/ },
  { name: 'not a view at all', fault: (d) => withView(d, () => Buffer.alloc(4096, 0x41)), warning: /bad magic/ },
  { name: 'upstream missing', fault: (d) => withConfig(d, 'upstream', '/nonexistent/libnssckbi.so'), warning: /cannot load upstream/ },
  { name: 'stale view: policy edited after the build', fault: () => editPolicy(), warning: /is stale: .*policy/ },
  { name: 'stale view: upstream trust changed', fault: () => staleView(), warning: /is stale/ },
];

function flip(v: Buffer, at: number): Buffer {
  const c = Buffer.from(v);
  c[at] = c[at]! ^ 0x10;
  return c;
}
function setVersion(v: Buffer, n: number): Buffer {
  const c = Buffer.from(v);
  c.writeUInt32LE(n, 8);
  return c;
}
/** The view with CKA.NCFENCE_AUDIENCE (these values) added to its last certificate, re-encoded with a good checksum. */
function withAudience(v: Buffer, ...values: number[]): Buffer {
  const view = decodeView(v);
  const cert = [...view.objects].reverse().find((o) => o.attrs.some(([t, x]) => t === CKA.CLASS && Buffer.from(x).readBigUInt64LE() === BigInt(CKO.CERTIFICATE)))!;
  cert.attrs.push(...values.map((x): [number, Uint8Array] => [CKA.NCFENCE_AUDIENCE, ulongBytes(x)]));
  return Buffer.from(encodeView(view));
}
function missingView(d: string): string {
  const conf = withView(d, (v) => v);
  rmSync(join(d, 'view.ncfv'));
  return conf;
}
function withConfig(d: string, key: string, value: string): string {
  const conf = join(d, 'ncfence.conf');
  writeFileSync(conf, readFileSync(goodConfig, 'utf8').replace(new RegExp(`^${key} = .*$`, 'm'), `${key} = ${value}`));
  return conf;
}
function editPolicy(): string {
  const doc = JSON.parse(readFileSync(policyCopy, 'utf8')) as Record<string, unknown>;
  writeFileSync(policyCopy, JSON.stringify({ ...doc, description: 'edited after the build' }));
  return policyCopyConfig;
}
function staleView(): string {
  // The view was built from the trust directory as it was; a change to its
  // anchors (here: their directory's mtime) must make the view stale.
  const later = new Date(Date.now() + 5000);
  utimesSync(join(pki.trustDir, 'anchors'), later, later);
  return goodConfig;
}

for (const f of faults) {
  test.serial(`fail closed: ${f.name}`, async (t) => {
    const caseDir = mkdtempSync(join(dir, 'case-'));
    const env = { ...process.env, NCFENCE_CONFIG: f.fault(caseDir) };
    const db = await makeNssDb(join(caseDir, 'db'), 'ncfence', MODULE, '', env);
    for (const host of ['www.example.bit', 'www.example.com']) {
      const v = await vfychain(db, pki.leaves.get(host)!.certFile, pki.interFile, false, env);
      t.false(v.ok, `${host} must not verify with a closed view:\n${v.output}`);
    }
    const list = await run('certutil', ['-L', '-h', 'all', '-d', db], { env });
    t.is(list.code === 0 || list.code === 255, true);
    t.notRegex(list.stdout, /\sC,|,C,/, 'no trusted root may be listed');
    const warnings = (list.stderr.match(/^\(ncfence:\d+\) WARNING: .*$/gm) ?? []);
    t.true(warnings.length >= 1, list.stderr);
    t.regex(warnings.join('\n'), f.warning);
  });
}

test.serial('control: the good view verifies .com and refuses .bit', async (t) => {
  const caseDir = mkdtempSync(join(dir, 'case-'));
  // Rebuilt here because the stale case changed the trust directory.
  const r = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(caseDir, 'out') });
  const env = { ...process.env, NCFENCE_CONFIG: r.config };
  const db = await makeNssDb(join(caseDir, 'db'), 'ncfence', MODULE, '', env);
  t.true((await vfychain(db, pki.leaves.get('www.example.com')!.certFile, pki.interFile, false, env)).ok);
  t.false((await vfychain(db, pki.leaves.get('www.example.bit')!.certFile, pki.interFile, false, env)).ok);
});
