// Synthetic "public" roots of several shapes (key types, extensions, X.509
// version), each with one intermediate and a set of leaves, made with the
// openssl CLI in one temp dir. All roots go into one p11-kit-trust `paths=`
// directory as anchors. Private keys live only in the temp dir, which
// cleanup() removes.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromPem } from './pem.js';
import { runOk } from './run.js';

export type KeySpec = 'rsa2048' | 'rsa4096' | 'p256' | 'p384' | 'rsa-pss';

export interface RootSpec {
  /** File-name-safe id, unique among roots. */
  id: string;
  /** openssl -subj form; unique among roots. */
  subject: string;
  key: KeySpec;
  /** openssl -extfile text for the self-signed root; null makes a version-1 certificate (no extensions). */
  extensions: string | null;
}

export interface LeafSpec {
  /** File-name-safe id, unique among leaves. */
  id: string;
  subject: string;
  /** openssl -extfile text, the same under every root. */
  extensions: string;
}

export interface SyntheticRoot {
  spec: RootSpec;
  rootFile: string;
  rootDer: Uint8Array;
  interFile: string;
  /** Leaf certificate file by LeafSpec id. */
  leafFiles: Map<string, string>;
}

export interface SyntheticPki {
  dir: string;
  /** A p11-kit-trust `paths=` directory with every root under anchors/. */
  trustDir: string;
  roots: Map<string, SyntheticRoot>;
  /** Date.now() once the last root was signed (R' starts one second after R). */
  rootsDoneAt: number;
  cleanup(): void;
}

/** Runs at most `n` jobs at a time; the others wait their turn. */
export function limiter(n: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(job: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await job();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

// Just enough DER to find fields of a Certificate (definite lengths only):
//   Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
//   TBSCertificate ::= SEQUENCE { version [0] EXPLICIT OPTIONAL, serialNumber, signature,
//                                 issuer, validity, subject, subjectPublicKeyInfo, ... }
//   SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }
interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  head: number;
  /** Offset of the contents. */
  start: number;
  end: number;
}

function readTlv(der: Uint8Array, off: number): Tlv {
  const tag = der[off]!;
  let len = der[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error('truncated DER');
  return { tag, head: off, start, end: start + len };
}

function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = parent.start; off < parent.end; off = out[out.length - 1]!.end) out.push(readTlv(der, off));
  return out;
}

function tbsFields(der: Uint8Array): Tlv[] {
  const tbs = childrenOf(der, readTlv(der, 0))[0]!;
  const fields = childrenOf(der, tbs);
  return fields[0]!.tag === 0xa0 ? fields.slice(1) : fields;
}

/** The subject Name's DER, byte for byte as in the certificate. */
export function subjectOf(der: Uint8Array): Uint8Array {
  const f = tbsFields(der)[4]!;
  return der.slice(f.head, f.end);
}

/** Key identifier by RFC 5280 4.2.1.2 method 1 (what openssl's subjectKeyIdentifier=hash gives). */
export function keyIdOf(der: Uint8Array): Uint8Array {
  const spki = tbsFields(der)[5]!;
  const bits = childrenOf(der, spki)[1]!;
  return new Uint8Array(createHash('sha1').update(der.subarray(bits.start + 1, bits.end)).digest());
}

const GENPKEY: Record<KeySpec, string[]> = {
  rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  rsa4096: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4096'],
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  'rsa-pss': ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048'],
};

/** Digest and signature options for certificates a key of this kind signs. */
const SIGN: Record<KeySpec, string[]> = {
  rsa2048: ['-sha256'],
  rsa4096: ['-sha256'],
  p256: ['-sha256'],
  p384: ['-sha384'],
  'rsa-pss': ['-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-sigopt', 'rsa_mgf1_md:sha256'],
};

const INTER_EXT = 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';

/**
 * Makes every root (in parallel, at most `concurrency` openssl processes),
 * then one intermediate per root and every leaf under each intermediate.
 * Intermediates and leaves share one P-256 key; each root signs its
 * intermediate with its own key and algorithm.
 */
