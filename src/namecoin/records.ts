// TLS anchor records carried in a Namecoin `d/` name value.
//
// Sources (read, not copied):
// - namecoin/proposals:ifa-0001.md ("Domain Names"): the value is a UTF-8
//   JSON object; "map" holds subdomains, "*" is the wildcard subdomain, a
//   string in a map is shorthand for {"ip": [...]}, an item whose value is
//   null counts as absent; "tls" is an array of TLSA records
//   [usage, selector, matchingType, "<base64>"], extra elements after the
//   fourth MUST be ignored; base64 is RFC 4648 standard alphabet, canonical.
//   It caps values at 520 bytes (Namecoin Core: MAX_VALUE_LENGTH_UI = 520
//   for the wallet, consensus MAX_VALUE_LENGTH = 1023, src/names/main.h).
// - namecoin/ncdns:ncdomain/convert_tls.go reads the same array form at every
//   level and serves it as TLSA; ncdns and Namecoin's TLS tools publish the
//   anchors at `*.<name>.bit`, i.e. under map["*"].
//
// Forms accepted here, and nothing else:
//   {"map": {"*": {"tls": [[u, s, m, "<base64>"], ...]}}}   current convention
//   {"tls": [[u, s, m, "<base64>"], ...]}                    older values (apex)
//   {"map": {"www": {"map": {"*": {"tls": [...]}}}}}       a subdomain (ncgencert
//       -host www.example.bit prints: the "tls" field of "*.<host>"), at any
//       depth, walked as ncdns walks it (tlsItems)
// When both are present the map["*"] records come first, then the top-level
// ones. Not followed: "import" items, the "" map key and the ifa-0001
// suppression rules ("ns", "translate", "alias"); such values yield only the
// records written literally at the two places above.
//
// Refused as a whole (EngineError 'SOURCE'): anything malformed at those
// two places, including the d/ spec 2.0 port-keyed object
// (`"tls": {"tcp": {"443": [...]}}`) and ncdns' object items
// ({"dane": [...]}, {"d8": [...]}). This deliberately departs from
// ifa-0001 "Error Recovery Considerations", which asks resolvers to skip bad
// items: a partial anchor set is never returned, so a typo cannot silently
// change which keys a .bit name trusts.

import { EngineError } from '../engine/errors.js';
import { jsonSyntaxProblem } from '../jsonError.js';

/** One TLSA-like record (RFC 6698 section 2.1); `data` is a copy the caller owns. */
export interface TlsRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Uint8Array;
}

/** Why a Namecoin name has no value to read (Namecoin Core's name_show: never registered, or expired). */
export type NameAbsence = 'never existed' | 'expired';
/** What a source answers for a domain: its records, how long they may be kept (s), and whether the name itself is missing. */
export type TlsAnswer = { records: TlsRecord[]; ttl: number; absent?: NameAbsence };

/** ifa-0001 caps values at 520 bytes; we accept more in case the limit is raised. */
export const MAX_VALUE_BYTES = 64 * 1024;
/** More records than this in one name is not a configuration anyone needs. */
export const MAX_RECORDS = 32;
/** Upper bound for a full certificate or SubjectPublicKeyInfo (matching type 0). */
export const MAX_FULL_DATA_BYTES = 16 * 1024;

/** RFC 6698 s. 2.1.1: 2 = DANE-TA (trust anchor), 3 = DANE-EE (end entity). */
const USAGES = [2, 3] as const;
/** RFC 6698 s. 2.1.2: 0 = full certificate, 1 = SubjectPublicKeyInfo. */
const SELECTORS = [0, 1] as const;
/** RFC 6698 s. 2.1.3: 0 = exact data, 1 = SHA-256, 2 = SHA-512. */
const MATCHING_TYPES = [0, 1, 2] as const;
const DIGEST_BYTES: Record<number, number> = { 1: 32, 2: 64 };
const DER_SEQUENCE = 0x30;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/**
 * The TLS records of a `d/` name value. Returns [] when the value has none;
 * throws EngineError('SOURCE') naming the place and the problem when the
 * value is not JSON, or when anything at the accepted places is malformed.
 */
export function parseTlsValue(value: string, subLabels: readonly string[] = []): TlsRecord[] {
  const doc = parseValueJson(value);
  const records: TlsRecord[] = [];
  const items = tlsItems(doc, subLabels);
  // The apex's older place: the value's own top-level "tls", after map["*"]'s.
  const top = subLabels.length === 0 ? item(doc, 'tls') : undefined;
  if (top !== undefined) items.push({ path: 'tls', item: top });
  for (const { path, item } of items) records.push(...parseTlsItem(path, item));
  if (records.length > MAX_RECORDS) {
    throw refuse('tls', `${records.length} records, more than the ${MAX_RECORDS} accepted`);
  }
  return records;
}

function refuse(path: string, problem: string): EngineError {
  return new EngineError('SOURCE', `name value: ${path}: ${problem}`);
}

/** A short, printable rendering of an offending JSON value for messages. */
function show(v: unknown): string {
  const text = v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v));
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An own item of a JSON object; null counts as absent (ifa-0001). */
function item(obj: JsonObject, key: string): Json | undefined {
  if (!Object.hasOwn(obj, key)) return undefined;
  const v = obj[key];
  return v === null ? undefined : v;
}

