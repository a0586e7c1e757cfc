// Faults that come from upstream or from where the configuration is found:
// upstream refusing C_Initialize, upstream serving malformed trust objects,
// and the configuration search order. Each is judged by NSS.

import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { formatConfig } from '../../src/config.js';
import { DEFAULT_POLICY } from '../../src/policy.js';
import { readUpstream } from '../../src/compile/upstream.js';
import { boolBytes, ulongBytes, ulongValue, type UpstreamObject } from '../../src/pkcs11/objects.js';
import { CKA, CKM_SHA256, CKO, CKT } from '../../src/pkcs11/constants.js';
import { parseCertificate } from '../../src/engine/asn1/certificate.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { makeNssDb, vfychain } from '../helpers/nss.js';
import { fromPem } from '../helpers/pem.js';
import { MODULE, P11KIT_TRUST, UPSTREAM_SHIM } from '../helpers/paths.js';
import { run, runOk } from '../helpers/run.js';
import { injectionFile } from '../helpers/inject.js';
import { withEnv } from '../helpers/env.js';

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
  const result = await withEnv(shimEnv, () => build({ upstream: UPSTREAM_SHIM, upstreamParams: '', outDir: join(d, 'out') }));
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

/** Builds a view of the test shim with `env`, then reads every object through ncfence with that view. */
async function buildAndReadThrough(env: Record<string, string>, outDir: string) {
  const result = await withEnv(env, () => build({ upstream: UPSTREAM_SHIM, upstreamParams: '', outDir }));
  const through = await withEnv({ ...env, NCFENCE_CONFIG: result.config }, () => readUpstream(MODULE, ''));
  return { result, through };
}

const labelOf = (o: UpstreamObject): string => Buffer.from(o.attrs.get(CKA.LABEL) ?? []).toString('utf8');

