// .bit lookup latency through the real module: cold (module -> service ->
// DNS on a real Knot server -> synthesized chain -> module) and warm (the
// module's cache), for N distinct names of each kind (apex, a subdomain at
// depth 1, at depth 2); and in the same run the bare DNS round trip for the
// same names, so "our own work" = cold - DNS. Certified mode (a stapled
// owner signature, apex and depth 1) goes to Namecoin Core instead (the
// fixture, in this process): cold = module -> service -> name_show ->
// signature check -> module, baseline = the bare name_show round trip.
//
//   node --import tsx bench/lookup.bench.ts [--out FILE] [--quick]

import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../src/compile/build.js';
import { Tag, oid, seq, set, tlv, utf8 } from '../src/engine/asn1/der.js';
import { lookupTlsa } from '../src/namecoin/dns.js';
import { nameOwner } from '../src/namecoin/rpc.js';
import { serve } from '../src/namecoin/serve.js';
import { certificationMessage, messageHash, p2pkhAddress } from '../src/namecoin/stapled.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { startKnot } from '../test/helpers/knot.js';
import { startNamecoind } from '../test/fixtures/namecoind.js';
import { CKBI, MODULE, compileNative, machineInfo, parseArgs, stats, writeJsonAtomic } from './lib.js';

const args = parseArgs('lookup');
const N = args.quick ? 30 : 200;
const WARM = args.quick ? 20 : 50;
const dir = mkdtempSync(join(tmpdir(), 'ncfence-bench-lookup-'));
const aiaName = (domain: string, serial = 'Namecoin TLS Certificate'): Uint8Array =>
  seq(set(seq(oid('2.5.4.3'), utf8(`${domain} Domain AIA Parent CA`))), set(seq(oid('2.5.4.5'), tlv(Tag.UTF8_STRING, new TextEncoder().encode(serial)))));

