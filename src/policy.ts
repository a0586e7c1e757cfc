// Loads and validates a policy file (format: docs/policy.md, schema
// rules/policy.schema.json). Every error names the file, the place in it
// and the problem; nothing half-valid is ever returned.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EngineError } from './engine/errors.js';
import { checkAbsoluteDnsName, checkConstraintDnsName, cidrSubtree, dnsSubtree } from './engine/nameConstraints.js';
import type { AnchorKeyType } from './engine/crossSign.js';

/** What happens to one trusted upstream root. */
export type RootAction = 'fence' | 'drop' | 'pass';
export type Purpose = 'serverAuth' | 'clientAuth' | 'emailProtection' | 'codeSigning';
export type KeyFamily = 'rsa' | 'ec' | 'rsa-pss' | 'other';

export interface Override {
  id: string;
  sha256: string;
  action: RootAction;
  reason: string;
}

export interface Policy {
  file: string;
  digest: Uint8Array;
  /** The excluded dNSNames every verifier reads (absolute forms such as `bit.` are only in excludedSubtrees). */
  excludedDnsNames: string[];
  /** GeneralSubtree DER values, ready for the engine. */
  excludedSubtrees: Uint8Array[];
  anchorKey: AnchorKeyType;
  /** Purposes an anchor keeps; a root trusted for none of them is dropped. */
  trustedFor: Purpose[];
  /** Action per root property, applied in the order of docs/policy.md. */
  select: {
    expired: RootAction;
    alreadyExcluded: RootAction;
    weakSignature: RootAction;
    noCommonName: RootAction;
    keyTypes: Record<KeyFamily, RootAction>;
  };
  overrides: Override[];
}

export const DEFAULT_POLICY = fileURLToPath(new URL('../rules/default.json', import.meta.url));
/**
 * The policy each install target uses unless one is named (docs/policy.md,
 * 'Per-target policies'): browsers read default.json; system NSS programs
 * need nss.json (every IP address and bit. excluded too: NSS's CN fallback
 * and literal trailing dots); p11-kit consumers p11-kit.json (bit. too, for
 * OpenSSL over stores built from p11-kit).
 */
export const TARGET_POLICY = {
  browser: DEFAULT_POLICY,
  nss: fileURLToPath(new URL('../rules/nss.json', import.meta.url)),
  'p11-kit': fileURLToPath(new URL('../rules/p11-kit.json', import.meta.url)),
} as const;

const ACTIONS: readonly RootAction[] = ['fence', 'drop', 'pass'];
const PURPOSES: readonly Purpose[] = ['serverAuth', 'clientAuth', 'emailProtection', 'codeSigning'];
const KEY_FAMILIES: readonly KeyFamily[] = ['rsa', 'ec', 'rsa-pss', 'other'];
const SELECTORS = ['expired', 'alreadyExcluded', 'weakSignature', 'noCommonName'] as const;

class Reader {
  constructor(readonly file: string) {}

  fail(where: string, problem: string): never {
    throw new EngineError('POLICY', `${this.file}: ${where}: ${problem}`);
  }

  object(v: unknown, where: string, allowed: readonly string[]): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(where, 'expected an object');
    for (const k of Object.keys(v)) if (!allowed.includes(k)) this.fail(`${where}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
    return v as Record<string, unknown>;
  }

  oneOf<T extends string>(v: unknown, where: string, values: readonly T[], fallback?: T): T {
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(where, `expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  }

  array(v: unknown, where: string): unknown[] {
    if (!Array.isArray(v)) this.fail(where, 'expected an array');
    return v;
  }
}

