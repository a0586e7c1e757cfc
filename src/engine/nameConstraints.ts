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
// GeneralName ::= CHOICE { ... dNSName [2] IA5String, ...
//      iPAddress [7] OCTET STRING, ... }
// An iPAddress in a constraint is the address followed by its mask: 8 octets
// for IPv4, 32 for IPv6 (RFC 5280, section 4.2.1.10)

import { EngineError } from './errors.js';
import { Tag, bytesEqual, concat, contextTag, readChildren, readExact, seq, tlv } from './asn1/der.js';

export const GeneralNameTag = {
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

/** GeneralSubtree for one dNSName, with the default minimum and no maximum. */
export function dnsSubtree(name: string): Uint8Array {
  return seq(tlv(GeneralNameTag.dNSName, new TextEncoder().encode(checkConstraintDnsName(name))));
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
