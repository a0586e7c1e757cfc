// Loads and validates a policy file from rules/. The walking skeleton knows
// one rule: the DNS names every fenced root excludes.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EngineError } from './engine/errors.js';
import { checkConstraintDnsName, dnsSubtree } from './engine/nameConstraints.js';

export interface Policy {
  file: string;
  digest: Uint8Array;
  excludedDnsNames: string[];
  /** GeneralSubtree DER values, ready for the engine. */
  excludedSubtrees: Uint8Array[];
}

export const DEFAULT_POLICY = fileURLToPath(new URL('../rules/default.json', import.meta.url));

function fail(file: string, where: string, problem: string): never {
  throw new EngineError('POLICY', `${file}: ${where}: ${problem}`);
}

export function loadPolicy(file: string = DEFAULT_POLICY): Policy {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (cause) {
    throw new EngineError('POLICY', `${file}: cannot read policy: ${(cause as Error).message}`, { cause });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (cause) {
    throw new EngineError('POLICY', `${file}: not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail(file, '(top)', 'expected an object');
  const d = doc as Record<string, unknown>;
  if (d.schema !== 1) fail(file, 'schema', `unsupported schema ${JSON.stringify(d.schema)}, expected 1`);
  const excluded = d.excluded as Record<string, unknown> | undefined;
  if (typeof excluded !== 'object' || excluded === null) fail(file, 'excluded', 'expected an object');
  for (const k of Object.keys(excluded)) if (k !== 'dNSName') fail(file, `excluded.${k}`, 'unknown name type');
  const names = excluded.dNSName;
  if (!Array.isArray(names) || names.length === 0) fail(file, 'excluded.dNSName', 'expected a non-empty array');
  const checked = names.map((n, i) => {
    if (typeof n !== 'string') fail(file, `excluded.dNSName[${i}]`, 'expected a string');
    try {
      return checkConstraintDnsName(n);
    } catch (e) {
      return fail(file, `excluded.dNSName[${i}]`, (e as Error).message);
    }
  });
  return {
    file,
    digest: new Uint8Array(createHash('sha256').update(raw).digest()),
    excludedDnsNames: checked,
    excludedSubtrees: checked.map(dnsSubtree),
  };
}
