// Namecoin's "certified" mode: a Domain AIA Parent CA key vouched for by a
// message signature of the address that owns the name, stapled in the
// issuer name, with no TLS record on the blockchain (docs/namecoin.md).
//
// What this follows (read, not copied):
// - namecoin/ncgencert aiaparent.go: the AIA parent's subject serialNumber is
//   "Namecoin TLS Certificate\n\nStapled: " + Go json.Marshal of a
//   map[string]string: "pubb64" (the key's SubjectPublicKeyInfo, base64
//   RawURLEncoding) and, with -sigs FILE, "sigs" (that file's text, a JSON
//   list of {"blockchainaddress", "blockchainsig"}). The message the owner
//   signs is "Namecoin X.509 Stapled Certification: " + json.Marshal of
//   {"address", "domain", "x509pub"} (Go sorts map keys).
// - namecoin/ncp11 backend_namecoin_positive.go queryPkixName: that JSON is
//   unmarshalled into a map[string]string and every entry handed to Encaya.
// - namecoin/encaya verifystapled/verify.go StapledData.Verify: the name is
//   "d/" + the label before ".bit"; the message is rebuilt from the stapled
//   key, the requested domain and the signature's address (plus "notafter"
//   when stapled); only a signature whose "blockchainaddress" is the name's
//   current owner per name_show is checked, with Namecoin Core's
//   verifymessage; the first that verifies vouches for the key.
// - namecoin/safetlsa generate_domain_ca.go: a stapled "notafter" (Unix
//   seconds, strconv.ParseInt base 10) caps the synthesized CA's notAfter.
// - namecoin/namecoin-core src/common/signmessage.cpp MessageVerify and
//   MessageHash (SHA-256d of the serialized "Namecoin Signed Message:\n" and
//   message), src/pubkey.cpp RecoverCompact (header byte: recid = (h-27)&3,
//   compressed = (h-27)&4), src/util/strencodings.cpp DecodeBase64 (strict),
//   src/kernel/chainparams.cpp (P2PKH address versions: 52 mainnet, 111
//   testnet and regtest). Only P2PKH addresses can verify a message. The key
//   recovery is libsecp256k1's, through addon/node/recover.cc, with the
//   calls RecoverCompact makes.
// Where Go is lenient and the result would be the same or a refusal anyway
// (a JSON null, a duplicate member), this parser refuses.

import { createHash } from 'node:crypto';
import { loadBinding } from '../service/binding.js';

export const MESSAGE_HEADER = 'Namecoin X.509 Stapled Certification: ';
const MESSAGE_MAGIC = 'Namecoin Signed Message:\n';
/** P2PKH address versions (namecoin-core src/kernel/chainparams.cpp): mainnet, testnet/regtest. */
const P2PKH_VERSIONS = new Set([52, 111]);
/** More signatures than this in one name is not an owner's doing; each costs a key recovery. */
export const MAX_STAPLED_SIGS = 8;
const MAX_STAPLED_TEXT = 8192;

/** Hostile or broken stapled data: the name is refused as a whole. */
export class StapledError extends Error {
  readonly code = 'MALFORMED_STAPLED';
  constructor(message: string) {
    super(message);
    this.name = 'StapledError';
  }
}

export interface StapledSig {
  address: string;
  sig: string;
}

export interface Stapled {
  /** The stapled "pubb64" text as it appears (it is signed as is). */
  pubb64: string;
  /** Its bytes (a SubjectPublicKeyInfo, checked by the caller). */
  key: Uint8Array;
  /** The "sigs" entries that carry both an address and a signature (others are skipped, as Encaya does). */
  sigs?: StapledSig[];
  /** The stapled "notafter" text (signed as is) and its value, Unix seconds. */
  notAfter?: { text: string; seconds: number };
}

const bad = (problem: string): StapledError => new StapledError(problem);

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw bad(`${what} is not JSON (${(e as Error).message})`);
  }
}

/** A JSON object of string members, as Go's json.Unmarshal into map[string]string takes it; duplicates refused. */
function stringMap(text: string, what: string): Map<string, string> {
  const parsed = parseJson(text, what);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad(`${what} is not a JSON object`);
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string') throw bad(`${what}: member ${JSON.stringify(k).slice(0, 40)} is not a string`);
    out.set(k, v);
  }
  if (countMembers(text) !== out.size) throw bad(`${what} has a duplicate member`);
  return out;
}

