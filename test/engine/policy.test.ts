// The policy: malformed files are refused with file, place and problem;
// each rule decides the roots it should, on synthetic upstream snapshots.

import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultEngineDeps } from '../../src/engine/crossSign.js';
import { EngineError } from '../../src/engine/errors.js';
import { planView } from '../../src/compile/plan.js';
import { DEFAULT_POLICY, POLICY_SCHEMA_FILE, TARGET_POLICY, loadPolicy, policyValidator, type Policy } from '../../src/policy.js';
import { CKA, CKM_SHA256, CKO, CKT } from '../../src/pkcs11/constants.js';
import { boolBytes, ulongBytes, type UpstreamObject } from '../../src/pkcs11/objects.js';
import { excludingExtension, makeRoot, upstreamRoot } from '../helpers/certs.js';
import { CLI, ROOT } from '../helpers/paths.js';
import { run } from '../helpers/run.js';

let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-policy-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const base = (): Record<string, unknown> => JSON.parse(readFileSync(DEFAULT_POLICY, 'utf8')) as Record<string, unknown>;
let n = 0;
function writePolicy(doc: unknown): string {
  const file = join(dir, `policy-${n++}.json`);
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
}

const malformed: { name: string; doc: () => unknown; message: RegExp }[] = [
  { name: 'not JSON', doc: () => '{ "schema": 1,', message: /not valid JSON/ },
  { name: 'unknown schema', doc: () => ({ ...base(), schema: 2 }), message: /schema: unsupported schema 2/ },
  { name: 'unknown top-level field', doc: () => ({ ...base(), exclude: {} }), message: /json: exclude: unknown field/ },
  { name: 'no excluded names', doc: () => ({ ...base(), excluded: { dNSName: [] } }), message: /excluded\.dNSName: must name at least one/ },
  { name: 'leading-dot name', doc: () => ({ ...base(), excluded: { dNSName: ['.bit'] } }), message: /excluded\.dNSName\[0\]:.*"\.bit"/ },
  { name: 'unsupported name type', doc: () => ({ ...base(), excluded: { dNSName: ['bit'], uniformResourceIdentifier: ['bit'] } }), message: /excluded\.uniformResourceIdentifier: unknown field/ },
  { name: 'IP range with host bits', doc: () => ({ ...base(), excluded: { dNSName: ['bit'], iPAddress: ['10.0.0.1/8'] } }), message: /excluded\.iPAddress\[0\]: .*host bits set beyond \/8/ },
  { name: 'IP range that is not one', doc: () => ({ ...base(), excluded: { dNSName: ['bit'], iPAddress: ['everything'] } }), message: /excluded\.iPAddress\[0\]: expected address\/prefix-length.*got "everything"/ },
  { name: 'IP range that only looks like one', doc: () => ({ ...base(), excluded: { dNSName: ['bit'], iPAddress: ['1.2.3/8'] } }), message: /excluded\.iPAddress\[0\]: .*not an address\/prefix-length range/ },
  { name: 'DNS name over 253 characters', doc: () => ({ ...base(), excluded: { dNSName: [`${'a'.repeat(60)}.`.repeat(5) + 'bit'] } }), message: /excluded\.dNSName\[0\]: .*not an ASCII DNS name/ },
  { name: 'blank override reason', doc: () => ({ ...base(), overrides: [{ id: 'x', sha256: 'a'.repeat(64), action: 'drop', reason: '   ' }] }), message: /overrides\[0\] \(id x\)\.reason: expected a non-empty reason/ },
  { name: 'only absolute names', doc: () => ({ ...base(), excluded: { dNSName: ['bit.'] } }), message: /excluded\.dNSName: must name at least one DNS name without a trailing dot/ },
  { name: 'two trailing dots', doc: () => ({ ...base(), excluded: { dNSName: ['bit', 'bit..'] } }), message: /excluded\.dNSName\[1\]: expected a DNS name: .*at most one trailing dot.*got "bit\.\."/ },
  { name: 'mail domain with two leading dots', doc: () => ({ ...base(), excluded: { dNSName: ['bit'], rfc822Name: ['..bit'] } }), message: /excluded\.rfc822Name\[0\]: expected a mail host .*got "\.\.bit"/ },
  { name: 'mailbox as a mail domain', doc: () => ({ ...base(), excluded: { dNSName: ['bit'], rfc822Name: ['alice@example.bit'] } }), message: /excluded\.rfc822Name\[0\]: expected a mail host/ },
  { name: 'empty excludedForNss', doc: () => ({ ...base(), excludedForNss: {} }), message: /excludedForNss/ },
  { name: 'bad range in excludedForNss', doc: () => ({ ...base(), excludedForNss: { iPAddress: ['10.0.0.1/8'] } }), message: /excludedForNss\.iPAddress\[0\]: .*host bits set beyond \/8/ },
  { name: 'bad anchor key', doc: () => ({ ...base(), anchorKey: 'RSA-1024' }), message: /anchorKey: expected one of "P-256", "P-384"/ },
  { name: 'bad purpose', doc: () => ({ ...base(), trustedFor: ['serverAuth', 'ipsec'] }), message: /trustedFor\[1\]: expected one of/ },
  { name: 'pass for expired roots', doc: () => ({ ...base(), select: { expired: 'pass' } }), message: /select\.expired: "pass" would leave roots unfenced/ },
  { name: 'pass for a key type', doc: () => ({ ...base(), select: { keyTypes: { rsa: 'pass' } } }), message: /select\.keyTypes\.rsa: "pass"/ },
  { name: 'override without reason', doc: () => ({ ...base(), overrides: [{ id: 'x', sha256: 'a'.repeat(64), action: 'drop' }] }), message: /overrides\[0\] \(id x\)\.reason/ },
  { name: 'override with short hash', doc: () => ({ ...base(), overrides: [{ id: 'x', sha256: 'abc', action: 'drop', reason: 'r' }] }), message: /overrides\[0\] \(id x\)\.sha256: expected the root certificate's SHA-256/ },
  {
    name: 'duplicate override id',
    doc: () => ({ ...base(), overrides: [1, 2].map(() => ({ id: 'same', sha256: 'b'.repeat(64), action: 'drop', reason: 'r' })) }),
    message: /overrides\[1\] \(id same\)\.id: duplicate id/,
  },
];

for (const c of malformed) {
  test(`malformed policy refused: ${c.name}`, (t) => {
    const file = writePolicy(c.doc());
    const e = t.throws(() => loadPolicy(file), { instanceOf: EngineError });
    t.is(e?.code, 'POLICY');
    t.true(e!.message.startsWith(`${file}: `), e!.message);
    t.regex(e!.message, c.message);
  });
}

// The schema is compiled ahead of time (scripts/policy-validator.mjs, run by
// npm run build); these check that what was generated is the schema's own
// check, and that a changed schema is never judged by an old validator.
const firstError = (v: ReturnType<typeof policyValidator>, doc: unknown): unknown => {
  if (v.validate(doc)) return null;
  const { keyword, instancePath, schemaPath, params, message, data, parentSchema } = v.validate.errors![0]!;
  return { keyword, instancePath, schemaPath, params, message, data, parentSchema };
};

test('the policy validator generated at build time is the schema compiled, error for error', (t) => {
  const schema = readFileSync(POLICY_SCHEMA_FILE);
  const generated = policyValidator(schema);
  t.is(generated.source, 'generated', 'dist/policy-validator.cjs is missing or stale: run npm run build');
  const compiled = policyValidator(schema, join(dir, 'no-such-validator.cjs'));
  t.is(compiled.source, 'compiled');
  const docs = [base(), ...malformed.map((c) => c.doc()).filter((d) => typeof d !== 'string')];
  for (const doc of docs) t.deepEqual(firstError(generated, doc), firstError(compiled, doc), JSON.stringify(doc));
});

test('a schema changed after the build is compiled, and the generator follows the schema', async (t) => {
  const schema = JSON.parse(readFileSync(POLICY_SCHEMA_FILE, 'utf8')) as { properties: { excluded: { properties: Record<string, unknown> } } };
  schema.properties.excluded.properties.uniformResourceIdentifier = { type: 'array', items: { type: 'string' } };
  const file = join(dir, 'changed.schema.json');
  writeFileSync(file, JSON.stringify(schema, null, 2));
  const changed = readFileSync(file);
  const doc = { ...base(), excluded: { dNSName: ['bit'], uniformResourceIdentifier: ['bit'] } };
  // The build's validator was made from other bytes: not used for these.
  const fallback = policyValidator(changed);
  t.is(fallback.source, 'compiled');
  t.true(fallback.validate(doc));
  t.false(policyValidator(readFileSync(POLICY_SCHEMA_FILE)).validate(doc));
  // The generator run on the changed schema makes a validator for it: a
  // file that stands alone (it is loaded here from a temporary directory).
  const out = join(dir, 'changed-validator.cjs');
  const gen = await run(process.execPath, [join(ROOT, 'scripts/policy-validator.mjs'), file, out], { timeoutMs: 60_000 });
  t.is(gen.code, 0, gen.stderr);
  const regenerated = policyValidator(changed, out);
  t.is(regenerated.source, 'generated');
  t.true(regenerated.validate(doc));
  t.deepEqual(firstError(regenerated, { ...doc, excluded: { dNSName: ['bit'], uniformResourceIdentifier: [7] } }), firstError(fallback, { ...doc, excluded: { dNSName: ['bit'], uniformResourceIdentifier: [7] } }));
});

test('the default policy loads and excludes bit as a host and as a mail host and domain', (t) => {
  const p = loadPolicy();
  t.deepEqual(p.excludedDnsNames, ['bit']);
  t.deepEqual(p.excludedMailDomains, ['bit', '.bit']);
  t.deepEqual(p.nssSubtrees, []);
  t.is(p.anchorKey, 'P-256');
});

test('ncfence build exits 3 with the policy error on stderr', async (t) => {
  const file = writePolicy({ ...base(), anchorKey: 'nope' });
  const r = await run(process.execPath, ['--import', 'tsx', CLI, 'build', '--policy', file, '--out', join(dir, 'out')], { timeoutMs: 60_000 });
  t.is(r.code, 3);
  t.regex(r.stderr, /^ncfence: .*anchorKey: expected one of/m);
  t.is(r.stdout, '');
});

const sha = (der: Uint8Array): string => createHash('sha256').update(der).digest('hex');
const day = 86400_000;

interface DecisionCase {
  name: string;
  root: () => Uint8Array;
  purposes?: Parameters<typeof upstreamRoot>[2];
  policy: (der: Uint8Array) => Record<string, unknown>;
  action: 'fence' | 'drop' | 'pass';
  rule: string | RegExp;
}

const decisions: DecisionCase[] = [
  { name: 'a trusted root is fenced by default', root: () => makeRoot(), policy: () => base(), action: 'fence', rule: 'default' },
  { name: 'key type rule drops EC roots', root: () => makeRoot({ key: 'ec' }), policy: () => ({ ...base(), select: { keyTypes: { ec: 'drop' } } }), action: 'drop', rule: 'select.keyTypes.ec' },
  { name: 'key type rule leaves RSA roots fenced', root: () => makeRoot({ key: 'rsa' }), policy: () => ({ ...base(), select: { keyTypes: { ec: 'drop' } } }), action: 'fence', rule: 'default' },
  {
    name: 'expired roots dropped when the policy says so',
    root: () => makeRoot({ notBefore: new Date(Date.now() - 400 * day), notAfter: new Date(Date.now() - 2 * day) }),
    policy: () => ({ ...base(), select: { expired: 'drop' } }),
    action: 'drop',
    rule: 'select.expired',
  },
  {
    name: 'expired roots fenced by default',
    root: () => makeRoot({ notBefore: new Date(Date.now() - 400 * day), notAfter: new Date(Date.now() - 2 * day) }),
    policy: () => base(),
    action: 'fence',
    rule: 'default',
  },
  {
    name: 'a root already excluding bit as a host and a mail domain may pass',
    root: () => makeRoot({ extensions: [excludingExtension(['BIT', 'onion'], ['.Bit', 'bit'])] }),
    policy: () => ({ ...base(), select: { alreadyExcluded: 'pass' } }),
    action: 'pass',
    rule: 'select.alreadyExcluded',
  },
  {
    // A root that excludes only DNS bit still vouches for alice@example.bit (S/MIME).
    name: 'excluding the DNS name bit is not excluding the mail domain',
    root: () => makeRoot({ extensions: [excludingExtension(['bit'])] }),
    policy: () => ({ ...base(), select: { alreadyExcluded: 'pass' } }),
    action: 'fence',
    rule: 'default',
  },
  {
    name: 'a root must exclude the absolute forms too to pass the nss policy',
    root: () => makeRoot({ extensions: [excludingExtension(['bit'], ['bit', '.bit'])] }),
    policy: () => ({ ...JSON.parse(readFileSync(TARGET_POLICY.nss, 'utf8')) as Record<string, unknown>, select: { alreadyExcluded: 'pass' } }),
    action: 'fence',
    rule: 'default',
  },
  {
    // p11-kit.json's NSS form excludes every IP address: a root that does not passes nowhere.
    name: 'a root must exclude what the NSS form adds to pass the p11-kit policy',
    root: () => makeRoot({ extensions: [excludingExtension(['bit', 'bit.'], ['bit', '.bit', 'bit.', '.bit.'])] }),
    policy: () => ({ ...JSON.parse(readFileSync(TARGET_POLICY['p11-kit'], 'utf8')) as Record<string, unknown>, select: { alreadyExcluded: 'pass' } }),
    action: 'fence',
    rule: 'default',
  },
  {
    name: 'a policy excluding only DNS names passes a root excluding them',
    root: () => makeRoot({ extensions: [excludingExtension(['BIT', 'onion'])] }),
    policy: () => ({ ...base(), excluded: { dNSName: ['bit'] }, select: { alreadyExcluded: 'pass' } }),
    action: 'pass',
    rule: 'select.alreadyExcluded',
  },
  {
    name: 'excluding orbit is not excluding bit',
    root: () => makeRoot({ extensions: [excludingExtension(['orbit'])] }),
    policy: () => ({ ...base(), select: { alreadyExcluded: 'pass' } }),
    action: 'fence',
    rule: 'default',
  },
  { name: 'SHA-1 self-signature dropped on request', root: () => makeRoot({ key: 'rsa', hash: 'sha1' }), policy: () => ({ ...base(), select: { weakSignature: 'drop' } }), action: 'drop', rule: 'select.weakSignature' },
  { name: 'root without CN dropped on request', root: () => makeRoot({ cn: null }), policy: () => ({ ...base(), select: { noCommonName: 'drop' } }), action: 'drop', rule: 'select.noCommonName' },
  { name: 'override by SHA-256 wins over the rules', root: () => makeRoot(), policy: (der) => ({ ...base(), overrides: [{ id: 'distrust-it', sha256: sha(der).toUpperCase(), action: 'drop', reason: 'test' }] }), action: 'drop', rule: 'distrust-it' },
  {
    name: 'trustedFor drops an email-only root from a server-only policy',
    root: () => makeRoot(),
    purposes: { email: CKT.NSS_TRUSTED_DELEGATOR },
    policy: () => ({ ...base(), trustedFor: ['serverAuth'] }),
    action: 'drop',
    rule: 'trustedFor',
  },
  { name: 'a malformed root is dropped, never passed', root: () => Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01), policy: () => base(), action: 'drop', rule: 'malformed' },
];

