// What the module (C) and the engine and service (TypeScript) must agree on.
//
// The trust rule has one implementation, addon/trust.c: the module applies
// it to upstream's objects as it reads them (classify.c asks upstream for
// the attributes the rule needs), and the build calls it through the Node
// binding (grantsTrust). Hundreds of generated upstream objects of every
// shape, served by the test shim, must be hidden by the module exactly when
// the build says they grant trust; so a change to either side (what the
// module asks upstream, how the binding passes an object on) fails here.
//
// The bounds on the view file and on the service's answers are constants in
// each language (addon/nf.h; src/view/format.ts, src/service/protocol.ts):
// the module must accept everything the engine or the service may write.

import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { grantsTrust } from '../../src/compile/plan.js';
import { readUpstream } from '../../src/compile/upstream.js';
import { CKA, CKO, CKT } from '../../src/pkcs11/constants.js';
import { VIEW_LIMITS } from '../../src/view/format.js';
import * as wire from '../../src/service/protocol.js';
import { injectionFile } from '../helpers/inject.js';
import { withEnv } from '../helpers/env.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { MODULE, P11KIT_TRUST, ROOT, UPSTREAM_SHIM } from '../helpers/paths.js';
import { requireTool, runOk } from '../helpers/run.js';
import { prng } from '../helpers/ports.js';

