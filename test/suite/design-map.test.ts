// docs/design.md's "Map of modules" is where a maintainer looks up what a
// file holds and what it may use (issue 21). It stays true only if adding,
// removing or renaming a file shows here: every source file of the module
// (addon/), the command (src/) and the build (scripts/) is named in the map,
// and every file the map names exists.

import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { ROOT } from '../helpers/paths.js';

const SOURCE = /\.(c|h|cc|ts|mjs|cjs)$/;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return SOURCE.test(name) ? [relative(ROOT, p)] : [];
  });
}

const files = ['addon', 'src', 'scripts'].flatMap((d) => sources(join(ROOT, d)));
const design = readFileSync(join(ROOT, 'docs/design.md'), 'utf8');
const start = design.indexOf('## Map of modules');
const map = design.slice(start);
// File names the map writes in backquotes: `plan.ts`, `asn1/der.ts`, `addon/trust.c`.
const named = [...map.matchAll(/`([\w./-]+\.(?:c|h|cc|ts|mjs|cjs))`/g)].map((m) => m[1]!);

test('docs/design.md has a map of modules', (t) => {
  t.true(start > 0, 'no "## Map of modules" heading in docs/design.md');
  t.true(files.length > 80, `found only ${files.length} source files`);
});

test('every source file is named in the map of modules', (t) => {
  // A file is named by its path from a folder down (`asn1/der.ts`), or by its
  // own name where the paragraph is its folder's.
  const missing = files.filter((f) => !named.some((n) => f.endsWith(`/${n}`) || f === n) && !map.includes(`\`${basename(f)}\``));
  t.deepEqual(missing, [], `not in docs/design.md's map: ${missing.join(', ')}`);
});

test('every file the map of modules names exists', (t) => {
  const gone = named.filter((n) => !n.startsWith('test/') && !files.some((f) => f === n || f.endsWith(`/${n}`)));
  t.deepEqual(gone, [], `named in docs/design.md's map but not in the repository: ${gone.join(', ')}`);
});

test('self-check: a file left out of the map, and a name in it that does not exist, are both seen', (t) => {
  t.false(map.includes('`no-such-module.ts`'));
  t.false(files.some((f) => f.endsWith('/no-such-module.ts')));
  // The matcher picks names out of prose as the map writes them.
  const found = [...'the plan (`plan.ts`) and DER (`asn1/der.ts`)'.matchAll(/`([\w./-]+\.(?:c|h|cc|ts|mjs|cjs))`/g)].map((m) => m[1]);
  t.deepEqual(found, ['plan.ts', 'asn1/der.ts']);
});