test.serial('PKCS#11 3.2 trust objects: a granting CKO_TRUST is fenced, a distrusting one passes, unknown trust classes are hidden', async (t) => {
  // Newer NSS (3.114+) and Firefox's builtins describe trust with CKO_TRUST
  // objects instead of NSS trust records. Upstream here: p11-kit-trust with R
  // as a plain (untrusted) file, behind the test shim, which adds
  //   1. a CKO_TRUST record making R a server-auth trust anchor,
  //   2. a CKO_TRUST record distrusting the intermediate,
  //   3. an object of an unknown class (0x0c) with a trust purpose,
  //   4. a data object with nothing to do with trust.
  const d = join(dir, 'pkcs-trust');
  const trust = join(d, 'trust');
  mkdirSync(trust, { recursive: true });
  copyFileSync(pki.rootFile, join(trust, 'root.pem'));
  const root = parseCertificate(fromPem(pki.rootPem));
  const inter = parseCertificate(fromPem(pki.interPem));
  const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
  const common = (label: string): [number, Uint8Array][] => [
    [CKA.TOKEN, boolBytes(true)], [CKA.PRIVATE, boolBytes(false)], [CKA.LABEL, Buffer.from(label)],
  ];
  const inject = injectionFile(join(d, 'inject.bin'), [
    [
      [CKA.CLASS, ulongBytes(CKO.TRUST)], ...common('R as a 3.2 anchor'), [CKA.ISSUER, root.issuer], [CKA.SERIAL_NUMBER, root.serial],
      [CKA.HASH_OF_CERTIFICATE, sha256(root.der)], [CKA.NAME_HASH_ALGORITHM, ulongBytes(CKM_SHA256)],
      [CKA.PKCS_TRUST_SERVER_AUTH, ulongBytes(CKT.TRUST_ANCHOR)], [CKA.PKCS_TRUST_CLIENT_AUTH, ulongBytes(CKT.TRUST_MUST_VERIFY_TRUST)],
      [CKA.PKCS_TRUST_EMAIL_PROTECTION, ulongBytes(CKT.TRUST_MUST_VERIFY_TRUST)], [CKA.PKCS_TRUST_CODE_SIGNING, ulongBytes(CKT.TRUST_MUST_VERIFY_TRUST)],
    ],
    [
      [CKA.CLASS, ulongBytes(CKO.TRUST)], ...common('intermediate distrusted'), [CKA.ISSUER, inter.issuer], [CKA.SERIAL_NUMBER, inter.serial],
      [CKA.PKCS_TRUST_SERVER_AUTH, ulongBytes(CKT.NOT_TRUSTED)],
    ],
    [[CKA.CLASS, ulongBytes(0x0c)], ...common('unknown class with trust'), [CKA.PKCS_TRUST_SERVER_AUTH, ulongBytes(CKT.TRUST_ANCHOR)]],
    [[CKA.CLASS, ulongBytes(0)], ...common('plain data object'), [CKA.VALUE, Buffer.from('hello')]],
  ]);
  const shimEnv = { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${trust}`, NCFENCE_TEST_INJECT: inject };
  const { result, through } = await buildAndReadThrough(shimEnv, join(d, 'out'));
  t.is(result.summary.rootsFenced, 1, 'R is fenced from its CKO_TRUST record');
  t.is(result.summary.distrustRecords, 1);

  // What a consumer sees through the module.
  const byClass = (c: number): UpstreamObject[] => through.objects.filter((o) => ulongValue(o.attrs.get(CKA.CLASS)) === c);
  t.deepEqual(byClass(0x0c).map(labelOf), [], 'the unknown-class trust object is hidden');
  t.deepEqual(byClass(0).map(labelOf), ['plain data object']);
  const pkcsTrust = byClass(CKO.TRUST).map(labelOf).sort();
  t.is(pkcsTrust.length, 2, pkcsTrust.join(', '));
  t.is(pkcsTrust[0], 'intermediate distrusted');
  t.regex(pkcsTrust[1]!, /^ncfence anchor for /, 'the view carries a CKO_TRUST record for L(R) only');
  const anchorRecord = byClass(CKO.TRUST).find((o) => labelOf(o).startsWith('ncfence anchor for '))!;
  t.is(ulongValue(anchorRecord.attrs.get(CKA.PKCS_TRUST_SERVER_AUTH)), CKT.TRUST_ANCHOR);

  // And NSS (3.87 here, which reads the NSS trust record the view also has for L(R)).
  const env = { ...process.env, ...shimEnv, NCFENCE_CONFIG: result.config };
  const db = await makeNssDb(join(d, 'db'), 'ncfence', MODULE, '', env);
  t.deepEqual(await verdicts(db, env), { 'www.example.com': true, 'www.example.bit': false });
});

test.serial('an upstream object changed in place to grant trust is hidden, however it is reached', async (t) => {
  // p11-kit-trust reloads a changed file and keeps the certificate's handle.
  // R starts as a plain certificate (visible, CKA_TRUSTED false); then its
  // file is rewritten as a trusted certificate, and the module must neither
  // answer CKA_TRUSTED = TRUE for that handle nor return it from a search for
  // trusted certificates. (Found by review; cached verdicts let it through.)
  const d = join(dir, 'inplace');
  const trust = join(d, 'trust');
  mkdirSync(trust, { recursive: true });
  const file = join(trust, 'r.pem');
  copyFileSync(pki.rootFile, file);
  const result = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${trust}`, outDir: join(d, 'out') });
  const trusted = join(d, 'trusted.pem');
  await runOk('openssl', ['x509', '-in', pki.rootFile, '-addtrust', 'serverAuth', '-trustout', '-out', trusted]);
  const root = parseCertificate(fromPem(pki.rootPem));

  process.env.NCFENCE_CONFIG = result.config;
  const p = new pkcs11js.PKCS11();
  try {
    p.load(MODULE);
    p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK } as pkcs11js.InitializationOptions);
    const slot = p.C_GetSlotList(true)[0]!;
    const findAll = (session: Buffer, template: pkcs11js.Template): Buffer[] => {
      p.C_FindObjectsInit(session, template);
      const out: Buffer[] = [];
      for (let page = p.C_FindObjects(session, 64); page.length > 0; page = p.C_FindObjects(session, 64)) out.push(...page);
      p.C_FindObjectsFinal(session);
      return out;
    };
    const upstreamHandles = (hs: Buffer[]): Buffer[] => hs.filter((h) => (h.readBigUInt64LE(0) >> 63n) === 0n);
    const bySubject: pkcs11js.Template = [{ type: CKA.CLASS, value: ulongBytes(CKO.CERTIFICATE) as unknown as Buffer }, { type: CKA.SUBJECT, value: Buffer.from(root.subject) }];

    let s = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    const before = upstreamHandles(findAll(s, bySubject));
    t.is(before.length, 1, 'R is upstream\'s, visible');
    const h = before[0]!;
    const [tr] = p.C_GetAttributeValue(s, h, [{ type: CKA.TRUSTED }]);
    t.deepEqual([...(tr?.value ?? [])], [0]);
    p.C_CloseSession(s);

    // Rewrite R's file in place as a trusted certificate; p11-kit-trust
    // reloads it (with a newer mtime) when the next session looks.
    copyFileSync(trusted, file);
    const later = new Date(Date.now() + 5000);
    utimesSync(file, later, later);
    s = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    const searchTrusted = upstreamHandles(findAll(s, [{ type: CKA.CLASS, value: ulongBytes(CKO.CERTIFICATE) as unknown as Buffer }, { type: CKA.TRUSTED, value: Buffer.from([1]) }]));
    t.deepEqual(searchTrusted, [], 'no upstream certificate comes back from a search for trusted ones');
    const err = t.throws(() => p.C_GetAttributeValue(s, h, [{ type: CKA.TRUSTED }]));
    t.regex(String(err?.message), /CKR_OBJECT_HANDLE_INVALID/);
    p.C_CloseSession(s);
  } finally {
    delete process.env.NCFENCE_CONFIG;
    try {
      p.C_Finalize();
    } catch {
      /* not initialized */
    }
  }
});

