// Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }
// UTCTime for years through 2049, GeneralizedTime from 2050; both in the
// DER form YY(YY)MMDDHHMMSSZ (RFC 5280, section 4.1.2.5).

import { EngineError } from '../errors.js';
import { Tag, tlv, type Tlv } from './der.js';

// One encoder and decoder for every call (they keep no state between calls).
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Two ASCII digits at b[i], or -1. */
function digits2(b: Uint8Array, i: number): number {
  const h = b[i]! - 0x30;
  const l = b[i + 1]! - 0x30;
  return h >= 0 && h <= 9 && l >= 0 && l <= 9 ? h * 10 + l : -1;
}

/**
 * Read from the bytes, no text or regular expression (a build reads two
 * times per root): YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ, all digits. The text is
 * decoded only to word an error.
 */
export function parseTime(t: Tlv): number {
  const b = t.body;
  const y = t.tag === Tag.UTC_TIME ? 2 : t.tag === Tag.GENERALIZED_TIME ? 4 : 0;
  if (y === 0 || b.length !== y + 11 || b[y + 10] !== 0x5a) throw badTime('unsupported', b);
  const f: number[] = [];
  for (let i = 0; i < y + 10; i += 2) {
    const d = digits2(b, i);
    if (d < 0) throw badTime('unsupported', b);
    f.push(d);
  }
  const year = y === 2 ? f[0]! + (f[0]! < 50 ? 2000 : 1900) : f[0]! * 100 + f[1]!;
  const o = y === 2 ? 1 : 2;
  // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, f[o]! - 1, f[o + 1]!);
  d.setUTCHours(f[o + 2]!, f[o + 3]!, f[o + 4]!);
  // A field out of its range (month 13, 30 February, hour 24) rolls over
  // into the next one there: such a time names no instant, and is refused.
  if (d.getUTCMonth() !== f[o]! - 1 || d.getUTCDate() !== f[o + 1] || d.getUTCHours() !== f[o + 2] || d.getUTCMinutes() !== f[o + 3] || d.getUTCSeconds() !== f[o + 4]) {
    throw badTime('impossible', b);
  }
  return d.getTime();
}

function badTime(what: 'unsupported' | 'impossible', body: Uint8Array): EngineError {
  return new EngineError('BAD_DER', `validity: ${what} time ${JSON.stringify(decoder.decode(body))}`);
}

export function encodeTime(ms: number): Uint8Array {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  return y < 2050
    ? tlv(Tag.UTC_TIME, encoder.encode(`${two(y % 100)}${rest}`))
    : tlv(Tag.GENERALIZED_TIME, encoder.encode(`${y}${rest}`));
}
