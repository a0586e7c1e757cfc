// A Namecoin-style site chain as Namecoin's tools make it (NOTES.md): the
// domain owner's key (whose SubjectPublicKeyInfo goes into the name's TLS
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
  cleanup(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const SERIAL = 'Namecoin TLS Certificate';

export async function makeNamecoinSite(domain: string, host = `www.${domain}`): Promise<NamecoinSite> {
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-nmc-'));
  const f = (n: string): string => join(dir, n);
  // The AIA parent exists here only to sign the Domain CA (the client synthesizes its own).
  await runOk('openssl', [
    'req', '-x509', ...EC, '-keyout', f('owner.key'), '-out', f('aia.pem'), '-days', '30', '-sha256',
    '-subj', `/CN=${domain} Domain AIA Parent CA/serialNumber=${SERIAL}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash',
  ]);
  writeFileSync(f('domainca.ext'), `basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nnameConstraints=critical,permitted;DNS:${domain}\n`);
  await runOk('openssl', ['req', ...EC, '-keyout', f('domainca.key'), '-out', f('domainca.csr'), '-subj', `/CN=${domain} Domain CA/serialNumber=${SERIAL}`]);
  await runOk('openssl', ['x509', '-req', '-in', f('domainca.csr'), '-CA', f('aia.pem'), '-CAkey', f('owner.key'), '-CAcreateserial', '-days', '30', '-sha256', '-extfile', f('domainca.ext'), '-out', f('domainca.pem')]);
  writeFileSync(f('leaf.ext'), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${host}\nauthorityKeyIdentifier=keyid\n`);
  await runOk('openssl', ['req', ...EC, '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', `/CN=${host}`]);
  await runOk('openssl', ['x509', '-req', '-in', f('leaf.csr'), '-CA', f('domainca.pem'), '-CAkey', f('domainca.key'), '-CAcreateserial', '-days', '20', '-sha256', '-extfile', f('leaf.ext'), '-out', f('leaf.pem')]);
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
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
