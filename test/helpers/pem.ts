// DER <-> PEM for certificates in tests, and a view's fenced chain as PEM.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUDIENCE, CKA, CKO } from '../../src/pkcs11/constants.js';
import { isAnchor, ulongValue } from '../../src/pkcs11/objects.js';
import { decodeView } from '../../src/view/format.js';

export const toPem = (der: Uint8Array): string =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;

export const fromPem = (pem: string): Uint8Array => new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));

/**
 * Writes the fenced chain of a view holding one fenced root as PEM files in
 * `dir`: L(R), the anchor (anchor.pem), and R' issued by it (cross.pem). With
 * two forms of R' (rules/p11-kit.json), the plain one, which a GnuTLS or
 * OpenSSL process gets; the NSS form differs only by its IP exclusions.
 */
export function writeFencedChain(viewFile: string, dir: string): { anchorFile: string; crossFile: string } {
  const objects = decodeView(readFileSync(viewFile)).objects.map((o) => o.attrs);
  const has = (attrs: (typeof objects)[number], type: number, test: (v: Uint8Array) => boolean): boolean => attrs.some(([t, v]) => t === type && test(v));
  const anchor = objects.find(isAnchor)!;
  const cross = objects.find(
    (a) =>
      a !== anchor &&
      has(a, CKA.CLASS, (v) => ulongValue(v) === CKO.CERTIFICATE) &&
      has(a, CKA.TRUSTED, (v) => v[0] === 1) &&
      !has(a, CKA.NCFENCE_AUDIENCE, (v) => ulongValue(v) === AUDIENCE.NSS_FORM),
  )!;
  const value = (a: (typeof objects)[number]): Uint8Array => a.find(([t]) => t === CKA.VALUE)![1];
  const anchorFile = join(dir, 'anchor.pem');
  const crossFile = join(dir, 'cross.pem');
  writeFileSync(anchorFile, toPem(value(anchor)));
  writeFileSync(crossFile, toPem(value(cross)));
  return { anchorFile, crossFile };
}
