// The built module's ABI surface and its object view, read through pkcs11js.

import test from 'ava';
import pkcs11js from 'pkcs11js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { CKA, CKO, CKT } from '../../src/pkcs11/constants.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { MODULE, P11KIT_TRUST } from '../helpers/paths.js';
import { runOk } from '../helpers/run.js';

let pki: TestPki;
let dir: string;
test.before(async () => {
  pki = await makeTestPki([]);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-module-'));
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the module exports C_GetFunctionList and nothing else', async (t) => {
  const r = await runOk('nm', ['-D', '--defined-only', MODULE]);
  const symbols = r.stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/).pop());
  t.deepEqual(symbols, ['C_GetFunctionList']);
});

test.serial('through ncfence, the only trust record that trusts anything is the local anchor\'s', async (t) => {
  const r = await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'out') });
  process.env.NCFENCE_CONFIG = r.config;
  const p = new pkcs11js.PKCS11();
  p.load(MODULE);
  p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  try {
    const [slot] = p.C_GetSlotList(true);
    const s = p.C_OpenSession(slot!, pkcs11js.CKF_SERIAL_SESSION);
    const find = (template: pkcs11js.Template): Buffer[] => {
      p.C_FindObjectsInit(s, template);
      const out: Buffer[] = [];
      // Page size 1 exercises paging through the snapshot.
      for (let page = p.C_FindObjects(s, 1); page.length; page = p.C_FindObjects(s, 1)) out.push(...page);
      p.C_FindObjectsFinal(s);
      return out;
    };
    const ulong = (b: Buffer | undefined): number => Number(b!.readBigUInt64LE(0));
    const trusts = find([{ type: CKA.CLASS, value: Buffer.from(new BigUint64Array([BigInt(CKO.NSS_TRUST)]).buffer) }]);
    t.is(trusts.length, 1);
    const [tr] = p.C_GetAttributeValue(s, trusts[0]!, [{ type: CKA.TRUST_SERVER_AUTH }]);
    t.is(ulong(tr!.value), CKT.NSS_TRUSTED_DELEGATOR);
    const certs = find([{ type: CKA.CLASS, value: Buffer.from(new BigUint64Array([1n]).buffer) }]);
    t.is(certs.length, 3, 'R (untrusted), R\' and L(R)');
    const trusted = certs.filter((h) => p.C_GetAttributeValue(s, h, [{ type: CKA.TRUSTED }])[0]!.value![0] === 1);
    t.is(trusted.length, 2, 'R\' and L(R) are CKA_TRUSTED for p11-kit consumers; R is not');
    // Size queries and too-small buffers follow the spec on view objects.
    const [sized] = p.C_GetAttributeValue(s, trusted[0]!, [{ type: CKA.VALUE }]);
    t.true(sized!.value!.length > 100);
    p.C_CloseSession(s);
  } finally {
    p.C_Finalize();
    p.close();
    delete process.env.NCFENCE_CONFIG;
  }
});