for (const c of decisions) {
  test(`decision: ${c.name}`, async (t) => {
    const der = c.root();
    const policy: Policy = loadPolicy(writePolicy(c.policy(der)));
    const plan = planView({ library: 'test', params: '', slots: [], objects: upstreamRoot(der, c.name, c.purposes) }, policy, await defaultEngineDeps());
    t.is(plan.summary.decisions.length, 1);
    const d = plan.summary.decisions[0]!;
    t.is(d.action, c.action, d.reason);
    if (typeof c.rule === 'string') t.is(d.rule, c.rule);
    else t.regex(d.rule, c.rule);
    // What the view carries follows from the action: three objects per fenced root,
    // upstream's own trust record copied for a pass, nothing that trusts for a drop.
    // (one more per fenced root with two forms of R').
    const expectObjects = { fence: policy.nssSubtrees.length ? 4 : 3, pass: 1, drop: 0 }[c.action];
    t.is(plan.objects.length, expectObjects);
  });
}

test('an override that would pass an unfenced root is refused', async (t) => {
  const der = makeRoot();
  const policy = loadPolicy(writePolicy({ ...base(), overrides: [{ id: 'keep-as-is', sha256: sha(der), action: 'pass', reason: 'test' }] }));
  const e = t.throws(() => planView({ library: 'test', params: '', slots: [], objects: upstreamRoot(der, 'r') }, policy, { now: () => new Date(), generateAnchorKey: () => { throw new Error('unused'); }, serial: () => Uint8Array.of(1) }), { instanceOf: EngineError });
  t.is(e?.code, 'POLICY');
  t.regex(e!.message, /keep-as-is: "pass" would leave root r \([0-9a-f]{64}\) unfenced/);
});

