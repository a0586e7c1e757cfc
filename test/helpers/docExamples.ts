// The shell examples of README.md and docs/*.md, as a reader follows them:
// every fenced `sh` block of a page, in order, in one shell, in one scratch
// directory. A block's commented lines that start with "#   " (a hash and
// three spaces) are the output expected of the commands above them since
// the previous such lines, stdout and stderr together as a terminal shows
// them: compared line by line with runs of white space made one space;
// "..." inside a line stands for any text, a line of just "..." for any
// number of lines.
//
// A block that cannot run here is marked on the line before it:
//   <!-- example: skip: REASON; run by: FILE[, FILE...] -->
// FILE names the test (or CI script) that runs its commands; each FILE must
// exist and, for every `ncfence COMMAND [TARGET]` in the block, some FILE
// must hold that command and that target as quoted words (tests run them
// with --dir, --root or --user in a copy, never on this machine's own).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Marker {
  skip: string;
  runBy: string[];
}

export interface ShellBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
  marker?: Marker;
}

const MARKER = /^<!--\s*example:\s*(.*?)\s*-->$/;

export function parseMarker(body: string): Marker {
  const m = /^skip:\s*(.+?);\s*run by:\s*(.+)$/.exec(body);
  if (!m) throw new Error(`an example marker reads "<!-- example: skip: REASON; run by: FILE, ... -->", got "${body}"`);
  return { skip: m[1]!, runBy: m[2]!.split(',').map((f) => f.trim()).filter(Boolean) };
}

/** The fenced sh/bash/shell blocks of a Markdown file, dedented, with the marker above each. */
export function shellBlocks(root: string, file: string): ShellBlock[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const out: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^\\s{0,${indent}}\`\`\`\\s*$`).test(lines[j]!)) j++;
    if (['sh', 'bash', 'shell'].includes(open[2]!)) {
      let k = i - 1;
      while (k >= 0 && lines[k]!.trim() === '') k--;
      const m = k >= 0 ? MARKER.exec(lines[k]!.trim()) : null;
      out.push({ file, line: i + 1, text: lines.slice(i + 1, j).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join('\n'), marker: m ? parseMarker(m[1]!) : undefined });
    }
    i = j;
  }
  return out;
}

export interface Step {
  /** Shell text of the step. */
  script: string;
  /** Expected output lines (without the "#   " prefix), or undefined when the step shows none. */
  expected?: string[];
}

const EXPECTED = /^#   (.*)$/;

/** Splits a block at each run of expected-output lines. */
export function steps(block: string): Step[] {
  const out: Step[] = [];
  let script: string[] = [];
  let expected: string[] | undefined;
  for (const line of block.split('\n')) {
    const m = EXPECTED.exec(line);
    if (m) {
      (expected ??= []).push(m[1]!);
      continue;
    }
    if (expected) {
      out.push({ script: script.join('\n'), expected });
      script = [];
      expected = undefined;
    }
    script.push(line);
  }
  out.push({ script: script.join('\n'), expected });
  return out.filter((s) => s.script.trim() !== '' || s.expected);
}

const norm = (s: string): string => s.replace(/\s+/g, ' ').trim();

function lineMatches(pattern: string, line: string): boolean {
  const re = new RegExp(`^${norm(pattern).split('...').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(norm(line));
}

/** Whether `actual` lines are exactly the expected ones ("..." lines take any number of lines). */
export function outputMatches(expected: readonly string[], actual: readonly string[]): boolean {
  const got = actual.filter((l) => norm(l) !== '');
  const want = expected.filter((l) => norm(l) !== '');
  const memo = new Map<string, boolean>();
  const at = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    if (memo.has(key)) return memo.get(key)!;
    let r: boolean;
    if (i === want.length) r = j === got.length;
    else if (norm(want[i]!) === '...') r = at(i + 1, j) || (j < got.length && at(i, j + 1));
    else r = j < got.length && lineMatches(want[i]!, got[j]!) && at(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return at(0, 0);
}

/** The `ncfence COMMAND [TARGET]` pairs a block runs (sudo and options aside). */
export function ncfenceCommands(block: string): string[][] {
  const out: string[][] = [];
  for (const raw of block.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+#.*$/, '');
    for (const m of line.matchAll(/(?:^|[\s;&|(])ncfence\s+(build|install|uninstall|status|doctor|serve|bench)((?:\s+[^\s-][^\s]*)?)/g)) {
      const target = m[2]!.trim();
      out.push(target && !/[$/=]/.test(target) ? [m[1]!, target] : [m[1]!]);
    }
  }
  return out;
}

/** What is wrong with a marker: a file it names that does not exist, or an ncfence command none of them runs. */
export function markerProblems(root: string, block: ShellBlock): string[] {
  const problems: string[] = [];
  const texts = block.marker!.runBy.map((f) => {
    if (!existsSync(join(root, f))) {
      problems.push(`run by ${f}: no such file`);
      return '';
    }
    return readFileSync(join(root, f), 'utf8');
  });
  // A test runs `ncfence install thunderbird` as ['install', c.target] over a table of targets: the
  // command and its target must both be in one of the files, each as a quoted word.
  for (const words of ncfenceCommands(block.text)) {
    const has = (t: string): boolean => words.every((w) => new RegExp(`['"\`\\s]${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"\`\\s]`).test(t));
    if (!texts.some(has)) problems.push(`none of ${block.marker!.runBy.join(', ')} runs ncfence ${words.join(' ')}`);
  }
  return problems;
}