const KINDS = {
  apex: (i: number) => `bench${i}.bit`,
  'subdomain, depth 1': (i: number) => `www.sub${i}.bit`,
  'subdomain, depth 2': (i: number) => `a.b.deep${i}.bit`,
} as const;
const records: Record<string, string[]> = {};
for (const name of Object.values(KINDS)) {
  for (let i = 0; i < N; i++) {
    const spki = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' });
    records[name(i)] = [`2 1 0 ${spki.toString('hex')}`];
  }
}
// Certified mode: each name owned by its own address, whose key signs the stapled AIA key for the domain (as ncgencert -sigs staples it).
const CERTIFIED = {
  'certified, apex': (i: number) => `cert${i}.bit`,
  'certified, depth 1': (i: number) => `www.certsub${i}.bit`,
} as const;
const node = await startNamecoind({ auth: 'cookie' });
const stapledNames = new Map<string, Uint8Array>();
for (const name of Object.values(CERTIFIED)) {
  for (let i = 0; i < N; i++) {
    const domain = name(i);
    const priv = secp256k1.utils.randomSecretKey();
    const address = p2pkhAddress(secp256k1.getPublicKey(priv, true));
    node.setName(`d/${domain.split('.').at(-2)}`, '{}', { address });
    const pubb64 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64url');
    const sig = secp256k1.sign(messageHash(certificationMessage(address, domain, pubb64)), priv, { prehash: false, format: 'recovered' });
    const sigs = JSON.stringify([{ blockchainaddress: address, blockchainsig: Buffer.from([31 + sig[0]!, ...sig.subarray(1)]).toString('base64') }]);
    stapledNames.set(domain, aiaName(domain, `Namecoin TLS Certificate\n\nStapled: ${JSON.stringify({ pubb64, sigs })}`));
  }
}
const rpc = { url: node.url, auth: { cookieFile: node.cookieFile! }, timeoutMs: 2000 };
const knot = await startKnot(records, KINDS.apex(0));
try {
  const run = join(dir, 'run');
  mkdirSync(run, { mode: 0o700 });
  const socket = join(run, 'service.sock');
  const view = await build({ upstream: CKBI, upstreamParams: '', outDir: join(dir, 'view'), service: socket });
  const svc = await serve({ socket, dns: `127.0.0.1:${knot.port}`, rpc: node.url, rpcCookie: node.cookieFile, order: ['dns', 'rpc'] });
  try {
    const bench = compileNative('lookupbench', dir);
    const results: Record<string, unknown> = {};
    const lines = [`lookup bench: ${N} names of each kind, ${WARM} warm repeats each (µs)`];
    const kinds: [string, (i: number) => string, boolean][] = [...Object.entries(KINDS).map(([k, f]) => [k, f, false] as [string, (i: number) => string, boolean]), ...Object.entries(CERTIFIED).map(([k, f]) => [k, f, true] as [string, (i: number) => string, boolean])];
    for (const [kind, name, certified] of kinds) {
      const domains = Array.from({ length: N }, (_, i) => name(i));
      // The bare source round trip, same server, same names: DNS, or name_show for certified mode.
      const dnsMs: number[] = [];
      for (const d of domains) {
        const t0 = performance.now();
        if (certified) await nameOwner(d, rpc);
        else await lookupTlsa(d, { server: '127.0.0.1', port: knot.port, timeoutMs: 2000 });
        dnsMs.push(performance.now() - t0);
      }
      const names = Buffer.concat(domains.map((d) => {
        const n = certified ? stapledNames.get(d)! : aiaName(d);
        const len = Buffer.alloc(4);
        len.writeUInt32LE(n.length);
        return Buffer.concat([len, Buffer.from(n)]);
      }));
      writeFileSync(join(dir, 'names.bin'), names);
      // The module runs in a child process (a fresh cache each kind); the service answers from this one.
      const out = await new Promise<string>((resolve, reject) =>
        execFile(bench, [MODULE, join(dir, 'names.bin'), String(WARM)], { env: { ...process.env, NCFENCE_CONFIG: view.config }, maxBuffer: 64 << 20 }, (e, so) => (e ? reject(e) : resolve(so))),
      );
      const r = JSON.parse(out) as { cold_ns: number[]; warm_ns: number[]; names: number; found: number; cold_empty: number };
      const cold = stats(r.cold_ns.map((x) => x / 1e3));
      const warm = stats(r.warm_ns.map((x) => x / 1e3));
      const dns = stats(dnsMs.map((x) => x * 1e3));
      const own = cold.p50 - dns.p50;
      lines.push(
        `${kind}: ${r.found} of ${r.names} AIA parents found (${r.cold_empty} came back empty at first, the module's waiting budget spent or an answer slow: not cold samples)`,
        `  cold (module -> service -> ${certified ? 'name_show + signature' : 'DNS'} -> module): p50 ${cold.p50.toFixed(1)}  p95 ${cold.p95.toFixed(1)}`,
        `  bare ${certified ? 'name_show' : 'DNS'} round trip (same server):        p50 ${dns.p50.toFixed(1)}  p95 ${dns.p95.toFixed(1)}`,
        `  our own work on a cold lookup (p50 cold - p50 ${certified ? 'name_show' : 'DNS'}): ${own.toFixed(1)} µs (budget: under 2000)`,
        `  warm (module cache):                      p50 ${warm.p50.toFixed(2)}  p95 ${warm.p95.toFixed(2)}`,
      );
      results[kind] = { found: r.found, coldEmpty: r.cold_empty, coldUs: cold, warmUs: warm, [certified ? 'nameShowUs' : 'dnsUs']: dns, ownWorkUs: own };
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    writeJsonAtomic(args.out, { bench: 'lookup', machine: machineInfo(), parameters: { namesPerKind: N, warmRepeats: WARM }, results });
  } finally {
    await svc.close();
  }
} finally {
  await knot.stop();
  await node.close();
  rmSync(dir, { recursive: true, force: true });
}