test('trustedFor turns the purposes it drops into MUST_VERIFY on the anchor', async (t) => {
  const der = makeRoot();
  const policy = loadPolicy(writePolicy({ ...base(), trustedFor: ['serverAuth'] }));
  const plan = planView(
    { library: 'test', params: '', slots: [], objects: upstreamRoot(der, 'r', { server: CKT.NSS_TRUSTED_DELEGATOR, email: CKT.NSS_TRUSTED_DELEGATOR }) },
    policy,
    await defaultEngineDeps(),
  );
  const trust = plan.objects[1]!.attrs;
  const get = (type: number): number => Number(Buffer.from(trust.find(([ty]) => ty === type)![1]).readBigUInt64LE(0));
  t.is(get(0xce536358), CKT.NSS_TRUSTED_DELEGATOR);
  t.is(get(0xce53635b), CKT.NSS_MUST_VERIFY_TRUST);
});

test('property: any mutation of a policy file loads or is refused with a POLICY error', (t) => {
  const text = readFileSync(DEFAULT_POLICY, 'utf8');
  // A fixed-seed generator so a failure reproduces.
  let seed = 0x9e3779b9;
  const rand = (k: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % k;
  };
  const alphabet = '{}[]":,0123456789abcdefghijklmnopqrstuvwxyz-. \n\\\u0000\u00e9';
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    const chars = [...text];
    for (let k = 0, n = 1 + rand(3); k < n; k++) {
      const at = rand(chars.length);
      const op = rand(3);
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, alphabet[rand(alphabet.length)]!);
      else chars[at] = alphabet[rand(alphabet.length)]!;
    }
    const file = writePolicy(chars.join(''));
    try {
      loadPolicy(file);
    } catch (e) {
      t.true(e instanceof EngineError && e.code === 'POLICY' && e.message.startsWith(file), String(e));
      refused++;
    }
    rmSync(file);
  }
  t.true(refused > 500, `${refused} of 2000 mutations refused`);
});

