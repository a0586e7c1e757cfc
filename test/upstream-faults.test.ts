// Faults that come from upstream or from where the configuration is found:
// upstream refusing C_Initialize, upstream serving malformed trust objects,
// and the configuration search order. Each is judged by NSS.

import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../src/compile/build.js';
import { formatConfig } from '../src/config.js';
import { DEFAULT_POLICY } from '../src/policy.js';
import { boolBytes, ulongBytes } from '../src/compile/upstream.js';
import { CKA, CKO, CKT } from '../src/pkcs11/constants.js';
import { parseCertificate } from '../src/engine/asn1/certificate.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { makeNssDb, vfychain } from './helpers/nss.js';
import { fromPem } from './helpers/pem.js';
import { MODULE, P11KIT_TRUST, UPSTREAM_SHIM } from './helpers/paths.js';
import { run } from './helpers/run.js';

let pki: TestPki;
let dir: string;
test.before(async () => {
  pki = await makeTestPki(['www.example.com', 'www.example.bit']);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-upfault-'));
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The environment without NCFENCE_CONFIG, so modules look beside themselves. */
function envWithout(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NCFENCE_CONFIG;
  return env;
}

async function verdicts(db: string, env: NodeJS.ProcessEnv): Promise<Record<string, boolean>> {
  const out: Record<string, boolean> = {};
  for (const host of ['www.example.com', 'www.example.bit']) out[host] = (await vfychain(db, pki.leaves.get(host)!.certFile, pki.interFile, false, env)).ok;
  return out;
}

test.serial('upstream failing C_Initialize: the module loads with no roots and says why', async (t) => {
  const d = join(dir, 'failinit');
  const good = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: d });
  const conf = join(d, 'shim.conf');
  writeFileSync(conf, formatConfig({ upstream: UPSTREAM_SHIM, upstreamParams: '', view: good.view, policy: DEFAULT_POLICY }));
  const env = { ...process.env, NCFENCE_CONFIG: conf, NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_FAIL_INIT: '1' };
  const db = await makeNssDb(join(d, 'db'), 'ncfence', MODULE, '', env);
  t.deepEqual(await verdicts(db, env), { 'www.example.com': false, 'www.example.bit': false });
  const list = await run('certutil', ['-L', '-h', 'all', '-d', db], { env });
  t.regex(list.stderr, /WARNING: upstream .*: C_Initialize failed \(CKR_DEVICE_ERROR\); presenting no roots at all/);
});

/** The shim's injection file: u32 count, then objects of u32 nattrs + (u32 type, u32 len, bytes). */
function injectionFile(file: string, objects: [number, Uint8Array][][]): string {
  const parts: Buffer[] = [];
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n >>> 0);
    return b;
  };
  parts.push(u32(objects.length));
  for (const attrs of objects) {
    parts.push(u32(attrs.length));
    for (const [type, value] of attrs) parts.push(u32(type), u32(value.length), Buffer.from(value));
  }
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

test.serial('malformed upstream trust objects are hidden, never trusted', async (t) => {
  // Upstream (p11-kit-trust behind the test shim) holds R untrusted, plus two
  // injected objects: R with a 2-byte CKA_TRUSTED, and a trust record for R
  // whose server-auth value is 4 bytes instead of a CK_ULONG.
  const d = join(dir, 'malformed');
  const trust = join(d, 'trust');
  mkdirSync(trust, { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'root.pem')); // a plain file: untrusted
  const root = parseCertificate(fromPem(pki.rootPem));
  const inject = injectionFile(join(d, 'inject.bin'), [
    [
      [CKA.CLASS, ulongBytes(CKO.CERTIFICATE)], [CKA.TOKEN, boolBytes(true)], [CKA.CERTIFICATE_TYPE, ulongBytes(0)],
      [CKA.SUBJECT, root.subject], [CKA.ISSUER, root.issuer], [CKA.SERIAL_NUMBER, root.serial], [CKA.VALUE, root.der],
      [CKA.TRUSTED, Uint8Array.of(1, 1)],
    ],
    [
      [CKA.CLASS, ulongBytes(CKO.NSS_TRUST)], [CKA.TOKEN, boolBytes(true)], [CKA.ISSUER, root.issuer], [CKA.SERIAL_NUMBER, root.serial],
      [CKA.TRUST_SERVER_AUTH, ulongBytes(CKT.NSS_TRUSTED_DELEGATOR).subarray(0, 4)],
    ],
  ]);
  const shimEnv = { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${trust}`, NCFENCE_TEST_INJECT: inject };
  // The build reads upstream in this process, through pkcs11js.
  Object.assign(process.env, shimEnv);
  let result;
  try {
    result = await build({ upstream: UPSTREAM_SHIM, upstreamParams: '', outDir: join(d, 'out') });
  } finally {
    for (const k of Object.keys(shimEnv)) delete process.env[k];
  }
  t.is(result.summary.rootsFenced, 0);
  t.regex(result.summary.rootsDropped.map((x) => x.reason).join('\n'), /4-byte value/);

  const env = { ...process.env, ...shimEnv, NCFENCE_CONFIG: result.config };
  const db = await makeNssDb(join(d, 'db'), 'ncfence', MODULE, '', env);
  t.deepEqual(await verdicts(db, env), { 'www.example.com': false, 'www.example.bit': false });
  const list = await run('certutil', ['-L', '-h', 'all', '-d', db], { env });
  t.notRegex(list.stdout, /\sC,|,C,/);
  t.regex(list.stderr, /has a malformed or unreadable trust attribute; hidden/);
});

test.serial('configuration search: NCFENCE_CONFIG first, then ncfence.conf beside the module', async (t) => {
  const d = join(dir, 'search');
  mkdirSync(d);
  copyFileSync(MODULE, join(d, 'libncfence.so'));
  // Beside the module: a good view. In NCFENCE_CONFIG: a file that does not exist.
  await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: d });
  const module = join(d, 'libncfence.so');
  const beside = await makeNssDb(join(d, 'db1'), 'ncfence', module, '', envWithout());
  t.deepEqual(await verdicts(beside, envWithout()), { 'www.example.com': true, 'www.example.bit': false });
  // An explicit NCFENCE_CONFIG wins even when it is missing: no silent fallback.
  const envMissing = { ...process.env, NCFENCE_CONFIG: join(d, 'missing.conf') };
  t.deepEqual(await verdicts(beside, envMissing), { 'www.example.com': false, 'www.example.bit': false });
});
