// Engine bench: the cost of fencing roots against the raw crypto it needs.
//
//   node --import tsx bench/engine.bench.ts [--out bench/results/engine.json] [--quick]
//
// 1. fenceRoot latency per root key type (synthetic roots, fixed seed), each
//    iteration paired with the crypto floor of one rewrite.
// 2. Whole system CKBI compile: readUpstream (enumeration) and planView (plan).
// 3. The raw crypto floor for the same root count: anchor keygen plus two
//    ECDSA signatures over the very TBS sizes the plan signed.
// 4. plan / floor against the 3x budget (bench/README.md), for P-256 and P-384 anchors.
// 5. Diagnostic: where the P-256 plan time goes (EngineDeps calls timed from
//    outside, keygen and the floor in the same loop).
//
// bench/README.md explains every number.
// It only measures: nothing here fails on a slow number.

import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { fenceRoot, defaultEngineDeps, type AnchorKeyType, type EngineDeps } from '../src/engine/crossSign.js';
import { parseCertificate, type ParsedCertificate } from '../src/engine/asn1/certificate.js';
import { readUpstream, type UpstreamSnapshot } from '../src/compile/upstream.js';
import { isAnchor, ulongValue } from '../src/pkcs11/objects.js';
import { planView, type Plan } from '../src/compile/plan.js';
import { DEFAULT_UPSTREAM } from '../src/compile/build.js';
import { loadPolicy, type Policy } from '../src/policy.js';
import { CKA, CKO } from '../src/pkcs11/constants.js';
import { fmt, machineInfo, median, now, parseArgs, round, stats, timeMs, writeJsonAtomic, type Stats } from './lib.js';
import { ROOT_KEY_TYPES, syntheticRoot, type RootKeyType, type SyntheticRoot } from './synthRoots.js';

const SEED = 'ncfence-bench-engine-v1';
const BUDGET = 3; // bench/README.md: compile within 3x the raw crypto floor

const args = parseArgs('engine');
const params = args.quick
  ? { mode: 'quick', rootWarmup: 50, rootIterations: 300, enumRuns: 3, planWarmup: 10, planRuns: 5, p384Runs: 2, breakdownRuns: 3 }
  : { mode: 'full', rootWarmup: 500, rootIterations: 5000, enumRuns: 7, planWarmup: 30, planRuns: 15, p384Runs: 7, breakdownRuns: 9 };

const ANCHOR: Record<AnchorKeyType, { curve: string; hash: string }> = {
  'P-256': { curve: 'prime256v1', hash: 'sha256' },
  'P-384': { curve: 'secp384r1', hash: 'sha384' },
};

/** The TBS bytes one rewrite signs: the anchor's and the cross-certificate's. */
interface SignedPair {
  anchorTbs: Uint8Array;
  crossTbs: Uint8Array;
}

/** The floor of one rewrite: a fresh anchor key and its two signatures. */
function floorOne(type: AnchorKeyType, pair: SignedPair): void {
  const { curve, hash } = ANCHOR[type];
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve }) as { privateKey: KeyObject };
  sign(hash, pair.anchorTbs, privateKey);
  sign(hash, pair.crossTbs, privateKey);
}

function floorAll(type: AnchorKeyType, pairs: readonly SignedPair[]): void {
  for (const p of pairs) floorOne(type, p);
}

/**
 * The same floor with the public key's bytes obtained, which any rewrite
 * needs for the anchor certificate (node:crypto's cheapest way: JWK output
 * from generateKeyPairSync). For information beside the budget's floor.
 */
function floorWithPublicKey(type: AnchorKeyType, pairs: readonly SignedPair[]): void {
  const { curve, hash } = ANCHOR[type];
  // @types/node 20 lacks the JWK overload of generateKeyPairSync that Node 20 has.
  const generate = generateKeyPairSync as unknown as (t: 'ec', o: object) => { privateKey: KeyObject };
  for (const p of pairs) {
    const { privateKey } = generate('ec', { namedCurve: curve, publicKeyEncoding: { format: 'jwk' } });
    sign(hash, p.anchorTbs, privateKey);
    sign(hash, p.crossTbs, privateKey);
  }
}

