// The module's files call each other without a circle (issue 21): shared
// state and helpers sit below the files that use them, so each file can be
// read, and changed, knowing only the files under it. Measured on the
// object files: file A depends on file B when A uses a symbol B defines
// (nm), which is what the linker sees, whatever the headers say.

import test from 'ava';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ROOT } from '../helpers/paths.js';
import { MODULE_SOURCES } from '../helpers/native.js';
import { requireTool, runOk } from '../helpers/run.js';

/** file -> the files whose symbols it uses (never itself). */
async function dependencies(dir: string): Promise<Map<string, Set<string>>> {
  const definedBy = new Map<string, string>();
  const uses = new Map<string, string[]>();
  for (const src of MODULE_SOURCES) {
    const name = basename(src, '.c');
    const obj = join(dir, `${name}.o`);
    await runOk('gcc', ['-std=c11', '-O0', '-c', '-I/usr/include/p11-kit-1', '-o', obj, src], { timeoutMs: 60_000 });
    for (const line of (await runOk('nm', ['-g', '--defined-only', obj])).stdout.split('\n')) {
      const sym = line.trim().split(/\s+/)[2];
      if (sym) definedBy.set(sym, name);
    }
    uses.set(name, (await runOk('nm', ['-u', obj])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[1] ?? '').filter(Boolean));
  }
  const graph = new Map<string, Set<string>>();
  for (const [name, syms] of uses) {
    const to = new Set<string>();
    for (const s of syms) {
      const d = definedBy.get(s);
      if (d !== undefined && d !== name) to.add(d);
    }
    graph.set(name, to);
  }
  return graph;
}

/** The strongly connected components of more than one file (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

test('addon/: no file depends, through any chain of calls, on a file that depends on it', async (t) => {
  await requireTool('gcc');
  await requireTool('nm');
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-deps-'));
  try {
    const graph = await dependencies(dir);
    t.is(graph.size, readdirSync(join(ROOT, 'addon')).filter((f) => f.endsWith('.c')).length);
    t.log([...graph].map(([f, to]) => `${f} -> ${[...to].sort().join(' ') || '(nothing)'}`).join('\n'));
    t.deepEqual(cycles(graph), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
