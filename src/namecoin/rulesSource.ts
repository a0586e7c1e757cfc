// Local anchor rules: domains pinned to keys in a file the user controls
// (docs/namecoin.md). Same record shape as a Namecoin name value's "tls".
// {"schema": 1, "domains": {"example.bit": [[2, 1, 0, "<base64 SPKI>"]]}}

import { readFileSync } from 'node:fs';
import { EngineError } from '../engine/errors.js';
import type { TlsRecord } from './chain.js';
import type { TlsSource } from './lookup.js';

export function loadRules(file: string): Map<string, TlsRecord[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new EngineError('POLICY', `${file}: cannot read Namecoin rules: ${(cause as Error).message}`, { cause });
  }
  const d = doc as { schema?: unknown; domains?: unknown };
  if (typeof d !== 'object' || d === null || d.schema !== 1) throw new EngineError('POLICY', `${file}: schema: expected 1`);
  if (typeof d.domains !== 'object' || d.domains === null) throw new EngineError('POLICY', `${file}: domains: expected an object`);
  const out = new Map<string, TlsRecord[]>();
  for (const [domain, recs] of Object.entries(d.domains as Record<string, unknown>)) {
    // A domain or a subdomain at any depth; a key pins that host exactly (no inheritance, as in ncdns).
    if (domain.length > 253 || !/^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.bit$/.test(domain)) throw new EngineError('POLICY', `${file}: domains.${domain}: not a lowercase .bit domain or subdomain`);
    if (!Array.isArray(recs)) throw new EngineError('POLICY', `${file}: domains.${domain}: expected an array of records`);
    out.set(
      domain,
      recs.map((r, i) => {
        const where = `${file}: domains.${domain}[${i}]`;
        if (!Array.isArray(r) || r.length !== 4) throw new EngineError('POLICY', `${where}: expected [usage, selector, matchingType, base64]`);
        const [usage, selector, matchingType, b64] = r as unknown[];
        for (const [k, v] of [['usage', usage], ['selector', selector], ['matchingType', matchingType]] as const) {
          if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 255) throw new EngineError('POLICY', `${where}: ${k}: expected an integer 0..255`);
        }
        if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]+=*$/.test(b64)) throw new EngineError('POLICY', `${where}: data: expected base64`);
        return { usage: usage as number, selector: selector as number, matchingType: matchingType as number, data: new Uint8Array(Buffer.from(b64, 'base64')) };
      }),
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
