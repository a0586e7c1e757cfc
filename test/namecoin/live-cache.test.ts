// The module's cache of live .bit answers (addon/live.c), through the real
// module (pkcs11js in a child process, so this process's event loop can run
// the fake service it asks: test/helpers/fakeService.ts):
// - it stays usable past MAX_ENTRIES (1024) answers: "unavailable" replies
//   (TTL 0) for one name or many, and then an OK answer, is found;
// - a full table evicts, and a handle of an evicted or replaced answer is
//   CKR_OBJECT_HANDLE_INVALID, never another answer's object;
// - an unexpired answer is served from the cache, once per name;
// - an answer's TTL counts from when the module asked, also when the answer
//   came after the search that asked had stopped waiting;
// - objects that came with another name's answer (the chain above an AIA
//   parent) serve searches naming them, without asking.
// The module waits for the service only within a budget (a search may come
// back empty while its answer is on the way), so `settled` searches again
// until the answer is in, as a reload does.

import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { LATE_MS, LATE_TTL, MARKER, fakeName, startFakeService, type FakeService } from '../helpers/fakeService.js';
import { MODULE, SYSTEM_CKBI } from '../helpers/paths.js';

const MAX_ENTRIES = 1024;
const MANY = MAX_ENTRIES + 100;

let dir: string;
let seq = 0;

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ncfence-live-cache-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A module configuration over the system CKBI whose live service is a fresh fake one. */
async function setup(): Promise<{ config: string; svc: FakeService }> {
  const own = join(dir, `t${seq++}`);
  mkdirSync(own, { mode: 0o700 });
  const socket = join(own, 'run', 's.sock');
  const { config } = await build({ upstream: SYSTEM_CKBI, upstreamParams: '', outDir: join(own, 'out'), service: socket });
  return { config, svc: await startFakeService(socket) };
}

// Runs in the child: `find(name)` searches {CLASS certificate, SUBJECT name},
// `label(h)` reads CKA_LABEL or gives the error's name, then SCENARIO runs.
const PRELUDE = `
  const pk = require(process.env.PKCS11JS);
  const p = new pk.PKCS11(); p.load(process.env.MODULE); p.C_Initialize({ flags: 2 });
  const [slot] = p.C_GetSlotList(true); const s = p.C_OpenSession(slot, pk.CKF_SERIAL_SESSION);
  const cert = Buffer.alloc(8); cert.writeBigUInt64LE(1n);
  const all = (t) => { p.C_FindObjectsInit(s, t); const r = []; for (let h = p.C_FindObjects(s, 100); h.length; h = p.C_FindObjects(s, 100)) r.push(...h); p.C_FindObjectsFinal(s); return r; };
  const find = (name) => all([{ type: pk.CKA_CLASS, value: cert }, { type: pk.CKA_SUBJECT, value: Buffer.from(name, 'latin1') }]);
  const label = (h) => { if (h === undefined) return 'no handle'; try { return p.C_GetAttributeValue(s, h, [{ type: pk.CKA_LABEL }])[0].value.toString(); } catch (e) { return String(e.message).split(':')[0]; } };
  const name = (mode, id) => ${JSON.stringify(MARKER)} + '|' + mode + '|' + id;
  const hex = (h) => (h === undefined ? 'no handle' : Buffer.from(h).toString('hex'));
  const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  const settled = (name) => { for (let i = 0; i < 2500; i++) { const r = find(name); if (r.length) return r; sleep(2); } return []; };
  const out = {};
`;

async function runModule(config: string, scenario: string): Promise<Record<string, unknown>> {
  const env = { ...process.env, NCFENCE_CONFIG: config, PKCS11JS: createRequire(import.meta.url).resolve('pkcs11js'), MODULE };
  const script = `${PRELUDE}\n${scenario}\np.C_CloseSession(s); p.C_Finalize(); process.stdout.write(JSON.stringify(out));`;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['-e', script], { env, timeout: 90_000, maxBuffer: 16 << 20 }, (e, so, se) =>
      e ? reject(new Error(`${e.message}\n${se}`)) : resolve(so),
    ),
  );
  return JSON.parse(stdout) as Record<string, unknown>;
}

test.serial(`more than ${MAX_ENTRIES} "unavailable" answers, for one name and for many, do not stop an OK answer being found`, async (t) => {
  const { config, svc } = await setup();
  try {
    const r = await runModule(
      config,
      `
      let found = 0;
      for (let i = 0; i < ${MANY}; i++) found += find(name('down', 'same')).length;
      for (let i = 0; i < ${MANY}; i++) found += find(name('down', 'n' + i)).length;
      out.downFound = found;
      const ok = settled(name('ok', 'after'));
      out.okLabels = ok.map(label);
      out.again = find(name('ok', 'after')).map(hex);
      out.first = ok.map(hex);`,
    );
    t.is(r.downFound, 0, 'an unavailable service gives no objects');
    t.deepEqual(r.okLabels, ['after#1'], 'the service answers OK: the live object is found');
    t.deepEqual(r.again, r.first, 'the cached answer gives the same handle');
    // A question in flight is not asked twice, so how often depends on how fast the service is; never once only.
    t.true(svc.asked.get(fakeName('down', 'same'))! > 1, '"unavailable" (TTL 0) is not kept: asked again');
    t.is(svc.asked.get(fakeName('ok', 'after')), 1, 'the unexpired answer is served from the cache');
  } finally {
    await svc.close();
  }
});

