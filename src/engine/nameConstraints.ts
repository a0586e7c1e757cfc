// NameConstraints: build the exclusion ncfence adds, and merge it into a
// root's existing extension.
//
// NameConstraints ::= SEQUENCE {
//      permittedSubtrees       [0]     GeneralSubtrees OPTIONAL,
//      excludedSubtrees        [1]     GeneralSubtrees OPTIONAL }
// GeneralSubtrees ::= SEQUENCE SIZE (1..MAX) OF GeneralSubtree
// GeneralSubtree ::= SEQUENCE {
//      base                    GeneralName,
//      minimum         [0]     BaseDistance DEFAULT 0,
//      maximum         [1]     BaseDistance OPTIONAL }
// GeneralName ::= CHOICE { ... rfc822Name [1] IA5String,
//      dNSName [2] IA5String, ... iPAddress [7] OCTET STRING, ... }
// An iPAddress in a constraint is the address followed by its mask: 8 octets
// for IPv4, 32 for IPv6 (RFC 5280, section 4.2.1.10)

import { isIP } from 'node:net';
import { EngineError } from './errors.js';
import { Tag, bytesEqual, concat, contextTag, readChildren, readExact, seq, tlv } from './asn1/der.js';

export const GeneralNameTag = {
  rfc822Name: contextTag(1, false),
  dNSName: contextTag(2, false),
  iPAddress: contextTag(7, false),
} as const;

const PERMITTED = contextTag(0, true);
const EXCLUDED = contextTag(1, true);

/** A DNS name as NameConstraints wants it: lowercase ASCII labels, no leading or trailing dot. */
export function checkConstraintDnsName(name: string): string {
  const lower = name.toLowerCase();
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(lower) || lower.length > 253) {
    throw new EngineError('POLICY', `excluded dNSName ${JSON.stringify(name)} is not an ASCII DNS name without leading or trailing dot`);
  }
  return lower;
}

/**
 * A dNSName constraint in its absolute form, one trailing dot (`bit.`).
 * NSS's classic verifier compares a presented name with a trailing dot
 * literally, so `x.bit.` escapes an exclusion of `bit` there and only
 * `bit.` catches it; mozilla::pkix rejects such a constraint as malformed,
 * so only policies for NSS's own verifiers use it (rules/nss.json).
 */
export function checkAbsoluteDnsName(name: string): string {
  if (!name.endsWith('.') || name.endsWith('..')) throw new EngineError('POLICY', `excluded dNSName ${JSON.stringify(name)} does not end in exactly one dot`);
  return `${checkConstraintDnsName(name.slice(0, -1))}.`;
}

/** GeneralSubtree for one dNSName (or its absolute form, see checkAbsoluteDnsName), with the default minimum and no maximum. */
export function dnsSubtree(name: string): Uint8Array {
  const checked = name.endsWith('.') ? checkAbsoluteDnsName(name) : checkConstraintDnsName(name);
  return seq(tlv(GeneralNameTag.dNSName, new TextEncoder().encode(checked)));
}

/**
 * An rfc822Name constraint for a host or a domain, as RFC 5280 4.2.1.10
 * words them: `bit` is every mailbox at the host `bit` (postmaster@bit),
 * `.bit` every mailbox at a host under it (alice@example.bit,
 * a@x.y.bit), but not at `bit` itself; a fence needs both. Unlike a
 * dNSName constraint, the dotless form does not reach subdomains
 * (mozilla::pkix pkixnames.cpp, AllowDotlessSubdomainMatches::No for
 * rfc822Name). RFC 5280 applies these constraints to the subject's
 * emailAddress too when the certificate has no subjectAltName. One
 * trailing dot (`bit.`, `.bit.`) is the absolute form, which NSS and
 * OpenSSL compare literally with a presented `alice@example.bit.`, as for
 * dNSName (checkAbsoluteDnsName); mozilla::pkix rejects it as malformed.
 * Mailbox constraints (local@host) are not offered: a fence excludes
 * domains.
 */
export function checkConstraintMailDomain(name: string): string {
  const relative = name.endsWith('.') && !name.endsWith('..') ? name.slice(0, -1) : name;
  const domain = relative.startsWith('.') ? relative.slice(1) : relative;
  try {
    checkConstraintDnsName(domain);
  } catch {
    throw new EngineError('POLICY', `excluded rfc822Name ${JSON.stringify(name)} is not a host (bit) or a domain with one leading dot (.bit), with at most one trailing dot`);
  }
  return name.toLowerCase();
}