test.serial('an upstream that returns short pages is paged to the end: nothing it holds is lost', async (t) => {
  // PKCS#11 lets C_FindObjects return fewer handles than asked while more
  // remain. ncfence stops at a short page only for NSS's builtins and
  // p11-kit-trust; this shim returns one handle per call and names itself,
  // and the last object it holds is a distrust record for the intermediate.
  const d = join(dir, 'short-pages');
  mkdirSync(d, { recursive: true });
  const inter = parseCertificate(fromPem(pki.interPem));
  const inject = injectionFile(join(d, 'inject.bin'), [
    [
      [CKA.CLASS, ulongBytes(CKO.NSS_TRUST)], [CKA.TOKEN, boolBytes(true)], [CKA.LABEL, Buffer.from('intermediate distrusted')],
      [CKA.ISSUER, inter.issuer], [CKA.SERIAL_NUMBER, inter.serial], [CKA.TRUST_SERVER_AUTH, ulongBytes(CKT.NSS_NOT_TRUSTED)],
    ],
  ]);
  const shimEnv = { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${pki.trustDir}`, NCFENCE_TEST_INJECT: inject, NCFENCE_TEST_SHORT_PAGES: '1' };
  const { result, through } = await buildAndReadThrough(shimEnv, join(d, 'out'));
  t.is(result.summary.rootsFenced, 1);
  t.true(through.objects.some((o) => labelOf(o) === 'intermediate distrusted'), 'the distrust record, last of many short pages, is seen');
  // NSS agrees: the intermediate is distrusted, so neither chain verifies.
  const env = { ...process.env, ...shimEnv, NCFENCE_CONFIG: result.config };
  const db = await makeNssDb(join(d, 'db'), 'ncfence', MODULE, '', env);
  t.deepEqual(await verdicts(db, env), { 'www.example.com': false, 'www.example.bit': false });
});

test.serial('an upstream the application already initialized is used, and left initialized', async (t) => {
  // NSS treats CKR_CRYPTOKI_ALREADY_INITIALIZED from C_Initialize as success
  // (the application loaded the same library itself); so does ncfence now.
  const d = join(dir, 'already');
  const shimEnv = { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${pki.trustDir}` };
  const result = await withEnv(shimEnv, () => build({ upstream: UPSTREAM_SHIM, upstreamParams: '', outDir: join(d, 'out') }));
  const env = { ...process.env, ...shimEnv, NCFENCE_TEST_UPSTREAM_ALREADY: '1', NCFENCE_CONFIG: result.config };
  const db = await makeNssDb(join(d, 'db'), 'ncfence', MODULE, '', env);
  t.deepEqual(await verdicts(db, env), { 'www.example.com': true, 'www.example.bit': false });
  const list = await run('certutil', ['-L', '-h', 'all', '-d', db], { env });
  t.notRegex(list.stderr, /WARNING/);
});

