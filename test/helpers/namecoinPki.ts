// A Namecoin-style site chain as Namecoin's tools make it (namecoin/ncgencert
// main.go and aiaparent.go): the domain owner's key (whose SubjectPublicKeyInfo goes into the name's TLS
// record) signs "<domain> Domain CA", which signs the leaf; the server sends
// leaf + Domain CA. Made with the openssl CLI; keys stay in the temp dir.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from './run.js';
import { fromPem } from './pem.js';

export interface NamecoinSite {
  dir: string;
  domain: string;
  /** The owner's SubjectPublicKeyInfo, base64 (what the TLS record carries). */
  ownerSpkiB64: string;
  leafFile: string;
  keyFile: string;
  domainCaFile: string;
  chainPem: string;
  keyPem: string;
  /**
   * Issues another leaf under this site's Domain CA (the owner can issue
   * anything there): `subject` in openssl's /A=b form, `ext` extension lines
   * in openssl's config syntax. Returns the leaf's and its key's files.
   */
  issueLeaf(base: string, subject: string, ext: string): Promise<{ certFile: string; keyFile: string }>;
  cleanup(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const SERIAL = 'Namecoin TLS Certificate';

export interface SiteOptions {
  /** The Domain CA's nameConstraints line; null for none (an owner may make any Domain CA it likes). */
  domainCaConstraints?: string | null;
}

export async function makeNamecoinSite(domain: string, host = `www.${domain}`, opts: SiteOptions = {}): Promise<NamecoinSite> {
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-nmc-'));
  const f = (n: string): string => join(dir, n);
  // The AIA parent exists here only to sign the Domain CA (the client synthesizes its own).
  await runOk('openssl', [
    'req', '-x509', ...EC, '-keyout', f('owner.key'), '-out', f('aia.pem'), '-days', '30', '-sha256',
    '-subj', `/CN=${domain} Domain AIA Parent CA/serialNumber=${SERIAL}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash',
  ]);
  const constraints = opts.domainCaConstraints === undefined ? `critical,permitted;DNS:${domain}` : opts.domainCaConstraints;
  writeFileSync(f('domainca.ext'), `basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n${constraints === null ? '' : `nameConstraints=${constraints}\n`}`);
  await runOk('openssl', ['req', ...EC, '-keyout', f('domainca.key'), '-out', f('domainca.csr'), '-subj', `/CN=${domain} Domain CA/serialNumber=${SERIAL}`]);
  await runOk('openssl', ['x509', '-req', '-in', f('domainca.csr'), '-CA', f('aia.pem'), '-CAkey', f('owner.key'), '-CAcreateserial', '-days', '30', '-sha256', '-extfile', f('domainca.ext'), '-out', f('domainca.pem')]);
  const issueLeaf = async (base: string, subject: string, ext: string): Promise<{ certFile: string; keyFile: string }> => {
    writeFileSync(f(`${base}.ext`), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n${ext}\n`);
    await runOk('openssl', ['req', ...EC, '-keyout', f(`${base}.key`), '-out', f(`${base}.csr`), '-subj', subject]);
    await runOk('openssl', ['x509', '-req', '-in', f(`${base}.csr`), '-CA', f('domainca.pem'), '-CAkey', f('domainca.key'), '-CAcreateserial', '-days', '20', '-sha256', '-extfile', f(`${base}.ext`), '-out', f(`${base}.pem`)]);
    return { certFile: f(`${base}.pem`), keyFile: f(`${base}.key`) };
  };
  await issueLeaf('leaf', `/CN=${host}`, `subjectAltName=DNS:${host}`);
  await runOk('openssl', ['pkey', '-in', f('owner.key'), '-pubout', '-out', f('owner.pub.pem')]);
  const ownerSpkiB64 = Buffer.from(fromPem(readFileSync(f('owner.pub.pem'), 'utf8'))).toString('base64');
  return {
    dir,
    domain,
    ownerSpkiB64,
    leafFile: f('leaf.pem'),
    keyFile: f('leaf.key'),
    domainCaFile: f('domainca.pem'),
    chainPem: readFileSync(f('leaf.pem'), 'utf8') + readFileSync(f('domainca.pem'), 'utf8'),
    keyPem: readFileSync(f('leaf.key'), 'utf8'),
    issueLeaf,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
