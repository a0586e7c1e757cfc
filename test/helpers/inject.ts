// Objects the test shim (test/fixtures/upstream-shim.c) adds to its upstream.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { boolBytes, ulongBytes } from '../../src/pkcs11/objects.js';
import { CKA, CKM_SHA256, CKO, CKT } from '../../src/pkcs11/constants.js';
import type { ParsedCertificate } from '../../src/engine/asn1/certificate.js';

/** The shim's injection file: u32 count, then objects of u32 nattrs + (u32 type, u32 len, bytes). */
export function injectionFile(file: string, objects: [number, Uint8Array][][]): string {
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

/**
 * A PKCS#11 3.2 trust object (CKO_TRUST) making `cert` a server-auth trust
 * anchor, the way NSS 3.114+ and Firefox's builtins describe roots.
 */
export function pkcsAnchorRecord(cert: ParsedCertificate, label: string): [number, Uint8Array][] {
  return [
    [CKA.CLASS, ulongBytes(CKO.TRUST)],
    [CKA.TOKEN, boolBytes(true)],
    [CKA.PRIVATE, boolBytes(false)],
    [CKA.MODIFIABLE, boolBytes(false)],
    [CKA.LABEL, Buffer.from(label)],
    [CKA.ISSUER, cert.issuer],
    [CKA.SERIAL_NUMBER, cert.serial],
    [CKA.HASH_OF_CERTIFICATE, new Uint8Array(createHash('sha256').update(cert.der).digest())],
    [CKA.NAME_HASH_ALGORITHM, ulongBytes(CKM_SHA256)],
    [CKA.PKCS_TRUST_SERVER_AUTH, ulongBytes(CKT.TRUST_ANCHOR)],
    [CKA.PKCS_TRUST_CLIENT_AUTH, ulongBytes(CKT.TRUST_MUST_VERIFY_TRUST)],
    [CKA.PKCS_TRUST_EMAIL_PROTECTION, ulongBytes(CKT.TRUST_ANCHOR)],
    [CKA.PKCS_TRUST_CODE_SIGNING, ulongBytes(CKT.TRUST_MUST_VERIFY_TRUST)],
  ];
}