function parseValueJson(value: string): JsonObject {
  if (typeof value !== 'string') throw refuse('(value)', `expected JSON text, got ${typeof value}`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_VALUE_BYTES) throw refuse('(value)', `${bytes} bytes, more than the ${MAX_VALUE_BYTES} accepted`);
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch (cause) {
    throw new EngineError('SOURCE', `name value: not valid JSON (${jsonSyntaxProblem(value)})`, { cause });
  }
  if (!isObject(doc)) throw refuse('(top)', `expected a JSON object, got ${show(doc)}`);
  return doc;
}

/** ncdns' map depth limit (ncdomain/convert.go depthLimit = 16). */
export const MAX_MAP_DEPTH = 16;

/**
 * The "tls" of a host H = subLabels + the registered name (the name itself
 * when there are none), found as ncdns finds the owner name `*.H`
 * (backend/backend.go _findNCValue): one label at a time from the right,
 * each matching the map's exact key, else its "*" key (which stands for
 * exactly one label), else nothing. Only the node finally reached counts: a
 * parent's records are never inherited, and a "*" node without a map of its
 * own matches no deeper name. Dotted keys (invalid in ifa-0001) never match
 * a label. Encaya asks ncdns for the same owner name (TLSA *.H), so every
 * source agrees (docs/namecoin.md).
 */
function tlsItems(doc: JsonObject, subLabels: readonly string[]): { path: string; item: Json }[] {
  const walk = [...subLabels].reverse().concat('*');
  if (walk.length > MAX_MAP_DEPTH) throw refuse('map', `${walk.length} levels of subdomain, more than the ${MAX_MAP_DEPTH} ncdns follows`);
  let node: JsonObject = doc;
  let path = '';
  for (const label of walk) {
    const map = item(node, 'map');
    if (map === undefined) return [];
    if (!isObject(map)) throw refuse(`${path}map`, `expected an object, got ${show(map)}`);
    const exact = item(map, label);
    const key = exact !== undefined ? label : '*';
    const next = exact ?? item(map, '*');
    if (next === undefined || typeof next === 'string') return []; // absent, or ifa-0001's {"ip": [...]} shorthand
    if (!isObject(next)) throw refuse(`${path}map[${JSON.stringify(key)}]`, `expected an object or a string, got ${show(next)}`);
    node = next;
    path = `${path}map[${JSON.stringify(key)}].`;
  }
  const tls = item(node, 'tls');
  return tls === undefined ? [] : [{ path: `${path}tls`, item: tls }];
}

function parseTlsItem(path: string, tls: Json): TlsRecord[] {
  if (isObject(tls)) {
    throw refuse(path, 'the port-keyed object form of the d/ 2.0 spec is not supported; expected [[usage, selector, matchingType, "<base64>"], ...]');
  }
  if (!Array.isArray(tls)) throw refuse(path, `expected an array of records, got ${show(tls)}`);
  if (tls.length > MAX_RECORDS) throw refuse(path, `${tls.length} records, more than the ${MAX_RECORDS} accepted`);
  return tls.map((rec, i) => parseRecord(`${path}[${i}]`, rec));
}

function parseRecord(path: string, rec: Json): TlsRecord {
  if (isObject(rec)) throw refuse(path, `object records such as {"dane": ...} or {"d8": ...} are not supported, got ${show(rec)}`);
  if (!Array.isArray(rec)) throw refuse(path, `expected [usage, selector, matchingType, "<base64>"], got ${show(rec)}`);
  if (rec.length < 4) throw refuse(path, `expected at least 4 elements, got ${rec.length}`);
  // ifa-0001: elements after the fourth MUST be ignored.
  const usage = byteField(`${path}[0]`, 'usage', rec[0], USAGES);
  const selector = byteField(`${path}[1]`, 'selector', rec[1], SELECTORS);
  const matchingType = byteField(`${path}[2]`, 'matching type', rec[2], MATCHING_TYPES);
  const data = associationData(`${path}[3]`, rec[3], matchingType);
  return { usage, selector, matchingType, data };
}

function byteField(path: string, field: string, v: Json | undefined, allowed: readonly number[]): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw refuse(path, `${field} ${show(v)} is not an integer`);
  if (v < 0 || v > 255) throw refuse(path, `${field} ${v} is out of range 0..255`);
  if (!allowed.includes(v)) throw refuse(path, `${field} ${v} is not supported (expected ${allowed.join(', ')})`);
  return v + 0; // JSON -0 is 0
}

function associationData(path: string, v: Json | undefined, matchingType: number): Uint8Array {
  if (typeof v !== 'string') throw refuse(path, `expected a base64 string, got ${show(v)}`);
  const data = decodeCanonicalBase64(path, v);
  const digest = DIGEST_BYTES[matchingType];
  if (digest !== undefined && data.length !== digest) {
    throw refuse(path, `matching type ${matchingType} needs a ${digest}-byte digest, got ${data.length} bytes`);
  }
  if (digest === undefined) {
    if (data.length > MAX_FULL_DATA_BYTES) throw refuse(path, `${data.length} bytes, more than the ${MAX_FULL_DATA_BYTES} accepted`);
    if (data[0] !== DER_SEQUENCE) throw refuse(path, 'full data is not a DER certificate or SubjectPublicKeyInfo (no SEQUENCE)');
  }
  return data;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** RFC 4648 s. 4 alphabet with padding, canonical per s. 3.5 (zero pad bits), non-empty. */
function decodeCanonicalBase64(path: string, text: string): Uint8Array {
  if (text.length === 0) throw refuse(path, 'empty data');
  if (!BASE64.test(text)) throw refuse(path, `${show(text)} is not padded standard base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw refuse(path, `${show(text)} is not canonical base64 (nonzero pad bits)`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length).slice();
}
