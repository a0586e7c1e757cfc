// A throwaway "public" PKI for tests, made with the openssl CLI: a root, an
// intermediate, and leaves for the names asked for. P-256 keeps it fast.
// Private keys live only in the temp directory and are removed with it.

import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from './run.js';

export interface Leaf {
  name: string;
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
  /** leaf + intermediate, PEM, as a server sends it. */
  chainPem: string;
}

export interface TestPki {
  dir: string;
  rootFile: string;
  rootPem: string;
  interFile: string;
  interPem: string;
  /** A p11-kit-trust `paths=` directory with the root as an anchor. */
  trustDir: string;
  leaves: Map<string, Leaf>;
  /**
   * A leaf under the intermediate with any subject and extension lines
   * (openssl syntax), as a public CA could issue; `eku` is its
   * extendedKeyUsage (openssl names: serverAuth, emailProtection).
   */
  issueLeaf(base: string, subject: string, extLines: string, eku?: string): Promise<{ certFile: string; keyFile: string }>;
  cleanup(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function issue(dir: string, base: string, subject: string, ext: string, caCert: string, caKey: string, days: number): Promise<void> {
  writeFileSync(join(dir, `${base}.ext`), ext);
  await runOk('openssl', ['req', ...EC, '-keyout', join(dir, `${base}.key`), '-out', join(dir, `${base}.csr`), '-subj', subject]);
  await runOk('openssl', [
    'x509', '-req', '-in', join(dir, `${base}.csr`), '-CA', caCert, '-CAkey', caKey, '-CAcreateserial',
    '-days', String(days), '-sha256', '-extfile', join(dir, `${base}.ext`), '-out', join(dir, `${base}.pem`),
  ]);
}

export async function makeTestPki(names: readonly string[], rootSubject = '/O=ncfence tests/CN=Test Public Root CA'): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-pki-'));
  const started = Date.now();
  const rootFile = join(dir, 'root.pem');
  await runOk('openssl', [
    'req', '-x509', ...EC, '-keyout', join(dir, 'root.key'), '-out', rootFile, '-subj', rootSubject, '-days', '3650', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash',
  ]);
  await issue(
    dir, 'inter', '/O=ncfence tests/CN=Test Public Intermediate CA',
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
    rootFile, join(dir, 'root.key'), 1800,
  );
  const interFile = join(dir, 'inter.pem');
  const interPem = readFileSync(interFile, 'utf8');
  const leaves = new Map<string, Leaf>();
  for (const name of names) {
    const base = `leaf-${name.replace(/[^a-z0-9.-]/gi, '_')}`;
    await issue(
      dir, base, `/CN=${name}`,
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${name}\nauthorityKeyIdentifier=keyid\n`,
      interFile, join(dir, 'inter.key'), 300,
    );
    const certPem = readFileSync(join(dir, `${base}.pem`), 'utf8');
    leaves.set(name, {
      name,
      certPem,
      keyPem: readFileSync(join(dir, `${base}.key`), 'utf8'),
      certFile: join(dir, `${base}.pem`),
      keyFile: join(dir, `${base}.key`),
      chainPem: certPem + interPem,
    });
  }
  const trustDir = join(dir, 'trust');
  mkdirSync(join(trustDir, 'anchors'), { recursive: true });
  writeFileSync(join(trustDir, 'anchors', 'root.pem'), readFileSync(rootFile));
  // R' starts one second after R (crossValidity), so a root made this very
  // second would give a cross-certificate that is not valid yet.
  await new Promise((r) => setTimeout(r, Math.max(0, 2100 - (Date.now() - started))));
  return {
    dir,
    rootFile,
    rootPem: readFileSync(rootFile, 'utf8'),
    interFile,
    interPem,
    trustDir,
    leaves,
    issueLeaf: async (base, subject, extLines, eku = 'serverAuth') => {
      const name = `custom-${base.replace(/[^a-z0-9.-]/gi, '_')}`;
      const ext = `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${eku}\nauthorityKeyIdentifier=keyid\n${extLines ? `${extLines}\n` : ''}`;
      await issue(dir, name, subject, ext, interFile, join(dir, 'inter.key'), 300);
      return { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