export async function makeSyntheticPki(roots: readonly RootSpec[], leaves: readonly LeafSpec[], concurrency = 4): Promise<SyntheticPki> {
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-synth-'));
  const limit = limiter(concurrency);
  const file = (name: string): string => join(dir, name);
  const openssl = (args: string[]): Promise<unknown> => limit(() => runOk('openssl', args, { timeoutMs: 60_000 }));
  try {
    await openssl(['genpkey', ...GENPKEY.p256, '-out', file('ee.key')]);
    for (const l of leaves) writeFileSync(file(`leaf-${l.id}.ext`), l.extensions);
    await Promise.all(leaves.map((l) => openssl(['req', '-new', '-key', file('ee.key'), '-subj', l.subject, '-out', file(`leaf-${l.id}.csr`)])));
    const made = await Promise.all(roots.map((spec) => makeRoot(spec)));
    const rootsDoneAt = Date.now();
    await Promise.all(made.map((r) => makeChain(r)));
    const trustDir = file('trust');
    mkdirSync(join(trustDir, 'anchors'), { recursive: true });
    for (const r of made) writeFileSync(join(trustDir, 'anchors', `${r.spec.id}.pem`), readFileSync(r.rootFile));
    return { dir, trustDir, roots: new Map(made.map((r) => [r.spec.id, r])), rootsDoneAt, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  // x509 -req -signkey writes only the -extfile extensions, and with no
  // -extfile a version-1 certificate; req -x509 would add the config's v3_ca set.
  async function makeRoot(spec: RootSpec): Promise<SyntheticRoot> {
    const base = `root-${spec.id}`;
    await openssl(['genpkey', ...GENPKEY[spec.key], '-out', file(`${base}.key`)]);
    await openssl(['req', '-new', '-key', file(`${base}.key`), '-subj', spec.subject, '-out', file(`${base}.csr`)]);
    const ext: string[] = [];
    if (spec.extensions !== null) {
      writeFileSync(file(`${base}.ext`), spec.extensions);
      ext.push('-extfile', file(`${base}.ext`));
    }
    await openssl([
      'x509', '-req', '-in', file(`${base}.csr`), '-signkey', file(`${base}.key`), '-days', '3650', '-set_serial', '1',
      ...SIGN[spec.key], ...ext, '-out', file(`${base}.pem`),
    ]);
    const rootDer = fromPem(readFileSync(file(`${base}.pem`), 'utf8'));
    return { spec, rootFile: file(`${base}.pem`), rootDer, interFile: file(`inter-${spec.id}.pem`), leafFiles: new Map() };
  }

  async function makeChain(r: SyntheticRoot): Promise<void> {
    const { id, key } = r.spec;
    // openssl 3.0 cannot take authorityKeyIdentifier=keyid from an issuer
    // without subjectKeyIdentifier (a v1 root), so the AKI is given as DER:
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OCTET STRING }.
    const keyId = Buffer.from(keyIdOf(r.rootDer));
    const aki = Buffer.concat([Buffer.from([0x30, keyId.length + 2, 0x80, keyId.length]), keyId]).toString('hex').replace(/..(?!$)/g, '$&:');
    writeFileSync(file(`inter-${id}.ext`), `${INTER_EXT}authorityKeyIdentifier=DER:${aki}\n`);
    await openssl(['req', '-new', '-key', file('ee.key'), '-subj', `/O=ncfence tests/CN=Synthetic Intermediate CA ${id}`, '-out', file(`inter-${id}.csr`)]);
    await openssl([
      'x509', '-req', '-in', file(`inter-${id}.csr`), '-CA', r.rootFile, '-CAkey', file(`root-${id}.key`), '-set_serial', '2',
      '-days', '1800', ...SIGN[key], '-extfile', file(`inter-${id}.ext`), '-out', r.interFile,
    ]);
    await Promise.all(
      leaves.map(async (l, i) => {
        const out = file(`leaf-${id}-${l.id}.pem`);
        await openssl([
          'x509', '-req', '-in', file(`leaf-${l.id}.csr`), '-CA', r.interFile, '-CAkey', file('ee.key'), '-set_serial', String(100 + i),
          '-days', '300', '-sha256', '-extfile', file(`leaf-${l.id}.ext`), '-out', out,
        ]);
        r.leafFiles.set(l.id, out);
      }),
    );
  }
}
