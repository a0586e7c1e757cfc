// Loads and validates a policy file (format: docs/policy.md, schema
// rules/policy.schema.json). Every error names the file, the place in it
// and the problem; nothing half-valid is ever returned.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { fileURLToPath } from 'node:url';
import { EngineError } from './engine/errors.js';
import { jsonSyntaxProblem } from './jsonError.js';
import { describePathError } from './systemError.js';
import { checkAbsoluteDnsName, checkConstraintDnsName, checkConstraintMailDomain, cidrSubtree, dnsSubtree, rfc822Subtree } from './engine/nameConstraints.js';
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
  /** The excluded rfc822Name hosts (`bit`) and domains (`.bit`). */
  excludedMailDomains: string[];
  /** GeneralSubtree DER values, ready for the engine. */
  excludedSubtrees: Uint8Array[];
  /**
   * `excludedForNss` as GeneralSubtrees (empty when the policy has none):
   * when present, each root gets a second R' excluding these as well, which
   * the module serves wherever NSS may be in the process (docs/policy.md,
   * 'Two forms of R'').
   */
  nssSubtrees: Uint8Array[];
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

/**
 * The policy `ncfence build` uses when none is named: the one for the
 * programs that read what it wraps (docs/policy.md, 'Which policy build
 * uses'). `upstream` is the module's real path; `browser` a browser build.
 * A browser's own roots are read by the browser (default.json). NSS's
 * built-in roots module is read by NSS programs (nss.json). Any other
 * module, p11-kit-trust included (on Fedora it is libnssckbi.so), may be
 * read by NSS and by p11-kit consumers: p11-kit.json, whose NSS form serves
 * NSS and any process the module cannot place (never default.json, which
 * leaves NSS the CN-fallback and trailing-dot holes).
 */
export function policyForUpstream(upstream: string, browser: boolean): string {
  if (browser) return TARGET_POLICY.browser;
  const name = upstream.slice(upstream.lastIndexOf('/') + 1);
  return /^libnssckbi\.so(\.|$)/.test(name) ? TARGET_POLICY.nss : TARGET_POLICY['p11-kit'];
}

const PURPOSES: readonly Purpose[] = ['serverAuth', 'clientAuth', 'emailProtection', 'codeSigning'];
const KEY_FAMILIES: readonly KeyFamily[] = ['rsa', 'ec', 'rsa-pss', 'other'];
const SELECTORS = ['expired', 'alreadyExcluded', 'weakSignature', 'noCommonName'] as const;

/** Where a policy error is, for the message: `excluded.dNSName[0]`, `overrides[1] (id same).id`, `(top)`. */
function placeOf(doc: unknown, instancePath: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = '';
  let node: unknown = doc;
  parts.forEach((p, i) => {
    if (Array.isArray(node)) {
      const el: unknown = node[Number(p)];
      out += `[${p}]`;
      const id = (el as { id?: unknown } | undefined)?.id;
      if (parts[i - 1] === 'overrides' && typeof id === 'string') out += ` (id ${id})`;
      node = el;
    } else {
      out += out ? `.${p}` : p;
      node = (node as Record<string, unknown> | undefined)?.[p];
    }
  });
  return out || '(top)';
}

const joinPlace = (place: string, field: string): string => (place === '(top)' ? field : `${place}.${field}`);