let pki: TestPki;
let dir: string;
test.before(async () => {
  pki = await makeTestPki(['www.example.com']);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-mirrors-'));
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Attrs = [number, Uint8Array][];

const ulong = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
};
const range = (first: number, last: number): number[] => Array.from({ length: last - first + 1 }, (_, i) => first + i);
const NSS_PURPOSES = range(CKA.TRUST_DIGITAL_SIGNATURE, CKA.TRUST_TIME_STAMPING);
const PKCS_PURPOSES = range(CKA.PKCS_TRUST_SERVER_AUTH, CKA.PKCS_TRUST_OCSP_SIGNING);
const NSS_VALUES = [CKT.NSS_NOT_TRUSTED, CKT.NSS_MUST_VERIFY_TRUST, CKT.NSS_TRUST_UNKNOWN, CKT.NSS_VALID_DELEGATOR, CKT.NSS_TRUSTED_DELEGATOR, CKT.NSS_TRUSTED];
const PKCS_VALUES = [CKT.TRUST_UNKNOWN, CKT.NOT_TRUSTED, CKT.TRUST_MUST_VERIFY_TRUST, CKT.TRUSTED, CKT.TRUST_ANCHOR];
const ASSERTIONS = [CKT.X_DISTRUSTED_CERTIFICATE, CKT.X_ANCHORED_CERTIFICATE, CKT.X_PINNED_CERTIFICATE];

/**
 * One upstream object: a class, then trust attributes of that class's kind
 * with well-formed, other and malformed values. (Trust attributes of another
 * kind on a class that ignores them are left out: reading them back trips
 * the module's check of every answer, which is stricter by design.)
 */
function generate(rnd: () => number, label: string): Attrs {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const value = (values: readonly number[]): Uint8Array =>
    rnd() < 0.15 ? pick([ulong(pick(values)).subarray(0, 4), new Uint8Array(9), new Uint8Array(0)]) : ulong(rnd() < 0.1 ? Math.floor(rnd() * 2 ** 32) : pick(values));
  const attrs: Attrs = [
    [CKA.TOKEN, Uint8Array.of(1)],
    [CKA.LABEL, new TextEncoder().encode(label)],
  ];
  const cls = pick([CKO.CERTIFICATE, CKO.NSS_TRUST, CKO.X_TRUST_ASSERTION, CKO.TRUST, CKO.NSS_BUILTIN_ROOT_LIST, 0 /* data */, 0x0c, 0x7f000001]);
  const shape = rnd();
  if (shape < 0.04) return attrs; // no class at all
  attrs.push([CKA.CLASS, shape < 0.08 ? ulong(cls).subarray(0, 4) : ulong(cls)]);
  switch (cls) {
    case CKO.CERTIFICATE:
      if (rnd() < 0.7) attrs.push([CKA.TRUSTED, pick([Uint8Array.of(0), Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(0, 0), new Uint8Array(0)])]);
      break;
    case CKO.NSS_TRUST:
      for (const p of NSS_PURPOSES) if (rnd() < 0.3) attrs.push([p, value(NSS_VALUES)]);
      if (rnd() < 0.3) attrs.push([CKA.TRUST_STEP_UP_APPROVED, Uint8Array.of(pick([0, 1]))]);
      break;
    case CKO.X_TRUST_ASSERTION:
      if (rnd() < 0.9) attrs.push([CKA.X_ASSERTION_TYPE, value(ASSERTIONS)]);
      break;
    case CKO.TRUST:
      for (const p of PKCS_PURPOSES) if (rnd() < 0.4) attrs.push([p, value(PKCS_VALUES)]);
      break;
    default:
      if (rnd() < 0.5) attrs.push([pick([...NSS_PURPOSES, ...PKCS_PURPOSES, CKA.TRUSTED, CKA.X_ASSERTION_TYPE, CKA.TRUST_STEP_UP_APPROVED]), ulong(pick(NSS_VALUES))]);
  }
  return attrs;
}

test.serial('the module hides exactly the upstream objects the build says grant trust (1600 generated objects through the test shim)', async (t) => {
  const trust = join(dir, 'trust');
  mkdirSync(trust);
  writeFileSync(join(trust, 'root.pem'), pki.rootPem); // one plain certificate, so upstream is not empty
  const shimEnv = { NCFENCE_TEST_UPSTREAM: P11KIT_TRUST, NCFENCE_TEST_UPSTREAM_PARAMS: `paths=${trust}` };
  const { config } = await withEnv(shimEnv, () => build({ upstream: UPSTREAM_SHIM, upstreamParams: '', outDir: join(dir, 'view') }));
  const tally = { hidden: 0, shown: 0 };
  const rounds = 100;
  for (let round = 0; round < rounds; round++) {
    const rnd = prng(round + 1);
    // The shim serves at most 16 injected objects.
    const objects = Array.from({ length: 16 }, (_, i) => generate(rnd, `mirror ${round}.${i}`));
    const inject = injectionFile(join(dir, `inject-${round}.bin`), objects);
    let through;
    try {
      through = await withEnv({ ...shimEnv, NCFENCE_TEST_INJECT: inject, NCFENCE_CONFIG: config }, () => readUpstream(MODULE, ''));
    } catch (e) {
      // An object the module showed in the search and hid once its trust
      // attributes were read (object.c checks every answer) is left with no
      // attributes at all.
      t.fail(`round ${round}: reading through the module failed: ${(e as Error).message}`);
      continue;
    }
    const seen = new Set(through.objects.map((o) => new TextDecoder().decode(o.attrs.get(CKA.LABEL) ?? new Uint8Array())));
    objects.forEach((attrs, i) => {
      const label = `mirror ${round}.${i}`;
      const grants = grantsTrust({ slot: 0, attrs: new Map(attrs) });
      tally[grants ? 'hidden' : 'shown']++;
      if (seen.has(label) === grants) t.fail(`round ${round} object ${i}: the build says ${grants ? 'grants' : 'does not grant'} trust, the module ${seen.has(label) ? 'shows' : 'hides'} it: ${JSON.stringify(attrs.map(([k, v]) => [k.toString(16), Buffer.from(v).toString('hex')]))}`);
    });
  }
  t.log(`${tally.hidden} hidden, ${tally.shown} shown`);
  // Both verdicts are well represented, or the comparison says little.
  t.true(tally.hidden > 400 && tally.shown > 400, JSON.stringify(tally));
});

test('the module accepts every view and service answer the TypeScript side may write, and no more', async (t) => {
  await requireTool('gcc');
  const src = join(dir, 'limits.c');
  const exe = join(dir, 'limits');
  const names = ['VIEW_MAX_OBJECTS', 'VIEW_MAX_ATTRS', 'VIEW_MAX_ATTR_BYTES', 'VIEW_MAX_STAMP', 'WIRE_MAX_NAME', 'WIRE_MAX_RESPONSE', 'WIRE_MAX_OBJECTS', 'WIRE_MAX_ATTRS', 'WIRE_MAX_VALUE', 'WIRE_MAX_TTL'];
  writeFileSync(
    src,
    `#include "${join(ROOT, 'addon/nf.h')}"\n#include <stdio.h>\nint main (void) {\n${names.map((n) => `\tprintf ("${n} %lu\\n", (unsigned long)(NF_${n}));`).join('\n')}\n\treturn 0;\n}\n`,
  );
  await runOk('gcc', ['-std=c11', '-I/usr/include/p11-kit-1', '-o', exe, src], { timeoutMs: 60_000 });
  const c = Object.fromEntries((await runOk(exe, [])).stdout.trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
  t.deepEqual(
    {
      VIEW_MAX_OBJECTS: VIEW_LIMITS.objects,
      VIEW_MAX_ATTRS: VIEW_LIMITS.attrsPerObject,
      VIEW_MAX_ATTR_BYTES: VIEW_LIMITS.attrBytes,
      VIEW_MAX_STAMP: VIEW_LIMITS.stampBytes,
      WIRE_MAX_NAME: wire.MAX_NAME_LENGTH,
      WIRE_MAX_RESPONSE: wire.MAX_RESPONSE_BODY,
      WIRE_MAX_OBJECTS: wire.MAX_OBJECTS,
      WIRE_MAX_ATTRS: wire.MAX_ATTRIBUTES,
      WIRE_MAX_VALUE: wire.MAX_ATTRIBUTE_LENGTH,
      WIRE_MAX_TTL: wire.MAX_TTL_SECONDS,
    },
    c,
  );
  // The module's question (header, fixed part, longest name) is one the service takes.
  t.true(wire.FRAME_HEADER_LENGTH + wire.REQUEST_FIXED_LENGTH + c.WIRE_MAX_NAME! <= wire.FRAME_HEADER_LENGTH + wire.MAX_REQUEST_BODY);
});