test.serial(`a full cache evicts: ${MANY} answers all found, and a handle of an evicted or replaced answer is invalid, never another object`, async (t) => {
  const { config, svc } = await setup();
  try {
    const r = await runModule(
      config,
      `
      const found = [], now = [];
      for (let i = 0; i < ${MANY}; i++) {
        const hs = settled(name('ok0', 'e' + i));
        found.push(hs);
        now.push(hs.map(label).join());
      }
      out.counts = found.map((hs) => hs.length);
      out.now = now;
      out.later = found.map((hs) => hs.map(label).join());
      out.distinct = new Set(found.flat().map(hex)).size;
      // The same name answered again (its first answer expired: TTL 0) replaces it.
      const [a1] = settled(name('ok0', 'A'));
      const [a2] = settled(name('ok0', 'A'));
      out.refresh = { a1: label(a1), a2: label(a2), same: hex(a1) === hex(a2) };
      // A long-lived answer into the full table, found by name, by class only and from the cache.
      const late = settled(name('ok', 'late'));
      out.late = late.map(label);
      out.lateAgain = find(name('ok', 'late')).map(label);
      out.classOnly = all([{ type: pk.CKA_CLASS, value: cert }]).map(label).filter((l) => /^(e\\d+|A|late)#\\d+$/.test(l));`,
    );
    const counts = r.counts as number[];
    t.true(
      counts.every((c) => c === 1),
      `every lookup found its object; lookups that found none: ${counts.filter((c) => c !== 1).length}`,
    );
    const now = r.now as string[];
    t.true(
      now.every((l, i) => l === `e${i}#1`),
      'each handle reads its own object right after the search',
    );
    t.is(r.distinct, MANY, 'no handle was given out twice');
    const later = r.later as string[];
    const wrong = later.filter((l, i) => l !== `e${i}#1` && l !== 'CKR_OBJECT_HANDLE_INVALID');
    t.deepEqual(wrong, [], 'an old handle reads its own object or is invalid, never another');
    const invalid = later.filter((l) => l === 'CKR_OBJECT_HANDLE_INVALID').length;
    t.true(invalid >= MANY - MAX_ENTRIES, `entries were evicted to make room (${invalid} invalid handles)`);
    t.is(later[0], 'CKR_OBJECT_HANDLE_INVALID', 'the oldest expired answer went first');
    t.deepEqual(r.refresh, { a1: 'CKR_OBJECT_HANDLE_INVALID', a2: 'A#2', same: false }, 'a replaced answer: old handle invalid, new handle new');
    t.deepEqual(r.late, ['late#1']);
    t.deepEqual(r.lateAgain, ['late#1']);
    t.deepEqual(r.classOnly, ['late#1'], 'enumeration shows the unexpired answer only');
    t.is(svc.asked.get(fakeName('ok', 'late')), 1);
  } finally {
    await svc.close();
  }
});

test.serial(`an answer that comes after its search stopped waiting still expires ${LATE_TTL} s after the module asked, not after it was read`, async (t) => {
  const { config, svc } = await setup();
  try {
    // The service answers ${LATE_MS} ms after the question, with TTL ${LATE_TTL} s. The first search does
    // not wait that long; the second, later, finds the answer that came meanwhile. At 2.6 s the answer
    // is 0.6 s past its TTL counted from the question (it would have 0.4 s left counted from when the
    // module read it, which it must not be): the third search asks again.
    const r = await runModule(
      config,
      `
      const t0 = Date.now();
      const until = (ms) => { while (Date.now() - t0 < ms) sleep(5); };
      out.first = find(name('late', 'X')).map(label);
      until(${LATE_MS + 500});
      out.second = find(name('late', 'X')).map(label);
      until(${LATE_TTL * 1000 + 600});
      out.third = find(name('late', 'X')).map(label);
      out.secondAt = Date.now() - t0;`,
    );
    t.deepEqual(r.second, ['X#1'], 'the answer that came after the first search gave up is found by the next search');
    t.is(svc.asked.get(fakeName('late', 'X')), 2, `the answer expired ${LATE_TTL} s after the question: asked again`);
    t.notDeepEqual(r.third, ['X#1'], 'the expired answer is not served');
  } finally {
    await svc.close();
  }
});

test.serial('an object that came with another name\'s answer serves a search naming it, and that name is never asked', async (t) => {
  const { config, svc } = await setup();
  try {
    const r = await runModule(
      config,
      `
      out.own = settled(name('chain', 'X')).map(label);
      out.above = find(name('ok', 'above-X')).map(label);`,
    );
    t.deepEqual(r.own, ['X#1']);
    t.deepEqual(r.above, ['above-X#with-1'], 'the object that came with X\'s answer');
    t.is(svc.asked.get(fakeName('ok', 'above-X')), undefined, 'its own name was not asked');
  } finally {
    await svc.close();
  }
});