test('a trust record with a malformed purpose value drops its root instead of copying the value', async (t) => {
  const der = makeRoot();
  const objects = upstreamRoot(der, 'r');
  objects[1]!.attrs.set(0xce536358, Uint8Array.of(0x52, 0x43, 0x53, 0xce)); // 4-byte CKA_TRUST_SERVER_AUTH
  const plan = planView({ library: 'test', params: '', slots: [], objects }, loadPolicy(), await defaultEngineDeps());
  t.is(plan.summary.decisions[0]!.action, 'drop');
  t.regex(plan.summary.decisions[0]!.reason, /4-byte value/);
  t.is(plan.objects.length, 0);
});

/** R with CKA_TRUSTED = TRUE and, optionally, a PKCS#11 3.2 trust record for it. */
function trustedCertRoot(der: Uint8Array, record?: Map<number, Uint8Array>): UpstreamObject[] {
  const [cert, nssTrust] = upstreamRoot(der, 'r');
  cert!.attrs.set(CKA.TRUSTED, boolBytes(true));
  const out = [cert!];
  if (record) out.push({ slot: 1, attrs: new Map([[CKA.CLASS, ulongBytes(CKO.TRUST)], [CKA.ISSUER, nssTrust!.attrs.get(CKA.ISSUER)!], [CKA.SERIAL_NUMBER, nssTrust!.attrs.get(CKA.SERIAL_NUMBER)!], ...record]) });
  return out;
}

