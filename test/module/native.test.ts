// The module through its C ABI: a conformance suite run through ncfence over
// two real upstreams, the same under ASan+UBSan, 1000 C_Initialize/C_Finalize
// cycles under LeakSanitizer, an 8-thread stress run under ThreadSanitizer,
// live .bit lookups from several threads past a full cache (ASan, TSan), one
// on-demand service start for threads that find none at once (TSan), live
// lookups against a service that never answers well (hung, silent, garbage,
// a byte at a time, down) finalized with questions in flight (ASan with
// LeakSanitizer, TSan, no descriptor left open), a fork with a question in
// flight, and short libFuzzer runs over the view parser, template handling
// and the service's answers.

import test from 'ava';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { startBrokenService, startFakeService } from '../helpers/fakeService.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { buildFuzzer, buildHarness, buildModule } from '../helpers/native.js';
import { MODULE, P11KIT_TRUST, ROOT, UPSTREAM_SHIM } from '../helpers/paths.js';
import { FIREFOX_INSTALL_DIR } from '../helpers/firefox.js';
import { withEnv } from '../helpers/env.js';
import { requireTool, run, type RunResult } from '../helpers/run.js';

let dir: string;
let pki: TestPki;
let p11Config: string;
let ckbiConfig: string;
let neededConfig: string;
let browserConfig: string;
let twoFormsConfig: string;
const NEEDED_ENV = { NCFENCE_TEST_UPSTREAM: '/usr/lib/x86_64-linux-gnu/libnssckbi.so', NCFENCE_TEST_REPORT_NEEDED: '1' };
const bins: Record<string, Promise<string>> = {};

