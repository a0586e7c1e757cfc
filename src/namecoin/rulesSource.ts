// Local anchor rules: domains pinned to keys in a file the user controls
// (docs/namecoin.md). Same record shape as a Namecoin name value's "tls".
// {"schema": 1, "domains": {"example.bit": [[2, 1, 0, "<base64 SPKI>"]]}}
//
// Every entry is checked when the service starts, and the file is refused,
// naming the entry, when one would never vouch for anything: a record
// ncfence does not use (chain.ts vouchedKeys: usage 2, selector 1, matching
// type 0 or 1), a key that does not parse, a digest of the wrong length. A
// typo found only at lookup time shows in the browser as "unknown issuer",
// far from its cause.

import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EngineError } from '../engine/errors.js';
import { jsonSyntaxProblem } from '../jsonError.js';
import { describePathError } from '../systemError.js';
import { MAX_RECORDS, type TlsRecord } from './records.js';
import type { TlsSource } from './lookup.js';
import { isBitName } from './names.js';

/** What ncfence does with each field's values (RFC 6698 s. 2.1; chain.ts vouchedKeys). */
const FIELD_RULES: { key: 'usage' | 'selector' | 'matchingType'; allowed: readonly number[]; meaning: string }[] = [
  { key: 'usage', allowed: [2], meaning: '2 (DANE-TA: the key of a CA for the name); ncfence uses no other usage' },
  { key: 'selector', allowed: [1], meaning: '1 (the SubjectPublicKeyInfo); ncfence uses no other selector' },
  { key: 'matchingType', allowed: [0, 1], meaning: '0 (the whole key) or 1 (its SHA-256, for chains that staple their key)' },
];

function fail(where: string, problem: string): never {
  throw new EngineError('POLICY', `${where}: ${problem}`);
}

/** One `[usage, selector, matchingType, base64]` entry, checked as a whole. */
function readRecord(where: string, r: unknown): TlsRecord {
  if (!Array.isArray(r) || r.length !== 4) fail(where, 'expected [usage, selector, matchingType, "<base64>"]');
  const [usage, selector, matchingType, b64] = r as unknown[];
  const fields = { usage, selector, matchingType };
  for (const f of FIELD_RULES) {
    const v = fields[f.key];
    if (!f.allowed.includes(v as number)) fail(where, `${f.key} ${JSON.stringify(v)}: expected ${f.meaning}`);
  }
  const bytes = typeof b64 === 'string' ? Buffer.from(b64, 'base64') : undefined;
  if (!bytes || bytes.length === 0 || bytes.toString('base64') !== b64) fail(where, 'data: expected standard base64 (RFC 4648 section 4, with its "=" padding)');
  const data = new Uint8Array(bytes);
  if (matchingType === 1 && data.length !== 32) fail(where, `data: matching type 1 is a SHA-256 digest, 32 bytes, got ${data.length}`);
  if (matchingType === 0) {
    try {
      createPublicKey({ key: Buffer.from(data), format: 'der', type: 'spki' });
    } catch (cause) {
      throw new EngineError('POLICY', `${where}: data: not a public key (matching type 0 is the whole DER SubjectPublicKeyInfo, e.g. openssl pkey -pubout -outform DER | base64 -w0)`, { cause });
    }
  }
  return { usage: usage as number, selector: selector as number, matchingType: matchingType as number, data };
}

export function loadRules(file: string): Map<string, TlsRecord[]> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new EngineError('POLICY', `cannot read the Namecoin rules: ${describePathError(cause, file)}`, { cause });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new EngineError('POLICY', `${file}: not valid JSON: ${jsonSyntaxProblem(text)}`, { cause });
  }
  const d = doc as { schema?: unknown; domains?: unknown };
  if (typeof d !== 'object' || d === null || d.schema !== 1) throw new EngineError('POLICY', `${file}: schema: expected 1`);
  if (typeof d.domains !== 'object' || d.domains === null || Array.isArray(d.domains)) throw new EngineError('POLICY', `${file}: domains: expected an object`);
  const extra = Object.keys(d).filter((k) => k !== 'schema' && k !== 'domains');
  if (extra.length) throw new EngineError('POLICY', `${file}: ${extra[0]}: unknown field (allowed: schema, domains)`);
  const out = new Map<string, TlsRecord[]>();
  for (const [domain, recs] of Object.entries(d.domains as Record<string, unknown>)) {
    // A domain or a subdomain at any depth; a key pins that host exactly (no inheritance, as in ncdns).
    if (!isBitName(domain)) fail(`${file}: domains.${domain}`, 'not a lowercase .bit domain or subdomain');
    if (!Array.isArray(recs)) fail(`${file}: domains.${domain}`, 'expected an array of records');
    // As many as a name value may hold.
    if (recs.length > MAX_RECORDS) fail(`${file}: domains.${domain}`, `${recs.length} records, more than the ${MAX_RECORDS} accepted`);
    out.set(
      domain,
      recs.map((r, i) => readRecord(`${file}: domains.${domain}[${i}]`, r)),
    );
  }
  return out;
}

export function rulesSource(file: string): TlsSource {
  const rules = loadRules(file);
  return {
    name: `rules ${file}`,
    lookup: async (domain) => ({ records: rules.get(domain) ?? [], ttl: 600 }),
  };
}