/** The TBS bytes the engine signed for each fenced root: anchors by label, crosses by their anchor issuer. */
function signedPairs(plan: Plan): SignedPair[] {
  const anchors = new Map<string, ParsedCertificate>();
  const certs: ParsedCertificate[] = [];
  for (const o of plan.objects) {
    const attrs = new Map(o.attrs);
    const value = attrs.get(CKA.VALUE);
    if (ulongValue(attrs.get(CKA.CLASS)) !== CKO.CERTIFICATE || !value) continue;
    const cert = parseCertificate(value);
    if (isAnchor(o.attrs)) anchors.set(Buffer.from(cert.subject).toString('hex'), cert);
    else certs.push(cert);
  }
  const pairs: SignedPair[] = [];
  for (const c of certs) {
    const a = anchors.get(Buffer.from(c.issuer).toString('hex'));
    if (a && a !== c) pairs.push({ anchorTbs: a.tbs, crossTbs: c.tbs });
  }
  if (pairs.length !== plan.summary.rootsFenced) throw new Error(`bench: found ${pairs.length} anchor/cross pairs for ${plan.summary.rootsFenced} fenced roots`);
  return pairs;
}

const meanLen = (xs: readonly Uint8Array[]): number => Math.round(xs.reduce((a, b) => a + b.length, 0) / Math.max(1, xs.length));

// ---------------------------------------------------------------------------

const started = now();
const machine = machineInfo();
const policy = loadPolicy();
const excluded = policy.excludedSubtrees; // what fenceRoot gets from planView
const deps256 = await defaultEngineDeps('P-256');
const deps384 = await defaultEngineDeps('P-384');

const log = (s = ''): void => void process.stdout.write(`${s}\n`);
log(`ncfence engine bench (${params.mode}) — ${machine.date}`);
log(`${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, OpenSSL ${machine.openssl}, NSS ${machine.nss ?? 'unknown'}`);
log();

// 1. Per-root rewrite latency ------------------------------------------------

const genStart = now();
const roots: SyntheticRoot[] = ROOT_KEY_TYPES.map((t) => syntheticRoot(SEED, t));
const genMs = now() - genStart;

interface RootResult {
  rootKeyType: RootKeyType;
  rootDerBytes: number;
  rootSha256: string;
  fenceRootUs: Stats;
  floorUs: Stats;
  medianOverheadUs: number;
}

function benchRoot(root: SyntheticRoot, deps: EngineDeps, anchor: AnchorKeyType): RootResult {
  const out = fenceRoot(root.der, excluded, deps);
  const pair = { anchorTbs: out.anchor.tbs, crossTbs: out.cross.tbs };
  for (let i = 0; i < params.rootWarmup; i++) {
    fenceRoot(root.der, excluded, deps);
    floorOne(anchor, pair);
  }
  const fence: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < params.rootIterations; i++) {
    const t0 = now();
    fenceRoot(root.der, excluded, deps);
    const t1 = now();
    floorOne(anchor, pair);
    const t2 = now();
    fence.push((t1 - t0) * 1000);
    floor.push((t2 - t1) * 1000);
  }
  const fs = stats(fence);
  const ls = stats(floor);
  return {
    rootKeyType: root.type,
    rootDerBytes: root.der.length,
    rootSha256: root.sha256,
    fenceRootUs: round(fs),
    floorUs: round(ls),
    medianOverheadUs: round(fs.p50 - ls.p50),
  };
}

const perRoot = roots.map((r) => benchRoot(r, deps256, 'P-256'));