test.before(async () => {
  for (const tool of ['gcc', 'clang']) await requireTool(tool);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-native-'));
  pki = await makeTestPki(['www.example.com']);
  p11Config = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'p11') })).config;
  ckbiConfig = (await build({ upstream: '/usr/lib/x86_64-linux-gnu/libnssckbi.so', upstreamParams: '', outDir: join(dir, 'ckbi') })).config;
  // Two forms of R' (rules/p11-kit.json): which one a search sees is addon/host.c's to say.
  twoFormsConfig = (await build({ upstream: P11KIT_TRUST, upstreamParams: `paths=${pki.trustDir}`, outDir: join(dir, 'two-forms'), policyFile: join(ROOT, 'rules/p11-kit.json') })).config;
  neededConfig = (await withEnv(NEEDED_ENV, () => build({ upstream: UPSTREAM_SHIM, upstreamParams: '', outDir: join(dir, 'needed') }))).config;
  // A browser target: Firefox's own roots, served from the view's snapshot with no upstream library.
  browserConfig = (await build({ browser: FIREFOX_INSTALL_DIR, upstream: '', upstreamParams: '', outDir: join(dir, 'browser') })).config;
  // Builds start here and are awaited by the tests that need them.
  bins.harness = buildHarness(dir, 'plain');
  bins.harnessAsan = buildHarness(dir, 'asan');
  bins.moduleAsan = buildModule(dir, 'asan');
  bins.harnessTsan = buildHarness(dir, 'tsan');
  bins.moduleTsan = buildModule(dir, 'tsan');
  for (const b of Object.values(bins)) b.catch(() => undefined);
});
test.after.always(() => {
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Asserts the harness's own closing line says no failure. */
function assertClean(t: { is: (a: unknown, b: unknown, m?: string) => void; regex: (s: string, r: RegExp, m?: string) => void; notRegex: (s: string, r: RegExp, m?: string) => void }, r: RunResult): void {
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /^\d+ passed, 0 failed$/m, out.slice(-4000));
  t.is(r.code, 0, out.slice(-4000));
  t.notRegex(out, /Sanitizer|runtime error/, out.slice(-4000));
}

const upstreams: { name: string; config: () => string; env?: Record<string, string> }[] = [
  { name: 'p11-kit-trust', config: () => p11Config },
  { name: 'system CKBI', config: () => ckbiConfig },
  { name: "Firefox ESR 153's own roots (snapshot token)", config: () => browserConfig },
];
// The CKBI behind a shim that reports the needed length when a buffer is
// too small, as pre-3.0 modules do: the module must not read or write past
// the caller's buffers on the strength of such a length (review).
const conformanceUpstreams = [
  ...upstreams,
  { name: 'system CKBI reporting needed lengths', config: () => neededConfig, env: NEEDED_ENV },
  { name: "p11-kit-trust with two forms of R' (rules/p11-kit.json)", config: () => twoFormsConfig },
];

for (const u of conformanceUpstreams) {
  test(`conformance through ncfence over ${u.name}`, async (t) => {
    const r = await run(await bins.harness!, ['conformance', MODULE], { env: { ...process.env, ...u.env, NCFENCE_CONFIG: u.config() }, timeoutMs: 120_000 });
    assertClean(t, r);
  });

  test(`conformance under ASan+UBSan over ${u.name}`, async (t) => {
    const r = await run(await bins.harnessAsan!, ['conformance', await bins.moduleAsan!], {
      env: { ...process.env, ...u.env, NCFENCE_CONFIG: u.config(), ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0' },
      timeoutMs: 180_000,
    });
    assertClean(t, r);
  });
}

for (const u of upstreams) {
  test(`1000 C_Initialize/C_Finalize cycles over ${u.name} leak nothing (LeakSanitizer)`, async (t) => {
    const r = await run(await bins.harnessAsan!, ['cycles', await bins.moduleAsan!, '1000'], {
      env: { ...process.env, NCFENCE_CONFIG: u.config(), ASAN_OPTIONS: 'detect_leaks=1' },
      timeoutMs: 300_000,
    });
    assertClean(t, r);
    t.regex(r.stdout, /^[1-9]\d{3,} passed, 0 failed$/m);
  });
}

test('8 threads of concurrent sessions and finds run clean under ThreadSanitizer', async (t) => {
  const r = await run(await bins.harnessTsan!, ['stress', await bins.moduleTsan!, '8', '60'], {
    env: { ...process.env, NCFENCE_CONFIG: ckbiConfig, TSAN_OPTIONS: `halt_on_error=0 report_signal_unsafe=0 suppressions=${join(ROOT, 'test/native/tsan.supp')}` },
    timeoutMs: 300_000,
  });
  assertClean(t, r);
});

/** p11Config plus `lines`, in a file of its own. (Over p11-kit-trust: with
 * several threads the system CKBI's NSPR now and then leaks a lock, which
 * LeakSanitizer would report against the run.) */
function p11ConfigWith(label: string, lines: string, base = p11Config): string {
  const file = join(dir, `${label}.conf`);
  writeFileSync(file, `${readFileSync(base, 'utf8')}${lines}`);
  return file;
}

const TSAN_ENV = { TSAN_OPTIONS: `halt_on_error=0 report_signal_unsafe=0 suppressions=${join(ROOT, 'test/native/tsan.supp')}` };
const liveVariants = [
  { name: 'ThreadSanitizer', harness: () => bins.harnessTsan!, module: () => bins.moduleTsan!, env: TSAN_ENV },
  { name: 'ASan+UBSan', harness: () => bins.harnessAsan!, module: () => bins.moduleAsan!, env: { ASAN_OPTIONS: 'detect_leaks=1' } },
];
for (const v of liveVariants) {
  test(`live cache: 4 threads x 300 lookups (more than the 1024 entries) evict, and no handle reads as another object, under ${v.name}`, async (t) => {
    const own = join(dir, `live-${v.name.replace(/\W/g, '')}`);
    mkdirSync(own, { mode: 0o700 });
    const socket = join(own, 'run', 's.sock');
    const svc = await startFakeService(socket);
    try {
      const r = await run(await v.harness(), ['livestress', await v.module(), '4', '300'], {
        env: { ...process.env, NCFENCE_CONFIG: p11ConfigWith(`live-${v.name.replace(/\W/g, '')}`, `service = ${socket}\n`), ...v.env },
        timeoutMs: 300_000,
      });
      assertClean(t, r);
      t.log(/livestress: .*/.exec(r.stderr)?.[0]);
      t.true(svc.service.stats.answered >= 1200, `the service answered ${svc.service.stats.answered} lookups`);
    } finally {
      await svc.close();
    }
  });
}

test('on-demand start: 8 threads that find no service at once start it once, with no data race (ThreadSanitizer)', async (t) => {
  const starts = join(dir, 'starts.log');
  const script = join(dir, 'start-service.sh');
  // Records each start and exits: nothing ever listens, so every thread waits out service-timeout-ms.
  writeFileSync(script, `#!/bin/sh\necho $$ >> ${starts}\n`, { mode: 0o755 });
  const config = p11ConfigWith('livestart', `service = ${join(dir, 'no-service', 's.sock')}\nservice-command = ${script}\nservice-timeout-ms = 400\n`);
  const r = await run(await bins.harnessTsan!, ['livestart', await bins.moduleTsan!, '8'], { env: { ...process.env, NCFENCE_CONFIG: config, ...TSAN_ENV }, timeoutMs: 120_000 });
  assertClean(t, r);
  // The module does not wait for what it starts; the script has had the whole timeout, and gets a moment more.
  await new Promise((res) => setTimeout(res, 300));
  const lines = readFileSync(starts, 'utf8').split('\n').filter(Boolean);
  t.is(lines.length, 1, `service-command ran ${lines.length} times`);
});

test('on-demand start: the service the module starts holds none of the host\'s descriptors, only /dev/null on stdin, stdout and stderr', async (t) => {
  const fds = join(dir, 'service-fds.txt');
  // The service command is find itself (the module runs it without a shell): it writes each
  // descriptor it holds and where it points, beside those it opens (its output, the listing, its
  // working directory).
  const command = `/usr/bin/find /proc/self/fd -mindepth 1 -fprintf ${fds} %f=%l\\n`;
  const config = p11ConfigWith('livefds', `service = ${join(dir, 'no-service-fds', 's.sock')}\nservice-command = ${command}\nservice-timeout-ms = 400\n`);
  // The host holds descriptor 7 open without close-on-exec, as a browser may hold its own.
  const r = await run('/bin/sh', ['-c', 'exec 7</etc/hostname; exec "$0" "$@"', await bins.harness!, 'livestart', MODULE, '1'], { cwd: dir, env: { ...process.env, NCFENCE_CONFIG: config }, timeoutMs: 120_000 });
  t.is(r.code, 0, r.stderr);
  for (let i = 0; i < 50 && !existsSync(fds); i++) await new Promise((res) => setTimeout(res, 100));
  const held = [...readFileSync(fds, 'utf8').matchAll(/^(\d+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const);
  t.deepEqual(held.filter(([fd]) => Number(fd) <= 2), [['0', '/dev/null'], ['1', '/dev/null'], ['2', '/dev/null']], JSON.stringify(held));
  t.deepEqual(held.filter(([fd, to]) => Number(fd) > 2 && to !== fds && to !== dir && !to.startsWith('/proc/')), [], `the service inherited: ${JSON.stringify(held)}`);
});

// What can sit behind the service's socket; none of it answers a question well.
const hostileServices: { name: string; start: (socket: string) => Promise<{ close(): Promise<void> }>; extra?: string }[] = [
  { name: 'a service whose source never answers', start: (socket) => startFakeService(socket) },
  { name: 'a socket that accepts and stays silent', start: (socket) => startBrokenService(socket, 'silent') },
  { name: 'a service answering garbage', start: (socket) => startBrokenService(socket, 'garbage') },
  { name: 'a service answering a byte at a time', start: (socket) => startBrokenService(socket, 'trickle') },
  { name: 'no service', start: async () => ({ close: async () => undefined }) },
  { name: 'no service, and a service-command that never listens', start: async () => ({ close: async () => undefined }), extra: 'service-command = /bin/true\n' },
];
for (const v of liveVariants) {
  for (const h of hostileServices) {
    test(`live lookups against ${h.name}: 4 threads x 150 names, finalized with questions in flight, find nothing and leave nothing open, under ${v.name}`, async (t) => {
      const label = `hostile-${v.name}-${h.name}`.replace(/\W/g, '');
      const own = join(dir, label);
      mkdirSync(own, { mode: 0o700 });
      const socket = join(own, 'run', 's.sock');
      mkdirSync(join(own, 'run'), { mode: 0o700 });
      const svc = await h.start(socket);
      try {
        const r = await run(await v.harness(), ['livehostile', await v.module(), '4', '150', '3'], {
          env: { ...process.env, NCFENCE_CONFIG: p11ConfigWith(label, `service = ${socket}\n${h.extra ?? ''}`), ...v.env },
          timeoutMs: 240_000,
        });
        assertClean(t, r);
      } finally {
        await svc.close();
      }
    });
  }
}

test('fork with a question in flight: the child asks its own and never reads its parent\'s answer (ASan)', async (t) => {
  const own = join(dir, 'livefork');
  mkdirSync(own, { mode: 0o700 });
  const socket = join(own, 'run', 's.sock');
  const svc = await startFakeService(socket);
  try {
    // Over the browser target's snapshot token: no upstream library, whose own fork-safety is not ours to test.
    const r = await run(await bins.harnessAsan!, ['livefork', await bins.moduleAsan!], {
      env: { ...process.env, NCFENCE_CONFIG: p11ConfigWith('livefork', `service = ${socket}\n`, browserConfig), ASAN_OPTIONS: 'detect_leaks=1' },
      timeoutMs: 60_000,
    });
    assertClean(t, r);
  } finally {
    await svc.close();
  }
});

test('fork while other threads hold the module lock: 200 children never deadlock', async (t) => {
  const r = await run(await bins.harness!, ['fork', MODULE], { env: { ...process.env, NCFENCE_CONFIG: ckbiConfig }, timeoutMs: 180_000 });
  assertClean(t, r);
});

test('the module loads under ASan with no configuration and presents one empty slot that says so', async (t) => {
  const r = await run(await bins.harnessAsan!, ['conformance', await bins.moduleAsan!], {
    env: { ...process.env, NCFENCE_CONFIG: join(dir, 'absent.conf') },
    timeoutMs: 60_000,
  });
  // The suite needs objects; what matters is a clean, loud, closed start:
  // one slot (addon/notice.c: its token says no root is trusted), no object.
  t.regex(r.stderr, /WARNING: cannot read configuration/);
  t.notRegex(r.stderr, /C_GetSlotList rv=/, 'a slot was listed');
  t.notRegex(r.stderr, /C_GetTokenInfo|C_OpenSession rv=/, 'its token answered and opened a session');
  t.regex(r.stderr, /empty template found nothing/);
  t.notRegex(r.stderr, /Sanitizer|runtime error/);
});

const FUZZ_SECONDS = Number(process.env.NCFENCE_FUZZ_SECONDS ?? 12);
for (const target of ['view', 'template', 'live'] as const) {
  test(`libFuzzer: ${target} for ${FUZZ_SECONDS} s finds nothing`, async (t) => {
    const fuzzer = await buildFuzzer(dir, target);
    const corpus = join(dir, `corpus-${target}`);
    mkdirSync(corpus);
    cpSync(join(ROOT, 'test/fuzz/corpus', target), corpus, { recursive: true });
    const r = await run(fuzzer, [`-max_total_time=${FUZZ_SECONDS}`, '-rss_limit_mb=1024', `-artifact_prefix=${dir}/`, corpus], { timeoutMs: (FUZZ_SECONDS + 60) * 1000 });
    const runs = /Done (\d+) runs in (\d+) second/.exec(r.stderr);
    t.is(r.code, 0, r.stderr.slice(-4000));
    t.truthy(runs, r.stderr.slice(-2000));
    t.log(`${target}: ${runs?.[1]} runs in ${runs?.[2]} s`);
  });
}