const nssPurpose = (plan: { objects: { attrs: [number, Uint8Array][] }[] }, type: number): number => {
  const anchorTrust = plan.objects.find((o) => o.attrs.some(([t, v]) => t === CKA.CLASS && Buffer.from(v).readBigUInt64LE(0) === BigInt(CKO.NSS_TRUST)))!;
  return Number(Buffer.from(anchorTrust.attrs.find(([t]) => t === type)![1]).readBigUInt64LE(0));
};

test('a root trusted only by CKA_TRUSTED gets the policy\'s purposes on its anchor, not all four', async (t) => {
  // Found by review: the anchor's NSS record used to say TRUSTED_DELEGATOR
  // for every purpose whatever trustedFor said.
  const policy = loadPolicy(writePolicy({ ...base(), trustedFor: ['emailProtection'] }));
  const plan = planView({ library: 'test', params: '', slots: [], objects: trustedCertRoot(makeRoot()) }, policy, await defaultEngineDeps());
  t.is(plan.summary.rootsFenced, 1);
  t.is(nssPurpose(plan, CKA.TRUST_EMAIL_PROTECTION), CKT.NSS_TRUSTED_DELEGATOR);
  t.is(nssPurpose(plan, CKA.TRUST_SERVER_AUTH), CKT.NSS_MUST_VERIFY_TRUST);
  t.is(nssPurpose(plan, CKA.TRUST_CODE_SIGNING), CKT.NSS_MUST_VERIFY_TRUST);
});