log(`1. fenceRoot latency, P-256 anchor, ${params.rootIterations} iterations after ${params.rootWarmup} warm-up (µs)`);
log(`   synthetic roots from seed "${SEED}" built in ${genMs.toFixed(0)} ms`);
log(`   root key   bytes      p50      p95      p99   | floor p50  floor p95 | p50 overhead`);
for (const r of perRoot) {
  log(
    `   ${r.rootKeyType.padEnd(9)}${String(r.rootDerBytes).padStart(6)}${fmt(r.fenceRootUs.p50)}${fmt(r.fenceRootUs.p95)}${fmt(r.fenceRootUs.p99)}   |${fmt(r.floorUs.p50, 1, 10)}${fmt(r.floorUs.p95, 1, 11)} |${fmt(r.medianOverheadUs, 1, 13)}`,
  );
}
log();

// 2-4. Whole system CKBI compile vs the crypto floor ----------------------------

const enumMs: number[] = [];
let snapshot: UpstreamSnapshot | undefined;
for (let i = 0; i < params.enumRuns; i++) {
  const t = now();
  snapshot = readUpstream(DEFAULT_UPSTREAM, '');
  enumMs.push(now() - t);
}
const snap = snapshot!;

interface CompileResult {
  anchorKeyType: AnchorKeyType;
  runs: number;
  rootsFenced: number;
  rootsDropped: number;
  meanAnchorTbsBytes: number;
  meanCrossTbsBytes: number;
  planMs: { median: number; min: number; max: number };
  /** The first plan of this anchor type in the process, before warm-up (information). */
  firstPlanMs: number;
  floorMs: { median: number; min: number; max: number };
  /** median(plan) / median(floor). */
  ratio: number;
  /** Median over runs of plan_i / floor_i, each pair measured back to back (drift cancels). */
  pairedRatio: number;
  /** min(plan) / min(floor): the least noisy estimate on a shared machine. */
  minRatio: number;
  /** Median of the floor that also obtains the public key's bytes (information only). */
  floorWithPublicKeyMs: number;
  ratioToFloorWithPublicKey: number;
  withinBudget: boolean;
}

function compile(anchor: AnchorKeyType, deps: EngineDeps, runs: number): CompileResult {
  // The policy names its anchor key type too (build.ts passes it to defaultEngineDeps); keep them in step.
  const pol: Policy = { ...policy, anchorKey: anchor };
  // The floor's code is hot from section 1 (thousands of calls); planView's
  // own functions run 159 times per plan, so V8 needs several plans before
  // they are optimised. Warm both sides to a steady state before comparing,
  // and keep the first (cold) plan for information.
  const firstPlanMs = timeMs(() => planView(snap, pol, deps));
  let plan = planView(snap, pol, deps);
  for (let i = 1; i < params.planWarmup; i++) plan = planView(snap, pol, deps);
  const pairs = signedPairs(plan);
  floorAll(anchor, pairs); // warm the floor path too
  const planMs: number[] = [];
  const floorMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Alternate the order so neither side always runs on a freshly collected heap.
    if (i % 2 === 0) {
      planMs.push(timeMs(() => planView(snap, pol, deps)));
      floorMs.push(timeMs(() => floorAll(anchor, pairs)));
    } else {
      floorMs.push(timeMs(() => floorAll(anchor, pairs)));
      planMs.push(timeMs(() => planView(snap, pol, deps)));
    }
  }
  const pkMs: number[] = [];
  for (let i = 0; i < Math.max(3, Math.floor(runs / 2)); i++) pkMs.push(timeMs(() => floorWithPublicKey(anchor, pairs)));
  const pm = median(planMs);
  const fm = median(floorMs);
  const paired = median(planMs.map((x, i) => x / floorMs[i]!));
  const minRatio = Math.min(...planMs) / Math.min(...floorMs);
  const spread = (xs: number[], m: number) => ({ median: round(m, 2), min: round(Math.min(...xs), 2), max: round(Math.max(...xs), 2) });
  return {
    anchorKeyType: anchor,
    runs,
    rootsFenced: plan.summary.rootsFenced,
    rootsDropped: plan.summary.rootsDropped.length,
    meanAnchorTbsBytes: meanLen(pairs.map((p) => p.anchorTbs)),
    meanCrossTbsBytes: meanLen(pairs.map((p) => p.crossTbs)),
    planMs: spread(planMs, pm),
    firstPlanMs: round(firstPlanMs, 2),
    floorMs: spread(floorMs, fm),
    ratio: round(pm / fm, 2),
    pairedRatio: round(paired, 2),
    minRatio: round(minRatio, 2),
    floorWithPublicKeyMs: round(median(pkMs), 2),
    ratioToFloorWithPublicKey: round(pm / median(pkMs), 2),
    // Judged on the paired ratio: each plan run against the floor run next to it.
    withinBudget: paired <= BUDGET,
  };
}

