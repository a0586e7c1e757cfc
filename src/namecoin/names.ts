// What a .bit name is, for every part that takes one (docs/namecoin.md):
// the chain code reading the name a verifier asks for, each source, and
// `doctor --bit-name`. One rule, so no part asks what another refuses.
//
// [<labels>.]<NAME>.bit, lowercase, at most 251 characters: its records sit
// at *.<name> (ncdns, namecoin/ncgencert), within DNS's 255 octets (RFC 1035
// section 2.3.4). NAME names the Namecoin name d/NAME (namecoin/proposals
// ifa-0001.md "Keys": at most 63 characters, ^(xn--)?[a-z0-9]+(-[a-z0-9]+)*$,
// not wholly numeric). A label below it is a key of the value's "map", which
// ifa-0001 lets hold "_" ("Definitions of Valid Names": a DNS label is
// ^([a-z0-9_]|[a-z0-9_][a-z0-9_-]*[a-z0-9_])$, at most 63 characters). RFC
// 1035 section 2.3.1's letter-digit-hyphen syntax is only the preferred
// syntax of host names; RFC 2181 section 11 lets a label hold any octet, and
// ncdns takes map keys with "_" (util/util.go ValidateOwnerLabel, as
// ncdomain/convert.go uses it), so "_" is accepted below NAME, refused in it.

import { EngineError } from '../engine/errors.js';

export interface BitName {
  /** Every label, leftmost first, "bit" last. */
  labels: string[];
  /** The Namecoin name holding the records: d/NAME. */
  name: string;
  /** The labels below NAME, leftmost first (walked in the value's "map": records.ts). */
  subLabels: string[];
}

const MAX_NAME_CHARS = 253;
/** The longest name whose records' owner, *.<name>, is a DNS name (2 + 251 characters, 255 octets on the wire). */
const MAX_HOST_CHARS = 251;
const MAX_LABEL_CHARS = 63;
const NAME_LABEL = /^(?:xn--)?[a-z0-9]+(?:-[a-z0-9]+)*$/;
const MAP_LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

/** Why `domain` is not a .bit name (a sentence naming it), or its parts. */
function read(domain: unknown): BitName | string {
  if (typeof domain !== 'string') return `domain must be a string, got ${typeof domain}`;
  const shown = JSON.stringify(domain.length > 80 ? `${domain.slice(0, 80)}...` : domain);
  if (domain.length > MAX_NAME_CHARS) return `domain ${shown} is longer than ${MAX_NAME_CHARS} characters`;
  if (domain.length > MAX_HOST_CHARS) return `domain ${shown} is too long once prefixed with "*." (where its records are)`;
  const labels = domain.split('.');
  if (labels.length < 2 || labels[labels.length - 1] !== 'bit') return `domain ${shown} is not a name under .bit`;
  const subLabels = labels.slice(0, -2);
  for (const label of subLabels) {
    if (label.length > MAX_LABEL_CHARS || !MAP_LABEL.test(label)) {
      return `domain ${shown} has label ${JSON.stringify(label)}, which is not a lowercase letter-digit-hyphen label (underscores allowed: ifa-0001 map keys)`;
    }
  }
  const label = labels[labels.length - 2]!;
  if (label.length > MAX_LABEL_CHARS || !NAME_LABEL.test(label) || /^[0-9]+$/.test(label)) {
    return `domain ${shown} has label ${JSON.stringify(label)}, which is not a lowercase letter-digit-hyphen label that can be a Namecoin d/ name (ifa-0001 "Keys")`;
  }
  return { labels, name: `d/${label}`, subLabels };
}

/** The parts of a .bit name; EngineError('USAGE') naming the offending label for anything else. */
export function bitName(domain: unknown): BitName {
  const r = read(domain);
  if (typeof r === 'string') throw new EngineError('USAGE', r);
  return r;
}

export function isBitName(domain: string): boolean {
  return typeof read(domain) !== 'string';
}