test('a CKO_TRUST record the engine cannot check does not fall back to CKA_TRUSTED', async (t) => {
  // The record says email only, under SHA-384 (not checked here); R also has
  // CKA_TRUSTED. R must not be fenced for every purpose by way of CKA_TRUSTED.
  const der = makeRoot();
  const record = new Map<number, Uint8Array>([
    [CKA.HASH_OF_CERTIFICATE, new Uint8Array(createHash('sha384').update(der).digest())],
    [CKA.NAME_HASH_ALGORITHM, ulongBytes(0x260)], // CKM_SHA384
    [CKA.PKCS_TRUST_SERVER_AUTH, ulongBytes(CKT.TRUST_MUST_VERIFY_TRUST)],
    [CKA.PKCS_TRUST_EMAIL_PROTECTION, ulongBytes(CKT.TRUST_ANCHOR)],
  ]);
  const plan = planView({ library: 'test', params: '', slots: [], objects: trustedCertRoot(der, record) }, loadPolicy(), await defaultEngineDeps());
  t.is(plan.summary.rootsFenced, 0);
  t.deepEqual(plan.summary.decisions.map((d) => d.rule), ['orphan']);
  // With SHA-256 the same record is checked and R is fenced for email only.
  record.set(CKA.HASH_OF_CERTIFICATE, new Uint8Array(createHash('sha256').update(der).digest()));
  record.set(CKA.NAME_HASH_ALGORITHM, ulongBytes(CKM_SHA256));
  const ok = planView({ library: 'test', params: '', slots: [], objects: trustedCertRoot(der, record) }, loadPolicy(), await defaultEngineDeps());
  t.is(ok.summary.rootsFenced, 1);
  t.is(nssPurpose(ok, CKA.TRUST_EMAIL_PROTECTION), CKT.NSS_TRUSTED_DELEGATOR);
  t.is(nssPurpose(ok, CKA.TRUST_SERVER_AUTH), CKT.NSS_MUST_VERIFY_TRUST);
});