test.serial('a later certificate\'s NSS policy attributes are read even when the first certificate has none', async (t) => {
  // Enumeration reads each class with the first object's attribute list.
  // Here the first certificate is p11-kit's (no NSS policy attributes) and a
  // later one, R, has a server distrust-after date; the anchor for R must
  // carry it, or R would be trusted past that date (found by review).
  const d = join(dir, 'policy-attrs');
  const trust = join(d, 'trust');
  mkdirSync(trust, { recursive: true });
  copyFileSync(pki.interFile, join(trust, 'inter.pem')); // a plain certificate, first in the slot
  const root = parseCertificate(fromPem(pki.rootPem));
  const distrustAfter = Buffer.from('251130000000Z'); // an NSS distrust-after value (UTCTime text)
  // R carries every attribute p11-kit's certificate has (so the batched read
  // succeeds for it) plus the two policy attributes.
  const first = readUpstream(P11KIT_TRUST, `paths=${trust}`).objects.find((o) => ulongValue(o.attrs.get(CKA.CLASS)) === CKO.CERTIFICATE)!;
  const rAttrs = new Map(first.attrs);
  for (const [k, v] of [
    [CKA.LABEL, Buffer.from('R with policy')], [CKA.SUBJECT, root.subject], [CKA.ISSUER, root.issuer], [CKA.SERIAL_NUMBER, root.serial], [CKA.VALUE, root.der],
    [CKA.TRUSTED, boolBytes(false)], [CKA.NSS_MOZILLA_CA_POLICY, boolBytes(true)], [CKA.NSS_SERVER_DISTRUST_AFTER, distrustAfter],
  ] as [number, Uint8Array][]) rAttrs.set(k, v);
  const inject = injectionFile(join(d, 'inject.bin'), [
    [...rAttrs.entries()],
    [
      [CKA.CLASS, ulongBytes(CKO.NSS_TRUST)], [CKA.TOKEN, boolBytes(true)], [CKA.ISSUER, root.issuer], [CKA.SERIAL_NUMBER, root.serial],
      [CKA.CERT_SHA1_HASH, new Uint8Array(createHash('sha1').update(root.der).digest())],
      [CKA.TRUST_SERVER_AUTH, ulongBytes(CKT.NSS_TRUSTED_DELEGATOR)],
    ],
  ]);
  const shimEnv = { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${trust}`, NCFENCE_TEST_INJECT: inject };
  const snap = await withEnv(shimEnv, () => readUpstream(UPSTREAM_SHIM, ''));
  const certs = snap.objects.filter((o) => ulongValue(o.attrs.get(CKA.CLASS)) === CKO.CERTIFICATE);
  t.true(certs.length >= 2);
  t.false(certs[0]!.attrs.has(CKA.NSS_SERVER_DISTRUST_AFTER), 'the first certificate has no policy attributes');
  const r = certs.find((o) => labelOf(o) === 'R with policy')!;
  t.deepEqual(Buffer.from(r.attrs.get(CKA.NSS_SERVER_DISTRUST_AFTER) ?? []), distrustAfter);
  t.deepEqual([...(r.attrs.get(CKA.NSS_MOZILLA_CA_POLICY) ?? [])], [1]);
});