/** Members at the top level of a JSON object text that parsed (to find duplicates JSON.parse hides). */
function countMembers(text: string): number {
  let depth = 0;
  let members = 0;
  let inString = false;
  let sawValue = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      if (depth === 1 && !sawValue) {
        members++; // a member's name
        sawValue = true;
      }
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) sawValue = false;
  }
  return members;
}

/** Go's base64.RawURLEncoding.DecodeString: URL alphabet, no padding, CR and LF ignored. */
export function decodeRawUrlBase64(s: string): Uint8Array {
  const t = s.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9_-]*$/.test(t) || t.length % 4 === 1) throw bad('"pubb64" is not unpadded base64url');
  return new Uint8Array(Buffer.from(t, 'base64url'));
}

/**
 * The stapled JSON of an AIA parent's serialNumber (the text after
 * "Stapled: "). Throws StapledError for anything malformed.
 */
export function parseStapled(text: string): Stapled {
  if (text.length > MAX_STAPLED_TEXT) throw bad(`stapled data longer than ${MAX_STAPLED_TEXT} characters`);
  const m = stringMap(text, 'stapled data');
  const pubb64 = m.get('pubb64');
  if (pubb64 === undefined || pubb64 === '') throw bad('stapled data has no "pubb64"');
  const out: Stapled = { pubb64, key: decodeRawUrlBase64(pubb64) };
  const notafter = m.get('notafter');
  if (notafter !== undefined && notafter !== '') {
    // strconv.ParseInt(s, 10, 64)
    if (!/^[+-]?[0-9]{1,19}$/.test(notafter)) throw bad('"notafter" is not a base-10 integer');
    const n = BigInt(notafter);
    if (n > 9223372036854775807n || n < -9223372036854775808n) throw bad('"notafter" is out of the int64 range');
    out.notAfter = { text: notafter, seconds: Number(n) };
  }
  const sigs = m.get('sigs');
  if (sigs !== undefined && sigs !== '') out.sigs = parseSigs(sigs);
  return out;
}

/** The "sigs" text: a JSON list of objects of strings, as Go unmarshals []map[string]string (null entries skipped). */
function parseSigs(text: string): StapledSig[] {
  const parsed = parseJson(text, '"sigs"');
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) throw bad('"sigs" is not a JSON list');
  if (parsed.length > MAX_STAPLED_SIGS) throw bad(`"sigs" holds ${parsed.length} entries, more than ${MAX_STAPLED_SIGS}`);
  const out: StapledSig[] = [];
  for (const [i, entry] of parsed.entries()) {
    if (entry === null) continue;
    if (typeof entry !== 'object' || Array.isArray(entry)) throw bad(`"sigs"[${i}] is not an object`);
    for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
      if (typeof v !== 'string') throw bad(`"sigs"[${i}].${JSON.stringify(k).slice(0, 40)} is not a string`);
    }
    const { blockchainaddress: address, blockchainsig: sig } = entry as Record<string, string>;
    if (address !== undefined && sig !== undefined) out.push({ address, sig });
  }
  return out;
}