// src/browser/compare.ts (install firefox|thunderbird and doctor run it)
// must see an R' that fences bit only as a DNS name: Thunderbird's S/MIME
// would still take a public CA's alice@example.bit.
test('the browser comparison flags a cross-certificate that does not exclude the mail domains', async (t) => {
  const { compareRootPrograms } = await import('../../src/browser/compare.js');
  const { grantsTrust } = await import('../../src/compile/plan.js');
  const stock = upstreamRoot(makeRoot(), 'root', { server: CKT.NSS_TRUSTED_DELEGATOR, email: CKT.NSS_TRUSTED_DELEGATOR });
  const installed = async (doc: Record<string, unknown>) => {
    const plan = planView({ library: 'test', params: '', slots: [], objects: stock }, loadPolicy(writePolicy(doc)), await defaultEngineDeps(), { mirrorTrustKinds: true });
    return [...stock.filter((o) => !grantsTrust(o)), ...plan.objects.map((o) => ({ slot: o.slot, attrs: new Map(o.attrs) }))];
  };
  const fenced = compareRootPrograms(stock, await installed(base()));
  t.deepEqual(fenced.unfenced, []);
  t.is(fenced.matched, 1);
  const dnsOnly = compareRootPrograms(stock, await installed({ ...base(), excluded: { dNSName: ['bit'] } }));
  t.deepEqual(dnsOnly.unfenced.map((u) => u.what), ['its cross-certificate does not exclude e-mail bit, e-mail .bit']);
});

test('a policy with excludedForNss gives each fenced root two forms of R\', one per audience, under one anchor', async (t) => {
  const { AUDIENCE } = await import('../../src/pkcs11/constants.js');
  const der = makeRoot();
  const plan = planView({ library: 'test', params: '', slots: [], objects: upstreamRoot(der, 'r') }, loadPolicy(TARGET_POLICY['p11-kit']), await defaultEngineDeps());
  const certs = plan.objects.filter((o) => o.attrs.some(([k, v]) => k === CKA.CLASS && Buffer.from(v).readBigUInt64LE() === BigInt(CKO.CERTIFICATE)));
  const audience = (o: (typeof certs)[number]) => {
    const a = o.attrs.find(([k]) => k === CKA.NCFENCE_AUDIENCE)?.[1];
    return a === undefined ? undefined : Number(Buffer.from(a).readBigUInt64LE());
  };
  t.deepEqual(certs.map(audience), [undefined, AUDIENCE.PLAIN_FORM, AUDIENCE.NSS_FORM], 'L(R), then R\' in its two forms');
  const issuer = (o: (typeof certs)[number]) => Buffer.from(o.attrs.find(([k]) => k === CKA.ISSUER)![1]).toString('hex');
  const serial = (o: (typeof certs)[number]) => Buffer.from(o.attrs.find(([k]) => k === CKA.SERIAL_NUMBER)![1]).toString('hex');
  t.is(issuer(certs[1]!), issuer(certs[2]!));
  t.not(serial(certs[1]!), serial(certs[2]!));
  const single = planView({ library: 'test', params: '', slots: [], objects: upstreamRoot(der, 'r') }, loadPolicy(TARGET_POLICY.nss), await defaultEngineDeps());
  t.true(single.objects.every((o) => !o.attrs.some(([k]) => k === CKA.NCFENCE_AUDIENCE)), 'one form, and no audience, without excludedForNss');
});
