// Every root shape x every leaf form x every verifier. Synthetic roots of
// each shape sit in one p11-kit-trust directory; one ncfence view fences
// them all. Each leaf is judged through ncfence (NSS through the module;
// OpenSSL and GnuTLS with L(R) as the only anchor and R' as an untrusted
// intermediate, both read from the compiled view) and, as the control that
// proves the case can go the other way, with the plain root as the anchor.
// `.com` must pass everywhere and every `.bit` form must be refused because
// of the name constraint. Known departures are listed per case, with reason.

import test, { type ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { DEFAULT_POLICY } from '../../src/policy.js';
import { decodeView } from '../../src/view/format.js';
import { ulongValue } from '../../src/pkcs11/objects.js';
import { CKA, CKO } from '../../src/pkcs11/constants.js';
import { makeNssDb, vfychain } from '../helpers/nss.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';
import { toPem } from '../helpers/pem.js';
import { limiter, makeSyntheticPki, subjectOf, type LeafSpec, type RootSpec, type SyntheticPki } from '../helpers/synthetic.js';

type OracleId = 'nss-classic' | 'nss-libpkix' | 'openssl' | 'openssl-strict' | 'gnutls';
type LeafId = 'com' | 'bit' | 'bare' | 'wild' | 'cn';
type Side = 'fenced' | 'control';

interface Verdict {
  ok: boolean;
  output: string;
}

/** Files one verification needs; NSS ignores anchor/cross and asks the module instead. */
interface Chain {
  leaf: string;
  inter: string;
  root: string;
  /** L(R) from the view. */
  anchor: string;
  /** R' from the view. */
  cross: string;
  /** leaf + inter + R', for GnuTLS. */
  fencedBundle: string;
  /** leaf + inter, for GnuTLS. */
  controlBundle: string;
}

interface Oracle {
  id: OracleId;
  accepted: RegExp;
  /** What the verifier prints when the name constraint refuses this leaf. */
  refusedByNameConstraint(leaf: LeafCase): RegExp;
  verify(chain: Chain, side: Side): Promise<Verdict>;
}

interface LeafCase {
  id: LeafId;
  name: string;
  /** Expected outcome through ncfence. */
  fencedOk: boolean;
  spec: Omit<LeafSpec, 'id'>;
}

interface Difference {
  /** One line: why this departs from the default expectation. */
  reason: string;
  /** A verifier's documented behaviour. */
  kind: 'verifier';
  side: Side;
  /** Leaves concerned; all when absent. */
  leaves?: readonly LeafId[];
  ok: boolean;
  /** The output each concerned verifier gives instead (the keys are the verifiers concerned). */
  outputs: Partial<Record<OracleId, RegExp>>;
}

interface RootCase {
  name: string;
  root: RootSpec;
  /** `openssl x509 -text` of the root must match all of these (the fixture really has the shape)... */
  shape: RegExp[];
  /** ...and none of these. */
  notShape?: RegExp[];
  /** `openssl x509 -text` of R' must match all of these. */
  crossShape?: RegExp[];
  differences?: Difference[];
}

const CA = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
const LEAF = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n';

const LEAVES: readonly LeafCase[] = [
  { id: 'com', name: 'www.example.com', fencedOk: true, spec: { subject: '/CN=www.example.com', extensions: `${LEAF}subjectAltName=DNS:www.example.com\n` } },
  { id: 'bit', name: 'www.example.bit', fencedOk: false, spec: { subject: '/CN=www.example.bit', extensions: `${LEAF}subjectAltName=DNS:www.example.bit\n` } },
  { id: 'bare', name: 'bare bit', fencedOk: false, spec: { subject: '/CN=bit', extensions: `${LEAF}subjectAltName=DNS:bit\n` } },
  { id: 'wild', name: 'wildcard *.x.bit', fencedOk: false, spec: { subject: '/CN=*.x.bit', extensions: `${LEAF}subjectAltName=DNS:*.x.bit\n` } },
  { id: 'cn', name: 'CN-only www.example.bit (no SAN)', fencedOk: false, spec: { subject: '/CN=www.example.bit', extensions: LEAF } },
];


const cases: readonly RootCase[] = [
  {
    name: 'RSA 2048 root',
    root: { id: 'rsa2048', subject: '/O=ncfence tests/CN=Synthetic RSA 2048 Root', key: 'rsa2048', extensions: CA },
    shape: [/Version: 3/, /Public-Key: \(2048 bit\)/, /Signature Algorithm: sha256WithRSAEncryption/],
  },
  {
    name: 'RSA 4096 root',
    root: { id: 'rsa4096', subject: '/O=ncfence tests/CN=Synthetic RSA 4096 Root', key: 'rsa4096', extensions: CA },
    shape: [/Public-Key: \(4096 bit\)/, /Signature Algorithm: sha256WithRSAEncryption/],
  },
  {
    name: 'P-256 root',
    root: { id: 'p256', subject: '/O=ncfence tests/CN=Synthetic P-256 Root', key: 'p256', extensions: CA },
    shape: [/NIST CURVE: P-256/, /Signature Algorithm: ecdsa-with-SHA256/],
  },
  {
    name: 'P-384 root',
    root: { id: 'p384', subject: '/O=ncfence tests/CN=Synthetic P-384 Root', key: 'p384', extensions: CA },
    shape: [/NIST CURVE: P-384/, /Signature Algorithm: ecdsa-with-SHA384/],
  },
  {
    name: 'RSA-PSS root',
    root: { id: 'pss', subject: '/O=ncfence tests/CN=Synthetic RSA-PSS Root', key: 'rsa-pss', extensions: CA },
    shape: [/Public Key Algorithm: rsassaPss/, /Signature Algorithm: rsassaPss/, /Hash Algorithm: sha256/],
  },
  {
    // R permits bit explicitly, so the merged exclusion must win over R's own
    // permitted subtree (RFC 5280 4.2.1.10); R's other exclusion must stay.
    name: 'root with its own NameConstraints',
    root: {
      id: 'nc',
      subject: '/O=ncfence tests/CN=Synthetic Constrained Root',
      key: 'p256',
      extensions: `${CA}nameConstraints=critical,permitted;DNS:example.com,permitted;DNS:bit,excluded;DNS:evil.example.com\n`,
    },
    shape: [/Name Constraints: critical\s+Permitted:\s+DNS:example\.com\s+DNS:bit\s+Excluded:\s+DNS:evil\.example\.com\n/],
    crossShape: [/Name Constraints: critical\s+Permitted:\s+DNS:example\.com\s+DNS:bit\s+Excluded:\s+DNS:evil\.example\.com\s+DNS:bit\n/],
  },
  {
    name: 'root with a self-referencing AuthorityKeyIdentifier',
    root: { id: 'aki', subject: '/O=ncfence tests/CN=Synthetic Self-AKI Root', key: 'p256', extensions: `${CA}authorityKeyIdentifier=keyid:always\n` },
    shape: [/Subject Key Identifier:\s+([0-9A-F:]+)\s+X509v3 Authority Key Identifier:\s+(?:keyid:)?\1\s/],
    // R' must point at L(R), not copy R's self-reference.
    crossShape: [/Subject Key Identifier:\s+([0-9A-F:]+)\s[\s\S]*Authority Key Identifier:\s+(?:keyid:)?(?!\1\s)[0-9A-F:]+\s/],
  },
  {
    name: 'version 1 root',
    root: { id: 'v1', subject: '/O=ncfence tests/CN=Synthetic Version 1 Root', key: 'p256', extensions: null },
    shape: [/Version: 1 \(0x0\)/],
    notShape: [/X509v3/],
    // R' of a v1 root must say it is a CA (it is an intermediate now).
    crossShape: [/Version: 3 \(0x2\)/, /X509v3 Basic Constraints: critical\s+CA:TRUE/],
    differences: [
      {
        kind: 'verifier',
        reason: 'OpenSSL -x509_strict refuses a version-1 trust anchor (only cA=TRUE counts as a CA there)',
        side: 'control',
        ok: false,
        outputs: { 'openssl-strict': /error 79 at 2 depth lookup: invalid CA certificate/ },
      },
      {
        kind: 'verifier',
        reason:
          "OpenSSL -x509_strict demands a Subject Key Identifier on every CA; R' keeps R's extensions and adds none, since a computed one could contradict the key ids in intermediates' AKI",
        side: 'fenced',
        leaves: ['com'],
        ok: false,
        outputs: { 'openssl-strict': /error 86 at 2 depth lookup: Missing Subject Key Identifier/ },
      },
    ],
  },
];

const ORACLE_IDS: readonly OracleId[] = ['nss-classic', 'nss-libpkix', 'openssl', 'openssl-strict', 'gnutls'];

interface Ctx {
  pki: SyntheticPki;
  dir: string;
  env: NodeJS.ProcessEnv;
  fencedDb: string;
  controlDb: string;
  chains: Map<string, Chain>;
}
let ctx: Ctx | undefined;
const limit = limiter(4);
const TIMEOUT = 30_000;

function need(): Ctx {
  if (!ctx) throw new Error('fixtures were not built (see the before hook failure)');
  return ctx;
}

function nss(pkix: boolean): (chain: Chain, side: Side) => Promise<Verdict> {
  return (chain, side) => {
    const c = need();
    return limit(() => vfychain(side === 'fenced' ? c.fencedDb : c.controlDb, chain.leaf, chain.inter, pkix, c.env));
  };
}

function openssl(strict: boolean): (chain: Chain, side: Side) => Promise<Verdict> {
  return async (chain, side) => {
    const trust = side === 'fenced' ? ['-CAfile', chain.anchor, '-untrusted', chain.cross] : ['-CAfile', chain.root];
    const args = ['verify', '-no-CApath', '-no-CAstore', '-purpose', 'sslserver', ...(strict ? ['-x509_strict'] : []), ...trust, '-untrusted', chain.inter, chain.leaf];
    const r = await limit(() => run('openssl', args, { timeoutMs: TIMEOUT }));
    const output = r.stdout + r.stderr;
    return { ok: r.code === 0 && /: OK$/m.test(output), output };
  };
}

async function gnutls(chain: Chain, side: Side): Promise<Verdict> {
  const [ca, bundle] = side === 'fenced' ? [chain.anchor, chain.fencedBundle] : [chain.root, chain.controlBundle];
  const args = ['--verify', '--verify-profile', 'medium', '--verify-purpose', '1.3.6.1.5.5.7.3.1', '--load-ca-certificate', ca, '--infile', bundle];
  const r = await limit(() => run('certtool', args, { timeoutMs: TIMEOUT }));
  const output = r.stdout + r.stderr;
  return { ok: r.code === 0 && /^Chain verification output: Verified\./m.test(output), output };
}

const OPENSSL_NC = /error 48 at 0 depth lookup: excluded subtree violation/;
const ORACLES: Record<OracleId, Oracle> = {
  'nss-classic': { id: 'nss-classic', accepted: /Chain is good!/, refusedByNameConstraint: () => /ERROR -8080: /, verify: nss(false) },
  // libpkix reports a DNS SAN in an excluded subtree as -8157
  // (SEC_ERROR_EXTENSION_NOT_FOUND) and a CN-only leaf as -8080; after R'
  // fails it backtracks to the unfenced R and adds -8172 (R has no trust).
  'nss-libpkix': {
    id: 'nss-libpkix',
    accepted: /Chain is good!/,
    refusedByNameConstraint: (leaf) => (leaf.id === 'cn' ? /ERROR -8080: / : /ERROR -8157: Certificate extension not found/),
    verify: nss(true),
  },
  openssl: { id: 'openssl', accepted: /: OK$/m, refusedByNameConstraint: () => OPENSSL_NC, verify: openssl(false) },
  'openssl-strict': { id: 'openssl-strict', accepted: /: OK$/m, refusedByNameConstraint: () => OPENSSL_NC, verify: openssl(true) },
  gnutls: {
    id: 'gnutls',
    accepted: /^Chain verification output: Verified\./m,
    refusedByNameConstraint: () => /^Chain verification output: Not verified\..*The certificate chain violates the signer's constraints/m,
    verify: gnutls,
  },
};

interface Expectation {
  ok: boolean;
  match: RegExp;
  difference?: Difference;
}

function expectation(c: RootCase, leaf: LeafCase, oracle: Oracle, side: Side): Expectation {
  const d = c.differences?.find((x) => x.side === side && x.outputs[oracle.id] && (!x.leaves || x.leaves.includes(leaf.id)));
  if (d) return { ok: d.ok, match: d.outputs[oracle.id]!, difference: d };
  const ok = side === 'control' || leaf.fencedOk;
  return { ok, match: ok ? oracle.accepted : oracle.refusedByNameConstraint(leaf) };
}

function check(t: ExecutionContext, side: Side, v: Verdict, e: Expectation): void {
  const because = e.difference ? ` (${e.difference.kind}: ${e.difference.reason})` : '';
  t.is(v.ok, e.ok, `${side}: expected ${e.ok ? 'accepted' : 'refused'}${because}\n${v.output}`);
  t.regex(v.output, e.match, `${side}: output does not show the expected reason${because}`);
}

test.before(async () => {
  for (const tool of ['openssl', 'certutil', 'modutil', 'vfychain', 'certtool']) await requireTool(tool);
  const pki = await makeSyntheticPki(
    cases.map((c) => c.root),
    LEAVES.map((l) => ({ id: l.id, ...l.spec })),
  );
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-matrix-'));
  ctx = { pki, dir, env: {}, fencedDb: '', controlDb: '', chains: new Map() };
  const params = `paths=${pki.trustDir}`;
  // One form of R' per root (build's own default for p11-kit-trust has two): this matrix is about key types.
  const result = await build({ upstream: P11KIT_TRUST, upstreamParams: params, outDir: join(dir, 'out'), policyFile: DEFAULT_POLICY });
  ctx.env = { ...process.env, NCFENCE_CONFIG: result.config };
  ctx.fencedDb = await makeNssDb(join(dir, 'fenced'), 'ncfence', MODULE, '', ctx.env);
  ctx.controlDb = await makeNssDb(join(dir, 'control'), 'upstream', P11KIT_TRUST, params);
  writeChains(ctx, decodeView(readFileSync(result.view)));
  // R' starts one second after R (crossValidity in src/engine/crossSign.ts).
  await new Promise((r) => setTimeout(r, Math.max(0, 2100 - (Date.now() - pki.rootsDoneAt))));
});

test.after.always(() => {
  ctx?.pki.cleanup();
  if (ctx) rmSync(ctx.dir, { recursive: true, force: true });
});

/** Finds L(R) and R' for every root in the view and writes the files each verifier reads. */
function writeChains(c: Ctx, view: ReturnType<typeof decodeView>): void {
  const certs = view.objects
    .filter((o) => ulongValue(o.attrs.find(([t]) => t === CKA.CLASS)?.[1]) === CKO.CERTIFICATE)
    .map((o) => new Map(o.attrs));
  const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');
  const anchors = certs.filter((a) => new TextDecoder().decode(a.get(CKA.LABEL)).startsWith('ncfence anchor for'));
  const files = join(c.dir, 'files');
  mkdirSync(files);
  for (const root of c.pki.roots.values()) {
    const subject = hex(subjectOf(root.rootDer));
    const pairs = anchors.flatMap((a) =>
      certs.filter((x) => hex(x.get(CKA.ISSUER)) === hex(a.get(CKA.SUBJECT)) && hex(x.get(CKA.SUBJECT)) === subject).map((x) => ({ a, x })),
    );
    if (pairs.length !== 1) throw new Error(`root ${root.spec.id}: ${pairs.length} anchor/cross pairs in the view, expected 1`);
    const { a, x } = pairs[0]!;
    const id = root.spec.id;
    const anchor = join(files, `anchor-${id}.pem`);
    const cross = join(files, `cross-${id}.pem`);
    writeFileSync(anchor, toPem(a.get(CKA.VALUE)!));
    writeFileSync(cross, toPem(x.get(CKA.VALUE)!));
    const interPem = readFileSync(root.interFile, 'utf8');
    for (const [leafId, leaf] of root.leafFiles) {
      const leafPem = readFileSync(leaf, 'utf8');
      const fencedBundle = join(files, `fenced-${id}-${leafId}.pem`);
      const controlBundle = join(files, `control-${id}-${leafId}.pem`);
      writeFileSync(fencedBundle, leafPem + interPem + readFileSync(cross, 'utf8'));
      writeFileSync(controlBundle, leafPem + interPem);
      c.chains.set(`${id}/${leafId}`, { leaf, inter: root.interFile, root: root.rootFile, anchor, cross, fencedBundle, controlBundle });
    }
  }
}

async function certText(file: string): Promise<string> {
  const r = await limit(() => run('openssl', ['x509', '-in', file, '-noout', '-text'], { timeoutMs: TIMEOUT }));
  if (r.code !== 0) throw new Error(`openssl x509 -text ${file}: ${r.stderr}`);
  return r.stdout;
}

for (const c of cases) {
  test(`${c.name}: the fixture and its cross-certificate have the intended shape`, async (t) => {
    const chain = need().chains.get(`${c.root.id}/com`)!;
    const [rootText, crossText] = await Promise.all([certText(chain.root), certText(chain.cross)]);
    for (const re of c.shape) t.regex(rootText, re, 'root');
    for (const re of c.notShape ?? []) t.notRegex(rootText, re, 'root');
    for (const re of c.crossShape ?? []) t.regex(crossText, re, "R'");
    t.regex(crossText, /Name Constraints: critical[\s\S]*Excluded:[\s\S]*\bDNS:bit\n/, "R' excludes bit");
  });

  for (const leaf of LEAVES) {
    for (const oracle of ORACLE_IDS.map((id) => ORACLES[id])) {
      const fenced = expectation(c, leaf, oracle, 'fenced');
      const control = expectation(c, leaf, oracle, 'control');
      const flags = [fenced.difference, control.difference].filter((d) => d).map((d) => ` [${d!.side} ${d!.kind}: ${d!.reason}]`);
      const verb = (e: Expectation): string => (e.ok ? 'accepts' : 'refuses');
      const title = `${c.name}: ${oracle.id} ${verb(fenced)} ${leaf.name} through ncfence, ${verb(control)} it under the plain root`;
      test(`${title}${flags.join('')}`, async (t) => {
        const chain = need().chains.get(`${c.root.id}/${leaf.id}`)!;
        const [f, k] = await Promise.all([oracle.verify(chain, 'fenced'), oracle.verify(chain, 'control')]);
        check(t, 'fenced', f, fenced);
        check(t, 'control', k, control);
      });
    }
  }
}
