// Regenerates the fuzzers' seed corpus (committed under test/fuzz/corpus/).
// Run: node --import tsx test/fuzz/make-seeds.ts

import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeView } from '../../src/view/format.js';
import { boolBytes, ulongBytes } from '../../src/pkcs11/objects.js';
import { AUDIENCE, CKA, CKO, CKT } from '../../src/pkcs11/constants.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const der = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x07);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

const views = {
  empty: encodeView({ stamp: '', policyDigest: new Uint8Array(32), objects: [] }),
  'two-objects': encodeView({
    stamp: 'ncfence-stamp-v1\nlib=/x\nsize=1\nmtime=0.000000000\nparams=',
    policyDigest: new Uint8Array(32).fill(7),
    objects: [
      { slot: 1, attrs: [[CKA.CLASS, ulongBytes(CKO.CERTIFICATE)], [CKA.TOKEN, boolBytes(true)], [CKA.LABEL, text('anchor')], [CKA.VALUE, der], [CKA.ID, new Uint8Array(0)]] },
      { slot: 1, attrs: [[CKA.CLASS, ulongBytes(CKO.NSS_TRUST)], [CKA.ISSUER, der], [CKA.TRUST_SERVER_AUTH, ulongBytes(CKT.NSS_TRUSTED_DELEGATOR)]] },
    ],
  }),
  // Two forms of R' (rules/p11-kit.json): one for processes that may hold NSS, one for the others.
  'two-forms': encodeView({
    stamp: 'ncfence-stamp-v2\nlib=/x\nsize=1\nmtime=0.000000000\nparams=',
    policyDigest: new Uint8Array(32).fill(5),
    objects: [
      { slot: 1, attrs: [[CKA.CLASS, ulongBytes(CKO.CERTIFICATE)], [CKA.SUBJECT, der], [CKA.VALUE, der], [CKA.NCFENCE_AUDIENCE, ulongBytes(AUDIENCE.PLAIN_FORM)]] },
      { slot: 1, attrs: [[CKA.CLASS, ulongBytes(CKO.CERTIFICATE)], [CKA.SUBJECT, der], [CKA.NCFENCE_AUDIENCE, ulongBytes(AUDIENCE.NSS_FORM)], [CKA.VALUE, der]] },
    ],
  }),
  // A browser view: the browser's own token recorded beside the view's objects.
  snapshot: encodeView({
    stamp: 'ncfence-stamp-v2\nlib=/x/libxul.so\nsize=1\nmtime=0.000000000\nparams=',
    policyDigest: new Uint8Array(32).fill(3),
    objects: [{ slot: 1, attrs: [[CKA.CLASS, ulongBytes(CKO.CERTIFICATE)], [CKA.VALUE, der]] }],
    snapshot: {
      info: new Uint8Array(88).fill(0x20),
      slot: 1,
      slotInfo: new Uint8Array(112).fill(0x20),
      tokenInfo: new Uint8Array(208).fill(0x20),
      objects: [
        { slot: 1, attrs: [[CKA.CLASS, ulongBytes(CKO.CERTIFICATE)], [CKA.SUBJECT, der], [CKA.VALUE, der]] },
        { slot: 1, attrs: [[CKA.CLASS, ulongBytes(CKO.TRUST)], [CKA.ISSUER, der], [CKA.PKCS_TRUST_SERVER_AUTH, ulongBytes(CKT.TRUST_ANCHOR)]] },
      ],
    },
  }),
};
mkdirSync(`${here}corpus/view`, { recursive: true });
for (const [name, bytes] of Object.entries(views)) writeFileSync(`${here}corpus/view/${name}`, bytes.subarray(24));

// template records: type u32, len u16, flags u8, value
function record(type: number, value: Uint8Array, flags: number, len = value.length): Uint8Array {
  const b = Buffer.alloc(7 + value.length);
  b.writeUInt32LE(type >>> 0, 0);
  b.writeUInt16LE(len, 4);
  b.writeUInt8(flags, 6);
  Buffer.from(value).copy(b, 7);
  return new Uint8Array(b);
}
mkdirSync(`${here}corpus/template`, { recursive: true });
const seeds = {
  'class-match': record(CKA.CLASS, ulongBytes(CKO.CERTIFICATE), 0),
  'size-query': record(CKA.VALUE, new Uint8Array(0), 1, 0),
  'too-small': record(CKA.VALUE, new Uint8Array(2), 0),
  'unknown-type': Buffer.concat([record(0x7fff0001, new Uint8Array(4), 0), record(CKA.LABEL, text('ncfence anchor'), 0)]),
};
for (const [name, bytes] of Object.entries(seeds)) writeFileSync(`${here}corpus/template/${name}`, bytes);

// live: a piece size (1 + first byte % 64), then a whole response frame as it comes off the socket
import { encodeResponse } from '../../src/service/protocol.js';
mkdirSync(`${here}corpus/live`, { recursive: true });
const live = {
  'not-found': encodeResponse({ status: 1, ttl: 60, objects: [] }),
  'one-cert': encodeResponse({
    status: 0,
    ttl: 600,
    objects: [[[CKA.CLASS, ulongBytes(CKO.CERTIFICATE)], [CKA.SUBJECT, der], [CKA.VALUE, der], [CKA.TRUSTED, boolBytes(false)]]],
  }),
};
for (const [name, bytes] of Object.entries(live)) {
  writeFileSync(`${here}corpus/live/${name}`, Buffer.concat([Uint8Array.of(63), bytes]));
  writeFileSync(`${here}corpus/live/${name}-bytewise`, Buffer.concat([Uint8Array.of(0), bytes]));
}