/** GeneralSubtree for one rfc822Name host or domain (see checkConstraintMailDomain). */
export function rfc822Subtree(name: string): Uint8Array {
  return seq(tlv(GeneralNameTag.rfc822Name, new TextEncoder().encode(checkConstraintMailDomain(name))));
}

/**
 * net.isIP, but '::' (what a policy excluding all of IPv6 names, rules/nss.json)
 * answered without it: node:net's first IPv6 question compiles its IPv6
 * regular expression, about 5 ms of every build (issue 21).
 */
function addressFamily(address: string): number {
  return address === '::' ? 6 : isIP(address);
}

/** An iPAddress range in CIDR form (`10.0.0.0/8`, `::/0`) as a GeneralSubtree. */
export function cidrSubtree(cidr: string): Uint8Array {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  const family = m ? addressFamily(m[1]!) : 0;
  const bits = m ? Number(m[2]) : -1;
  if (!m || family === 0 || bits > (family === 4 ? 32 : 128)) throw new EngineError('POLICY', `iPAddress ${JSON.stringify(cidr)} is not an address/prefix-length range`);
  const address = family === 4 ? Uint8Array.from(m[1]!.split('.').map(Number)) : ipv6Bytes(m[1]!);
  const mask = new Uint8Array(address.length);
  for (let i = 0; i < bits; i++) mask[i >> 3]! |= 0x80 >> (i & 7);
  if (address.some((b, i) => (b & ~mask[i]!) !== 0)) throw new EngineError('POLICY', `iPAddress ${JSON.stringify(cidr)} has host bits set beyond /${bits}`);
  return ipSubtree(address, mask);
}

function ipv6Bytes(text: string): Uint8Array {
  const [head = '', tail] = text.split('::');
  const words = (part: string): number[] => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** GeneralSubtree for one iPAddress range: `address` and `mask` of 4 (IPv4) or 16 (IPv6) octets each. */
export function ipSubtree(address: Uint8Array, mask: Uint8Array): Uint8Array {
  if ((address.length !== 4 && address.length !== 16) || mask.length !== address.length) {
    throw new EngineError('POLICY', `iPAddress constraint needs a 4- or 16-octet address and a mask of the same size, got ${address.length} and ${mask.length}`);
  }
  return seq(tlv(GeneralNameTag.iPAddress, address, mask));
}

/** Every IPv4 address (0.0.0.0/0) and every IPv6 address (::/0). */
export const ALL_IPV4 = ipSubtree(new Uint8Array(4), new Uint8Array(4));
export const ALL_IPV6 = ipSubtree(new Uint8Array(16), new Uint8Array(16));

/** A fresh NameConstraints value that excludes the given subtrees. */
export function buildExcludedSubtrees(subtrees: readonly Uint8Array[]): Uint8Array {
  if (subtrees.length === 0) throw new EngineError('POLICY', 'no names to exclude');
  return seq(tlv(EXCLUDED, ...subtrees));
}

/** A fresh NameConstraints value with both parts; each list must be non-empty (GeneralSubtrees is SIZE 1..MAX). */
export function buildNameConstraints(permitted: readonly Uint8Array[], excluded: readonly Uint8Array[]): Uint8Array {
  if (permitted.length === 0 || excluded.length === 0) throw new EngineError('POLICY', 'permitted and excluded subtrees must each hold at least one name');
  return seq(tlv(PERMITTED, ...permitted), tlv(EXCLUDED, ...excluded));
}

/**
 * Adds `subtrees` to the exclusions of an existing NameConstraints value.
 * Permitted subtrees and existing exclusions are kept byte for byte; a
 * subtree already excluded is not added twice.
 */
export function mergeExcludedSubtrees(existing: Uint8Array, subtrees: readonly Uint8Array[]): Uint8Array {
  const parts = readChildren(readExact(existing, Tag.SEQUENCE, 'NameConstraints').body);
  let permitted: Uint8Array | undefined;
  let excluded: Uint8Array[] = [];
  for (const p of parts) {
    if (p.tag === PERMITTED && permitted === undefined && excluded.length === 0) permitted = p.der;
    else if (p.tag === EXCLUDED && excluded.length === 0) excluded = readChildren(p.body).map((s) => s.der);
    else throw new EngineError('BAD_DER', `NameConstraints: unexpected field with tag 0x${p.tag.toString(16)}`);
  }
  for (const s of excluded) readExact(s, Tag.SEQUENCE, 'GeneralSubtree');
  const added = subtrees.filter((s) => !excluded.some((e) => bytesEqual(e, s)));
  const all = [...excluded, ...added];
  return seq(concat(permitted ? [permitted] : []), tlv(EXCLUDED, ...all));
}