/** One schema error as ncfence words it: the place, then what is wrong, with the schema's description where it has one. */
function describeSchemaError(doc: unknown, e: ErrorObject): [string, string] {
  const place = placeOf(doc, e.instancePath);
  const value = e.data;
  const described = (e.parentSchema as { description?: string } | undefined)?.description;
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return [joinPlace(place, (e.params as { additionalProperty: string }).additionalProperty), `unknown field (allowed: ${allowed.join(', ')})`];
    }
    case 'required':
      return [joinPlace(place, (e.params as { missingProperty: string }).missingProperty), 'required'];
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      if (value === 'pass' && !allowed.includes('pass')) return [place, '"pass" would leave roots unfenced; use "fence" or "drop"'];
      return [place, `expected one of ${allowed.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(value)}`];
    }
    case 'const':
      return [place, `unsupported schema ${JSON.stringify(value)}, expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`];
    case 'minItems':
      return [place, `must name at least ${(e.params as { limit: number }).limit === 1 ? 'one' : (e.params as { limit: number }).limit} ${described ? `(${described})` : 'entry'}`];
    case 'pattern':
    case 'minLength':
      return [place, `expected ${described ?? `a string matching ${(e.params as { pattern?: string }).pattern ?? 'its pattern'}`}, got ${JSON.stringify(value)}`];
    case 'type':
      return [place, `expected ${(e.params as { type: string }).type}, got ${JSON.stringify(value)}`];
    default:
      return [place, e.message ?? 'invalid'];
  }
}

export const POLICY_SCHEMA_FILE = fileURLToPath(new URL('../rules/policy.schema.json', import.meta.url));
/**
 * The validator `npm run build` generates from the schema
 * (scripts/policy-validator.mjs). src/ and dist/ sit side by side, so this
 * names dist/policy-validator.cjs from either.
 */
export const POLICY_VALIDATOR_FILE = fileURLToPath(new URL('../dist/policy-validator.cjs', import.meta.url));
/** How the schema is compiled, ahead of time and in the fallback alike. */
export const POLICY_AJV_OPTIONS = { allErrors: false, strict: false, verbose: true } as const;

/** Where a validator came from: generated at build time, or the schema compiled in this process. */
export type ValidatorSource = 'generated' | 'compiled';
type ShapeValidator = { validate: ValidateFunction; source: ValidatorSource };
const validators = new Map<string, ShapeValidator>();

/**
 * The validator for the schema whose bytes are `schema`: the generated one
 * when it was made from exactly these bytes, else the schema compiled here
 * (a schema edited after the build, or sources run without one). Either
 * way the schema is the only source of the rules.
 */
export function policyValidator(schema: Buffer, generatedFile = POLICY_VALIDATOR_FILE): ShapeValidator {
  const digest = createHash('sha256').update(schema).digest('hex');
  const key = `${generatedFile}\0${digest}`;
  let found = validators.get(key);
  if (found) return found;
  const load = createRequire(import.meta.url);
  let generated: (ValidateFunction & { schemaSha256?: unknown }) | undefined;
  try {
    generated = load(generatedFile) as ValidateFunction & { schemaSha256?: unknown };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
  }
  if (generated?.schemaSha256 === digest) {
    found = { validate: generated, source: 'generated' };
  } else {
    // ajv is CommonJS: its class is the module itself or its default export.
    const ajv = load('ajv/dist/2020.js') as { default?: unknown };
    const AjvClass = (ajv.default ?? ajv) as new (o: object) => { compile(s: object): ValidateFunction };
    found = { validate: new AjvClass(POLICY_AJV_OPTIONS).compile(JSON.parse(schema.toString('utf8')) as object), source: 'compiled' };
  }
  validators.set(key, found);
  return found;
}

/**
 * The policy's shape, checked against rules/policy.schema.json itself: one
 * source of truth for editors and for ncfence (review: the code re-stated the
 * schema). What a schema cannot say (a DNS name's length, a CIDR's host bits,
 * unique override ids) is checked in code after it.
 */
function checkShape(file: string, doc: unknown): void {
  const { validate } = policyValidator(readFileSync(POLICY_SCHEMA_FILE));
  if (!validate(doc)) {
    const [place, problem] = describeSchemaError(doc, validate.errors![0]!);
    throw new EngineError('POLICY', `${file}: ${place}: ${problem}`);
  }
}

function fail(file: string, where: string, problem: string): never {
  throw new EngineError('POLICY', `${file}: ${where}: ${problem}`);
}

type ExcludedDoc = { dNSName?: string[]; rfc822Name?: string[]; iPAddress?: string[] };

