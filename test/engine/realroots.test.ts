// Every root of the machine's real trust modules (NSS CKBI and p11-kit-trust)
// rewrites, and every R' and L(R) is read by four independent parsers (NSS
// certutil, OpenSSL, GnuTLS certtool, pkijs) and verified under its own
// anchor by OpenSSL and by pkijs with @peculiar/webcrypto.

import test from 'ava';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { Crypto } from '@peculiar/webcrypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { decodeView } from '../../src/view/format.js';
import { CKA, CKO } from '../../src/pkcs11/constants.js';
import { P11KIT_TRUST, SYSTEM_CKBI } from '../helpers/paths.js';
import { requireTool, run, runOk } from '../helpers/run.js';
import { toPem } from '../helpers/pem.js';

let dir: string;
test.before(async () => {
  for (const tool of ['openssl', 'certtool', 'certutil']) await requireTool(tool);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-real-'));
  pkijs.setEngine('peculiar', new pkijs.CryptoEngine({ name: 'peculiar', crypto: new Crypto() }));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

interface Pair {
  label: string;
  anchor: Uint8Array;
  cross: Uint8Array;
}

/**
 * The (L(R), R') pairs of a compiled view: R' is a certificate L(R) issued;
 * with two forms of R' (rules/p11-kit.json, build's default for
 * p11-kit-trust) an anchor has two, each a pair.
 */
function pairs(viewFile: string): Pair[] {
  const certs = decodeView(readFileSync(viewFile)).objects
    .map((o) => new Map(o.attrs))
    .filter((a) => Buffer.from(a.get(CKA.CLASS)!).readBigUInt64LE(0) === BigInt(CKO.CERTIFICATE));
  const anchors = certs.filter((a) => new TextDecoder().decode(a.get(CKA.LABEL)).startsWith('ncfence anchor for '));
  return anchors.flatMap((l) => {
    const cross = certs.filter((c) => c !== l && hex(c.get(CKA.ISSUER)) === hex(l.get(CKA.SUBJECT)));
    if (cross.length < 1 || cross.length > 2) throw new Error(`anchor ${new TextDecoder().decode(l.get(CKA.LABEL))} issued ${cross.length} certificates`);
    return cross.map((c) => ({ label: new TextDecoder().decode(l.get(CKA.LABEL)), anchor: l.get(CKA.VALUE)!, cross: c.get(CKA.VALUE)! }));
  });
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

const upstreams = [
  { name: 'system NSS CKBI', library: SYSTEM_CKBI },
  { name: 'system p11-kit-trust', library: P11KIT_TRUST },
];

for (const u of upstreams) {
  test(`every root of the ${u.name} rewrites and every R' verifies under its L(R)`, async (t) => {
    const out = join(dir, u.name.replace(/\W+/g, '-'));
    const result = await build({ upstream: u.library, upstreamParams: '', outDir: out });
    t.deepEqual(result.summary.rootsDropped, [], 'no root may be dropped by the default policy');
    const ps = pairs(result.view);
    t.is(new Set(ps.map((p) => hex(p.anchor))).size, result.summary.rootsFenced);
    t.true(ps.length > 100, `${ps.length} roots fenced`);

    // OpenSSL: parse and verify each R' against the set of anchors (each anchor's
    // name and key are unique, so the only issuer that can verify R' is its own L(R)).
    const files = join(out, 'pem');
    mkdirSync(files);
    writeFileSync(join(files, 'anchors.pem'), [...new Set(ps.map((p) => toPem(p.anchor)))].join(''));
    const crossFiles = ps.map((p, i) => {
      const f = join(files, `cross-${i}.pem`);
      writeFileSync(f, toPem(p.cross));
      return f;
    });
    const verify = await run('openssl', ['verify', '-no_check_time', '-CAfile', join(files, 'anchors.pem'), ...crossFiles], { timeoutMs: 120_000 });
    const okLines = verify.stdout.split('\n').filter((l) => / OK$/.test(l)).length;
    t.is(okLines, ps.length, verify.stdout + verify.stderr);
    writeFileSync(join(files, 'all.pem'), ps.map((p) => toPem(p.cross) + toPem(p.anchor)).join(''));
    const text = await runOk('openssl', ['crl2pkcs7', '-nocrl', '-certfile', join(files, 'all.pem')]).then((p7) =>
      runOk('openssl', ['pkcs7', '-print_certs', '-text', '-noout'], { input: p7.stdout }),
    );
    t.is(text.stdout.match(/X509v3 Name Constraints: critical/g)?.length, ps.length);

    // GnuTLS reads every certificate of the file.
    const gnutls = await runOk('certtool', ['-i', '--infile', join(files, 'all.pem')], { timeoutMs: 120_000 });
    t.is(gnutls.stdout.match(/^\s*Subject Public Key Algorithm:/gm)?.length, 2 * ps.length);
    t.is(gnutls.stdout.match(/Name Constraints \(critical\):/g)?.length, ps.length);

    // NSS imports and lists every R'.
    const db = join(out, 'nssdb');
    mkdirSync(db);
    await runOk('certutil', ['-N', '--empty-password', '-d', `sql:${db}`]);
    await mapLimit(crossFiles, 1, (f, i) => runOk('certutil', ['-A', '-n', `cross-${i}`, '-t', ',,', '-d', `sql:${db}`, '-i', f]));
    const listed = await runOk('certutil', ['-L', '-d', `sql:${db}`]);
    t.is(listed.stdout.split('\n').filter((l) => /^cross-\d+\s/.test(l)).length, ps.length);

    // pkijs with @peculiar/webcrypto: parse, check the exclusion, verify the signature.
    let verified = 0;
    for (const p of ps) {
      const cross = new pkijs.Certificate({ schema: asn1js.fromBER(p.cross).result });
      const anchor = new pkijs.Certificate({ schema: asn1js.fromBER(p.anchor).result });
      const nc = cross.extensions?.find((e) => e.extnID === '2.5.29.30');
      const excluded = (nc?.parsedValue as pkijs.NameConstraints | undefined)?.excludedSubtrees?.map((s) => s.base.value) ?? [];
      t.true(nc?.critical === true && excluded.includes('bit'), `${p.label}: NameConstraints must exclude bit`);
      if (await cross.verify(anchor)) verified++;
    }
    t.is(verified, ps.length);
    t.log(`${u.name}: ${result.summary.upstreamObjects} objects, ${result.summary.rootsFenced} roots fenced (${ps.length} R'), ${result.summary.distrustRecords} distrust records, build ${result.millis} ms`);
  });
}
