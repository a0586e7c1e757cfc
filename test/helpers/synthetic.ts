// Synthetic "public" roots of several shapes (key types, extensions, X.509
// version), each with one intermediate and a set of leaves, made with the
// openssl CLI in one temp dir. All roots go into one p11-kit-trust
// `paths=` directory as anchors. Private keys live only in the temp dir.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from './run.js';

export type KeySpec = 'rsa2048' | 'rsa4096' | 'p256' | 'p384' | 'rsa-pss';

export interface RootSpec {
  /** File-name-safe id, unique among roots. */
  id: string;
  subject: string;
  key: KeySpec;
  /** openssl -extfile text for the self-signed root; null makes a version-1 certificate (no extensions). */
  extensions: string | null;
}

export interface LeafSpec {
  /** File-name-safe id, unique among leaves. */
  id: string;
  subject: string;
  /** openssl -extfile text; the same for every root. */
  extensions: string;
}

export interface SyntheticRoot {
  spec: RootSpec;
  rootFile: string;
  interFile: string;
  /** Leaf certificate file by LeafSpec id. */
  leafFiles: Map<string, string>;
}

export interface SyntheticPki {
  dir: string;
  /** A p11-kit-trust `paths=` directory with every root under anchors/. */
  trustDir: string;
  roots: Map<string, SyntheticRoot>;
  /** Date.now() right after the last root was signed. */
  rootsDoneAt: number;
  cleanup(): void;
}

/** Runs at most `n` jobs at a time; the rest wait in order. */
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

export async function makeSyntheticPki(roots: readonly RootSpec[], leaves: readonly LeafSpec[], concurrency = 4): Promise<SyntheticPki> {
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-synth-'));
  const limit = limiter(concurrency);
  const file = (name: string): string => join(dir, name);
  const openssl = (args: string[]): Promise<unknown> => limit(() => runOk('openssl', args, { timeoutMs: 60_000 }));
  try {
    // Every intermediate and leaf shares one P-256 key: only the issuing root differs.
    await openssl(['genpkey', ...GENPKEY.p256, '-out', file('ee.key')]);
    await Promise.all(leaves.map((l) => openssl(['req', '-new', '-key', file('ee.key'), '-subj', l.subject, '-out', file(`leaf-${l.id}.csr`)])));
    for (const l of leaves) writeFileSync(file(`leaf-${l.id}.ext`), l.extensions);

    const made = await Promise.all(roots.map((spec) => makeRoot(spec)));
    const rootsDoneAt = Date.now();
    await Promise.all(made.map((r) => makeChain(r)));

    const trustDir = file('trust');
    mkdirSync(join(trustDir, 'anchors'), { recursive: true });
    for (const r of made) writeFileSync(join(trustDir, 'anchors', `${r.spec.id}.pem`), readFileSync(r.rootFile));
    return {
      dir,
      trustDir,
      roots: new Map(made.map((r) => [r.spec.id, r])),
      rootsDoneAt,
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  // x509 -req -signkey writes only the -extfile extensions, and none (a v1
  // certificate) without it; req -x509 would add the config's v3_ca set.
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
      'x509', '-req', '-in', file(`${base}.csr`), '-signkey', file(`${base}.key`), '-days', '3650',
      ...SIGN[spec.key], ...ext, '-set_serial', '1', '-out', file(`${base}.pem`),
    ]);
    return { spec, rootFile: file(`${base}.pem`), interFile: file(`inter-${spec.id}.pem`), leafFiles: new Map() };
  }

  async function makeChain(r: SyntheticRoot): Promise<void> {
    const { id, key } = r.spec;
    // A v1 root has no subjectKeyIdentifier to point at.
    const akiLine = r.spec.extensions === null ? '' : 'authorityKeyIdentifier=keyid\n';
    writeFileSync(file(`inter-${id}.ext`), INTER_EXT + akiLine);
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
