// A known limitation, shown (docs/security-model.md): an intermediate whose
// Authority Key Identifier names its issuer by name and serial number
// (authorityCertIssuer + authorityCertSerialNumber, no keyIdentifier) matches
// only R itself in NSS's classic verifier (lib/pki/certificate.c
// filter_subject_certs_for_id), never the cross-certificate R', so the chain
// fails there through ncfence; libpkix builds it through R' and accepts it.
// The same chain with a keyIdentifier AKI (what public CAs use) verifies in
// both: the control.

import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { makeNssDb, vfychain } from '../helpers/nss.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';
import { runOk } from '../helpers/run.js';

let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-aki-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function issue(base: string, subject: string, ext: string, ca: string): Promise<void> {
  writeFileSync(join(dir, `${base}.ext`), ext);
  await runOk('openssl', ['req', ...EC, '-keyout', join(dir, `${base}.key`), '-out', join(dir, `${base}.csr`), '-subj', subject]);
  await runOk('openssl', ['x509', '-req', '-in', join(dir, `${base}.csr`), '-CA', join(dir, `${ca}.pem`), '-CAkey', join(dir, `${ca}.key`), '-CAcreateserial', '-days', '300', '-sha256', '-extfile', join(dir, `${base}.ext`), '-out', join(dir, `${base}.pem`)]);
}

test('an intermediate whose AKI names issuer and serial: NSS classic fails through ncfence, libpkix verifies; a keyIdentifier AKI verifies in both', async (t) => {
  await runOk('openssl', ['req', '-x509', ...EC, '-keyout', join(dir, 'root.key'), '-out', join(dir, 'root.pem'), '-subj', '/O=ncfence tests/CN=AKI Root', '-days', '3650', '-sha256', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash']);
  const caExt = (aki: string) => `basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=${aki}\n`;
  const leafExt = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:www.example.com\n';
  await issue('inter-serial', '/O=ncfence tests/CN=AKI Intermediate by issuer and serial', caExt('issuer:always'), 'root');
  await issue('inter-keyid', '/O=ncfence tests/CN=AKI Intermediate by key id', caExt('keyid:always'), 'root');
  await issue('leaf-serial', '/CN=www.example.com', leafExt, 'inter-serial');
  await issue('leaf-keyid', '/CN=www.example.com', leafExt, 'inter-keyid');
  const trust = join(dir, 'trust');
  await runOk('mkdir', ['-p', join(trust, 'anchors')]);
  await runOk('cp', [join(dir, 'root.pem'), join(trust, 'anchors', 'root.pem')]);
  await new Promise((r) => setTimeout(r, 2100)); // R' starts one second after R (crossValidity)
  const { config } = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${trust}`, outDir: join(dir, 'out') });
  const env = { ...process.env, NCFENCE_CONFIG: config };
  const db = await makeNssDb(join(dir, 'db'), 'ncfence', MODULE, '', env);
  const check = async (kind: string, pkix: boolean) => vfychain(db, join(dir, `leaf-${kind}.pem`), join(dir, `inter-${kind}.pem`), pkix, env);
  const classicSerial = await check('serial', false);
  t.false(classicSerial.ok, `NSS classic accepted the issuer+serial AKI chain: the limitation is gone; update docs/security-model.md\n${classicSerial.output}`);
  t.true((await check('serial', true)).ok, 'libpkix builds the issuer+serial AKI chain through R\'');
  t.true((await check('keyid', false)).ok, 'control: NSS classic with a keyIdentifier AKI');
  t.true((await check('keyid', true)).ok, 'control: libpkix with a keyIdentifier AKI');
});