/** A string as Go's encoding/json writes it (HTML-safe escaping, invalid UTF-16 as U+FFFD). */
export function goJsonString(s: string): string {
  let out = '"';
  for (const unit of s) {
    const c = unit.codePointAt(0)!;
    const ch = c >= 0xd800 && c <= 0xdfff ? '\ufffd' : unit; // a lone surrogate
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** The message an owner signs for `domain` (Encaya's rebuild: keys sorted, as Go's json.Marshal of a map). */
export function certificationMessage(address: string, domain: string, pubb64: string, notAfterText?: string): string {
  const members: [string, string][] = [['address', address], ['domain', domain], ['x509pub', pubb64]];
  if (notAfterText !== undefined) members.push(['notafter', notAfterText]);
  members.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return MESSAGE_HEADER + `{${members.map(([k, v]) => `${goJsonString(k)}:${goJsonString(v)}`).join(',')}}`;
}

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

/** Bitcoin's CompactSize length prefix followed by the bytes. */
function serialized(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  let len: Buffer;
  if (b.length < 253) len = Buffer.of(b.length);
  else if (b.length <= 0xffff) len = Buffer.of(253, b.length & 0xff, b.length >> 8);
  else len = Buffer.concat([Buffer.of(254), Buffer.from(Uint32Array.of(b.length).buffer)]);
  return Buffer.concat([len, b]);
}

/** MessageHash: SHA-256d of the serialized magic and message. */
export function messageHash(message: string): Uint8Array {
  return sha256(sha256(Buffer.concat([serialized(MESSAGE_MAGIC), serialized(message)])));
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Base58Check payload (version byte first), or undefined when the text is not valid Base58Check. */
export function decodeBase58Check(s: string): Uint8Array | undefined {
  if (s.length === 0 || s.length > 100) return undefined;
  let n = 0n;
  for (const ch of s) {
    const d = B58.indexOf(ch);
    if (d < 0) return undefined;
    n = n * 58n + BigInt(d);
  }
  const body: number[] = [];
  while (n > 0n) {
    body.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  const zeros = /^1*/.exec(s)![0].length;
  const bytes = Uint8Array.from([...new Array<number>(zeros).fill(0), ...body]);
  if (bytes.length < 4) return undefined;
  const payload = bytes.subarray(0, -4);
  const check = sha256(sha256(payload)).subarray(0, 4);
  return Buffer.from(bytes.subarray(-4)).equals(check) ? payload : undefined;
}

export function encodeBase58Check(payload: Uint8Array): string {
  const bytes = Buffer.concat([payload, sha256(sha256(payload)).subarray(0, 4)]);
  let n = BigInt(`0x${bytes.toString('hex') || '0'}`);
  let out = '';
  while (n > 0n) {
    out = B58[Number(n % 58n)]! + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = `1${out}`;
  }
  return out;
}

/** Namecoin Core's DecodeBase64: standard alphabet, length a multiple of 4, at most two '=', zero padding bits. */
function decodeBase64Strict(s: string): Uint8Array | undefined {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? new Uint8Array(b) : undefined;
}

const hash160 = (b: Uint8Array): Buffer => createHash('ripemd160').update(sha256(b)).digest();

export type MessageVerdict = 'ok' | 'address is not a P2PKH key address' | 'signature is not valid base64' | 'no key recovers from the signature' | 'signed by another key';

/** Namecoin Core's MessageVerify(address, signature, message), as `verifymessage` runs it. */
export function verifyMessage(address: string, signature: string, message: string): MessageVerdict {
  const payload = decodeBase58Check(address);
  if (!payload || payload.length !== 21 || !P2PKH_VERSIONS.has(payload[0]!)) return 'address is not a P2PKH key address';
  const sig = decodeBase64Strict(signature);
  if (!sig) return 'signature is not valid base64';
  if (sig.length !== 65) return 'no key recovers from the signature';
  const h = sig[0]! - 27;
  const recid = h & 3;
  const compressed = (h & 4) !== 0;
  // libsecp256k1, as RecoverCompact calls it (addon/node/recover.cc).
  const key = loadBinding().recoverCompact(sig.subarray(1), recid, messageHash(message), compressed);
  if (!key) return 'no key recovers from the signature';
  return hash160(key).equals(payload.subarray(1)) ? 'ok' : 'signed by another key';
}

/** The P2PKH address of a public key (compressed SEC1 unless told), for a version byte. */
export function p2pkhAddress(publicKey: Uint8Array, version = 52): string {
  return encodeBase58Check(Uint8Array.of(version, ...hash160(publicKey)));
}

export type CertifyVerdict = { ok: true; address: string } | { ok: false; kind: 'owner-mismatch' | 'bad-signature' | 'no-signature'; detail: string };

/**
 * Whether a stapled signature by `owner` (the name's current owner per
 * Namecoin Core) certifies the stapled key for `domain` (the requested host,
 * lowercase). The first signature that verifies wins, as in Encaya.
 */
export function certify(stapled: Stapled, domain: string, owner: string): CertifyVerdict {
  const sigs = stapled.sigs ?? [];
  if (sigs.length === 0) return { ok: false, kind: 'no-signature', detail: 'no stapled signature' };
  const byOwner = sigs.filter((s) => s.address === owner);
  if (byOwner.length === 0) {
    const others = [...new Set(sigs.map((s) => s.address))].map((a) => a.slice(0, 64)).join(', ');
    return { ok: false, kind: 'owner-mismatch', detail: `stapled signature${sigs.length === 1 ? ' is' : 's are'} by ${others}, not by the owner ${owner}` };
  }
  const message = certificationMessage(owner, domain, stapled.pubb64, stapled.notAfter?.text);
  const problems: string[] = [];
  for (const s of byOwner) {
    const v = verifyMessage(owner, s.sig, message);
    if (v === 'ok') return { ok: true, address: owner };
    problems.push(v);
  }
  return { ok: false, kind: 'bad-signature', detail: `the owner's stapled signature does not verify for ${domain} and this key (${[...new Set(problems)].join('; ')})` };
}