const compiles = [compile('P-256', deps256, params.planRuns), compile('P-384', deps384, params.p384Runs)];
const enumMedian = median(enumMs);

log(`2. System CKBI compile: ${DEFAULT_UPSTREAM}, policy ${policy.file} (excluded: ${policy.excludedDnsNames.join(', ')})`);
log(`   enumeration (readUpstream): median ${enumMedian.toFixed(2)} ms over ${params.enumRuns} runs, ${snap.objects.length} upstream objects`);
for (const c of compiles) {
  log(
    `   ${c.anchorKeyType} anchors: ${c.rootsFenced} roots fenced, ${c.rootsDropped} dropped; plan median ${c.planMs.median.toFixed(2)} ms ` +
      `(min ${c.planMs.min.toFixed(2)}, max ${c.planMs.max.toFixed(2)}) over ${c.runs} runs = ${((c.planMs.median * 1000) / Math.max(1, c.rootsFenced)).toFixed(0)} µs/root`,
  );
}
log();
log(`3. Raw crypto floor (node:crypto keygen + 2 signatures per root over the plan's own TBS bytes)`);
for (const c of compiles) {
  log(
    `   ${c.anchorKeyType}: ${c.rootsFenced} x (keygen + 2 x ECDSA/${ANCHOR[c.anchorKeyType].hash.toUpperCase()} over ${c.meanAnchorTbsBytes} + ${c.meanCrossTbsBytes} B): ` +
      `median ${c.floorMs.median.toFixed(2)} ms (min ${c.floorMs.min.toFixed(2)}, max ${c.floorMs.max.toFixed(2)})`,
  );
}
log();
log(`4. Budget: plan / floor within ${BUDGET}x`);
for (const c of compiles) {
  log(
    `   ${c.anchorKeyType}: medians ${c.planMs.median.toFixed(2)} / ${c.floorMs.median.toFixed(2)} ms = ${c.ratio.toFixed(2)}x; ` +
      `paired median ${c.pairedRatio.toFixed(2)}x; minimums ${c.minRatio.toFixed(2)}x -> ${c.withinBudget ? 'within budget' : 'OVER budget'} (paired)`,
  );
  log(`      (against a floor that also gets the public key's bytes, ${c.floorWithPublicKeyMs.toFixed(2)} ms: ${c.ratioToFloorWithPublicKey.toFixed(2)}x, for information)`);
}
const p256 = compiles[0]!;
log(`   (enumeration + plan) / floor, P-256: ${((enumMedian + p256.planMs.median) / p256.floorMs.median).toFixed(2)}x (for information)`);


// 5. Where the plan time goes (diagnostic) --------------------------------------
// The engine takes its key source and serials through EngineDeps, so wrapping
// them times those calls inside planView without touching src/. Keygen alone is
// and the floor are timed in the same loop; the two signatures are floor minus keygen.

interface Breakdown {
  runs: number;
  planUsPerRoot: number;
  generateAnchorKeyUsPerRoot: number;
  keygenOnlyUsPerRoot: number;
  spkiExportUsPerRoot: number;
  serialUsPerRoot: number;
  signaturesUsPerRoot: number;
  restUsPerRoot: number;
}

