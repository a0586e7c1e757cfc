// ava runs the tests of one file at the same time, in one process. A test
// that changes process.env (withEnv, or an assignment) changes it for every
// test running beside it: a PATH set to '/nonexistent' for one check once hid
// p11tool from a concurrent test in CI. So every change to process.env is in
// a test.serial test or a hook (ava runs serial tests before the concurrent
// ones), directly or through a function of the same file. This reads every
// test file and holds it to that.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../helpers/paths.js';

const MUTATES = /withEnv\(|process\.env(\.\w+|\[[^\]]+\])\s*=(?!=)|Object\.assign\(process\.env|delete process\.env/;
const TEST_CALL = /^\s*test(\.\w+)*\(/;
const FUNCTION = /^(?:export )?(?:async )?function\s+(\w+)/;

interface Block {
  kind: 'concurrent' | 'serial-or-hook' | 'function';
  name: string;
  line: number;
  body: string;
}

/** Splits a test file into its test calls and its top-level functions. */
function blocks(src: string): Block[] {
  const lines = src.split('\n');
  const out: Block[] = [];
  let cur: Block | undefined;
  lines.forEach((l, i) => {
    const fn = FUNCTION.exec(l);
    const call = TEST_CALL.exec(l);
    // A line at column 0 other than a closing one ends the block before it.
    if (cur && (fn || call || /^[^\s})\]]/.test(l))) {
      out.push(cur);
      cur = undefined;
    }
    if (fn) cur = { kind: 'function', name: fn[1]!, line: i + 1, body: l };
    else if (call) {
      const kind = call[1] === undefined || call[1] === '.skip' || call[1] === '.failing' ? 'concurrent' : 'serial-or-hook';
      cur = { kind, name: l.trim().slice(0, 80), line: i + 1, body: l };
    } else if (cur) cur.body += '\n' + l;
  });
  if (cur) out.push(cur);
  return out;
}

/** The concurrent tests of a file that change process.env, as "line: title". */
export function concurrentEnvChanges(src: string): string[] {
  const bs = blocks(src);
  const mutators = new Set<string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const b of bs.filter((b) => b.kind === 'function' && !mutators.has(b.name))) {
      const callsMutator = [...mutators].some((m) => new RegExp(`\\b${m}\\(`).test(b.body.slice(b.body.indexOf('{'))));
      if (MUTATES.test(b.body) || callsMutator) {
        mutators.add(b.name);
        grew = true;
      }
    }
  }
  return bs
    .filter((b) => b.kind === 'concurrent')
    .filter((b) => MUTATES.test(b.body) || [...mutators].some((m) => new RegExp(`\\b${m}\\(`).test(b.body)))
    .map((b) => `${b.line}: ${b.name}`);
}

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

test('the check finds a concurrent test that changes process.env, directly or through a function, and passes serial ones', (t) => {
  const src = [
    "test('a', async (t) => {",
    "  await withEnv({ PATH: '/x' }, () => 1);",
    '});',
    "test.serial('b', async (t) => {",
    "  process.env.X = 'y';",
    '});',
    'async function helper() {',
    '  return withEnv({}, () => 2);',
    '}',
    'function outer() {',
    '  return helper();',
    '}',
    "test('c', async (t) => {",
    '  outer();',
    '});',
    "test.before(() => { process.env.Y = '1'; });",
    "test('d', (t) => { t.is(process.env.Y, '1'); t.true(process.env.Y == '1'); });",
  ].join('\n');
  t.deepEqual(concurrentEnvChanges(src), ["1: test('a', async (t) => {", "13: test('c', async (t) => {"]);
});

test('no test file changes process.env in a test that runs beside others', (t) => {
  // This file's own sample source above is not a test that runs.
  const files = testFiles(join(ROOT, 'test')).filter((f) => !f.endsWith('suite/env-serial.test.ts'));
  const found = files.flatMap((f) => concurrentEnvChanges(readFileSync(f, 'utf8')).map((c) => `${relative(ROOT, f)}:${c}`));
  t.true(files.length > 50, `${files.length} test files`);
  t.deepEqual(found, [], 'make these test.serial, or pass the environment to the command instead');
});