function readExcluded(r: Reader, v: unknown): { names: string[]; subtrees: Uint8Array[] } {
  const excluded = r.object(v, 'excluded', ['dNSName', 'iPAddress']);
  const names = r.array(excluded.dNSName, 'excluded.dNSName');
  if (names.length === 0) r.fail('excluded.dNSName', 'must name at least one DNS name');
  const checked = names.map((n, i) => {
    if (typeof n !== 'string') r.fail(`excluded.dNSName[${i}]`, 'expected a string');
    try {
      return n.endsWith('.') ? checkAbsoluteDnsName(n) : checkConstraintDnsName(n);
    } catch (e) {
      return r.fail(`excluded.dNSName[${i}]`, (e as Error).message);
    }
  });
  if (checked.every((n) => n.endsWith('.'))) r.fail('excluded.dNSName', 'must name at least one DNS name without a trailing dot (the form every verifier reads)');
  const ranges = r.array(excluded.iPAddress ?? [], 'excluded.iPAddress').map((c, i) => {
    if (typeof c !== 'string') r.fail(`excluded.iPAddress[${i}]`, 'expected a string such as "0.0.0.0/0"');
    try {
      return cidrSubtree(c);
    } catch (e) {
      return r.fail(`excluded.iPAddress[${i}]`, (e as Error).message);
    }
  });
  return { names: checked.filter((n) => !n.endsWith('.')), subtrees: [...checked.map(dnsSubtree), ...ranges] };
}

function readSelect(r: Reader, v: unknown): Policy['select'] {
  const s = r.object(v ?? {}, 'select', [...SELECTORS, 'keyTypes']);
  const keys = r.object(s.keyTypes ?? {}, 'select.keyTypes', KEY_FAMILIES);
  const keyTypes = Object.fromEntries(KEY_FAMILIES.map((k) => [k, r.oneOf(keys[k], `select.keyTypes.${k}`, ACTIONS, 'fence')])) as Record<KeyFamily, RootAction>;
  const out = { keyTypes } as Policy['select'];
  for (const sel of SELECTORS) out[sel] = r.oneOf(s[sel], `select.${sel}`, ACTIONS, 'fence');
  for (const [k, a] of Object.entries(keyTypes)) if (a === 'pass') r.fail(`select.keyTypes.${k}`, '"pass" would leave roots unfenced; use "fence" or "drop"');
  for (const sel of ['expired', 'weakSignature', 'noCommonName'] as const) {
    if (out[sel] === 'pass') r.fail(`select.${sel}`, '"pass" would leave roots unfenced; use "fence" or "drop"');
  }
  return out;
}

function readOverrides(r: Reader, v: unknown): Override[] {
  const seen = new Set<string>();
  return r.array(v ?? [], 'overrides').map((raw, i) => {
    const o = r.object(raw, `overrides[${i}]`, ['id', 'sha256', 'action', 'reason']);
    const where = typeof o.id === 'string' ? `overrides[${i}] (id ${o.id})` : `overrides[${i}]`;
    if (typeof o.id !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(o.id)) r.fail(`${where}.id`, 'expected a stable id: lowercase letters, digits, ".", "_", "-"');
    if (seen.has(o.id)) r.fail(`${where}.id`, 'duplicate id');
    seen.add(o.id);
    if (typeof o.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(o.sha256)) r.fail(`${where}.sha256`, 'expected the root certificate\'s SHA-256 as 64 hex digits');
    if (typeof o.reason !== 'string' || o.reason.trim() === '') r.fail(`${where}.reason`, 'expected a non-empty reason');
    return { id: o.id, sha256: o.sha256.toLowerCase(), action: r.oneOf(o.action, `${where}.action`, ACTIONS), reason: o.reason };
  });
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
  const r = new Reader(file);
  const d = r.object(doc, '(top)', ['$schema', 'schema', 'description', 'excluded', 'anchorKey', 'trustedFor', 'select', 'overrides']);
  if (d.schema !== 1) r.fail('schema', `unsupported schema ${JSON.stringify(d.schema)}, expected 1`);
  const excluded = readExcluded(r, d.excluded);
  const trustedFor = d.trustedFor === undefined ? [...PURPOSES] : r.array(d.trustedFor, 'trustedFor').map((p, i) => r.oneOf(p, `trustedFor[${i}]`, PURPOSES));
  return {
    file,
    digest: new Uint8Array(createHash('sha256').update(raw).digest()),
    excludedDnsNames: excluded.names,
    excludedSubtrees: excluded.subtrees,
    anchorKey: r.oneOf(d.anchorKey, 'anchorKey', ['P-256', 'P-384'] as const, 'P-256'),
    trustedFor,
    select: readSelect(r, d.select),
    overrides: readOverrides(r, d.overrides),
  };
}