interface PolicyDoc {
  excluded: ExcludedDoc & { dNSName: string[] };
  excludedForNss?: ExcludedDoc;
  anchorKey?: AnchorKeyType;
  trustedFor?: Purpose[];
  select?: Partial<Record<(typeof SELECTORS)[number], RootAction>> & { keyTypes?: Partial<Record<KeyFamily, RootAction>> };
  overrides?: Override[];
}

/** One `excluded` block's names as GeneralSubtrees; `at` is its place in the file. */
function readSubtrees(file: string, at: string, excluded: ExcludedDoc): { names: string[]; mail: string[]; subtrees: Uint8Array[] } {
  const each = <T>(list: string[] | undefined, field: string, check: (v: string) => T): T[] =>
    (list ?? []).map((v, i) => {
      try {
        return check(v);
      } catch (e) {
        return fail(file, `${at}.${field}[${i}]`, (e as Error).message);
      }
    });
  const names = each(excluded.dNSName, 'dNSName', (n) => (n.endsWith('.') ? checkAbsoluteDnsName(n) : checkConstraintDnsName(n)));
  const mail = each(excluded.rfc822Name, 'rfc822Name', checkConstraintMailDomain);
  const ranges = each(excluded.iPAddress, 'iPAddress', cidrSubtree);
  return { names, mail, subtrees: [...names.map(dnsSubtree), ...mail.map(rfc822Subtree), ...ranges] };
}

function readExcluded(file: string, d: PolicyDoc): { names: string[]; mail: string[]; subtrees: Uint8Array[]; nss: Uint8Array[] } {
  const always = readSubtrees(file, 'excluded', d.excluded);
  if (always.names.every((n) => n.endsWith('.'))) fail(file, 'excluded.dNSName', 'must name at least one DNS name without a trailing dot (the form every verifier reads)');
  const nss = d.excludedForNss ? readSubtrees(file, 'excludedForNss', d.excludedForNss).subtrees : [];
  if (d.excludedForNss && nss.length === 0) fail(file, 'excludedForNss', 'names nothing (leave it out instead)');
  return { names: always.names.filter((n) => !n.endsWith('.')), mail: always.mail, subtrees: always.subtrees, nss };
}

function readSelect(s: PolicyDoc['select'] = {}): Policy['select'] {
  const keyTypes = Object.fromEntries(KEY_FAMILIES.map((k) => [k, s.keyTypes?.[k] ?? 'fence'])) as Record<KeyFamily, RootAction>;
  const out = { keyTypes } as Policy['select'];
  for (const sel of SELECTORS) out[sel] = s[sel] ?? 'fence';
  return out;
}

function readOverrides(file: string, overrides: Override[] = []): Override[] {
  const seen = new Set<string>();
  return overrides.map((o, i) => {
    const where = `overrides[${i}] (id ${o.id})`;
    if (seen.has(o.id)) fail(file, `${where}.id`, 'duplicate id');
    seen.add(o.id);
    if (o.reason.trim() === '') fail(file, `${where}.reason`, 'expected a non-empty reason');
    return { id: o.id, sha256: o.sha256.toLowerCase(), action: o.action, reason: o.reason };
  });
}

export function loadPolicy(file: string = DEFAULT_POLICY): Policy {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (cause) {
    throw new EngineError('POLICY', `cannot read the policy: ${describePathError(cause, file)}`, { cause });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (cause) {
    throw new EngineError('POLICY', `${file}: not valid JSON: ${jsonSyntaxProblem(raw.toString('utf8'))}`, { cause });
  }
  checkShape(file, doc);
  const d = doc as PolicyDoc;
  const excluded = readExcluded(file, d);
  return {
    file,
    digest: new Uint8Array(createHash('sha256').update(raw).digest()),
    excludedDnsNames: excluded.names,
    excludedMailDomains: excluded.mail,
    excludedSubtrees: excluded.subtrees,
    nssSubtrees: excluded.nss,
    anchorKey: d.anchorKey ?? 'P-256',
    trustedFor: d.trustedFor ?? [...PURPOSES],
    select: readSelect(d.select),
    overrides: readOverrides(file, d.overrides),
  };
}