function breakdown(runs: number): Breakdown {
  const acc = { key: 0, serial: 0, keys: 0 };
  const deps: EngineDeps = {
    now: () => deps256.now(),
    generateAnchorKey() {
      const t = now();
      const k = deps256.generateAnchorKey();
      acc.key += now() - t;
      acc.keys++;
      return k;
    },
    serial() {
      const t = now();
      const v = deps256.serial();
      acc.serial += now() - t;
      return v;
    },
  };
  const pol: Policy = { ...policy, anchorKey: 'P-256' };
  const pairs = signedPairs(planView(snap, pol, deps));
  const roots = pairs.length;
  const plan: number[] = [];
  const floor: number[] = [];
  const keygen: number[] = [];
  const key: number[] = [];
  const serial: number[] = [];
  for (let i = 0; i < runs; i++) {
    acc.key = acc.serial = acc.keys = 0;
    plan.push(timeMs(() => planView(snap, pol, deps)));
    key.push(acc.key);
    serial.push(acc.serial);
    floor.push(timeMs(() => floorAll('P-256', pairs)));
    keygen.push(
      timeMs(() => {
        for (let j = 0; j < roots; j++) generateKeyPairSync('ec', { namedCurve: ANCHOR['P-256'].curve });
      }),
    );
  }
  const per = (ms: number): number => round((ms * 1000) / Math.max(1, roots), 1);
  const planM = median(plan);
  const keyM = median(key);
  const serialM = median(serial);
  const keygenM = median(keygen);
  const sigM = Math.max(0, median(floor) - keygenM);
  return {
    runs,
    planUsPerRoot: per(planM),
    generateAnchorKeyUsPerRoot: per(keyM),
    keygenOnlyUsPerRoot: per(keygenM),
    spkiExportUsPerRoot: per(keyM - keygenM),
    serialUsPerRoot: per(serialM),
    signaturesUsPerRoot: per(sigM),
    restUsPerRoot: per(planM - keyM - serialM - sigM),
  };
}

const bd = breakdown(params.breakdownRuns);
log();
log(`5. Where P-256 plan time goes, µs per root (instrumented EngineDeps, median of ${bd.runs} runs; diagnostic)`);
log(`   plan total                                   ${fmt(bd.planUsPerRoot)}`);
log(`   deps.generateAnchorKey                       ${fmt(bd.generateAnchorKeyUsPerRoot)}`);
log(`     node:crypto keygen alone                   ${fmt(bd.keygenOnlyUsPerRoot)}`);
log(`     the rest: public key as JWK, framed as SPKI ${fmt(bd.spkiExportUsPerRoot)}`);
log(`   deps.serial (2 per root)                     ${fmt(bd.serialUsPerRoot)}`);
log(`   2 signatures (floor - keygen)                ${fmt(bd.signaturesUsPerRoot)}`);
log(`   everything else (engine + plan JS, GC)       ${fmt(bd.restUsPerRoot)}`);

const totalS = (now() - started) / 1000;
log();

writeJsonAtomic(args.out, {
  bench: 'engine',
  machine,
  parameters: {
    ...params,
    seed: SEED,
    budgetRatio: BUDGET,
    upstream: DEFAULT_UPSTREAM,
    upstreamParams: '',
    policy: policy.file,
    excludedDnsNames: policy.excludedDnsNames,
    perRootAnchorKeyType: 'P-256',
    units: { perRoot: 'microseconds', compile: 'milliseconds' },
  },
  results: {
    syntheticRootsBuildMs: round(genMs, 1),
    perRoot,
    compile: {
      upstreamObjects: snap.objects.length,
      enumerationMs: { median: round(enumMedian, 2), min: round(Math.min(...enumMs), 2), max: round(Math.max(...enumMs), 2), runs: params.enumRuns },
      anchors: compiles,
    },
    budget: {
      ratio: p256.ratio,
      pairedRatio: p256.pairedRatio,
      minRatio: p256.minRatio,
      limit: BUDGET,
      withinBudget: p256.withinBudget,
      ratioP384: compiles[1]!.ratio,
      withinBudgetP384: compiles[1]!.withinBudget,
      enumerationPlusPlanRatio: round((enumMedian + p256.planMs.median) / p256.floorMs.median, 2),
    },
    breakdownP256: bd,
  },
  totalSeconds: round(totalS, 1),
});
log(`wrote ${args.out} (${totalS.toFixed(1)} s)`);
