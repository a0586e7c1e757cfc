// What a .bit name is, for every part that takes one: the chain code reading
// the name a verifier asks for, each source, `doctor --bit-name`. One rule,
// so no part asks about a name another refuses (docs/namecoin.md).
//
// [<labels>.]<NAME>.bit, lowercase, at most 251 characters: its records sit
// at *.<name> (ncdns, namecoin/ncgencert), within DNS's 255 octets (RFC 1035
// section 2.3.4). NAME is that of the Namecoin name d/NAME (namecoin/proposals
// ifa-0001.md "Keys": not wholly numeric). A label below it is a key of the
// value's "map", a DNS label that may hold "_" (ifa-0001 "Definitions of
// Valid Names"): RFC 1035 section 2.3.1's letter-digit-hyphen syntax is only
// preferred for host names, RFC 2181 section 11 allows any octet, and ncdns
// takes such keys (util/util.go ValidateOwnerLabel, used by ncdomain/convert.go).

import { EngineError } from '../engine/errors.js';

/** Every label ("bit" last), the Namecoin name d/NAME, and the labels below NAME (walked in its value's "map"). */
export type BitName = { labels: string[]; name: string; subLabels: string[] };

const NAME_LABEL = /^(?=.{1,63}$)(?:xn--)?[a-z0-9]+(?:-[a-z0-9]+)*$/;
const MAP_LABEL = /^(?=.{1,63}$)[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

/** The parts of a .bit name, or why `domain` is not one (a sentence naming it). */
function read(domain: unknown): BitName | string {
  if (typeof domain !== 'string') return `domain must be a string, got ${typeof domain}`;
  const shown = JSON.stringify(domain.length > 80 ? `${domain.slice(0, 80)}...` : domain);
  if (domain.length > 253) return `domain ${shown} is longer than 253 characters`;
  if (domain.length > 251) return `domain ${shown} is too long once prefixed with "*." (where its records are)`;
  const labels = domain.split('.');
  if (labels.length < 2 || labels[labels.length - 1] !== 'bit') return `domain ${shown} is not a name under .bit`;
  const subLabels = labels.slice(0, -2);
  const name = labels[labels.length - 2]!;
  const not = (label: string, what: string): string => `domain ${shown} has label ${JSON.stringify(label)}, which is not a lowercase letter-digit-hyphen label ${what}`;
  const badSub = subLabels.find((l) => !MAP_LABEL.test(l));
  if (badSub !== undefined) return not(badSub, '(underscores allowed: ifa-0001 map keys)');
  if (!NAME_LABEL.test(name) || /^[0-9]+$/.test(name)) return not(name, 'that can be a Namecoin d/ name (ifa-0001 "Keys")');
  return { labels, name: `d/${name}`, subLabels };
}

/** The parts of a .bit name; EngineError('USAGE') naming the offending label for anything else. */
export function bitName(domain: unknown): BitName {
  const r = read(domain);
  if (typeof r === 'string') throw new EngineError('USAGE', r);
  return r;
}

export const isBitName = (domain: string): boolean => typeof read(domain) !== 'string';
