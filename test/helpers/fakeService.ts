// A scripted stand-in for `ncfence serve`: the real transport
// (src/service/server.ts, docs/service-protocol.md) with a handler that
// answers from the name it is asked about, so a test drives the module's
// live cache with nothing but the names it searches for.
//
// The name is read as text: "<marker>|<mode>|<id>", where <marker> is
// MARKER (what makes the module ask at all). Modes:
//   down  status 3 (source unavailable), TTL 0, no objects
//   ok0   status 0, TTL 0: one certificate object, expired as soon as cached
//   ok    status 0, TTL 300: one certificate object
// The object has CKA_CLASS certificate, CKA_SUBJECT the name asked for (so
// {CLASS, SUBJECT} finds it) and CKA_LABEL "<id>#<n>", n counting how often
// the service was asked for that exact name: a label says which answer a
// handle belongs to.

import { CKA, CKO } from '../../src/pkcs11/constants.js';
import { Status, type Response } from '../../src/service/protocol.js';
import { startService, type Service } from '../../src/service/server.js';

export const MARKER = 'Namecoin TLS Certificate';

/** The name the fake service answers in `mode` for `id`. */
export const fakeName = (mode: 'down' | 'ok0' | 'ok', id: string): string => `${MARKER}|${mode}|${id}`;

export interface FakeService {
  service: Service;
  /** How often each name was asked for. */
  asked: Map<string, number>;
  close(): Promise<void>;
}

const u64 = (v: number): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};

export async function startFakeService(socketPath: string): Promise<FakeService> {
  const asked = new Map<string, number>();
  const handler = async (bytes: Uint8Array): Promise<Response> => {
    const name = Buffer.from(bytes).toString('latin1');
    const n = (asked.get(name) ?? 0) + 1;
    asked.set(name, n);
    const [marker, mode, id] = name.split('|');
    if (marker !== MARKER || id === undefined) return { status: Status.BAD_REQUEST, ttl: 0, objects: [] };
    if (mode === 'down') return { status: Status.UNAVAILABLE, ttl: 0, objects: [] };
    const object: [number, Uint8Array][] = [
      [CKA.CLASS, u64(CKO.CERTIFICATE)],
      [CKA.SUBJECT, Uint8Array.from(bytes)],
      [CKA.LABEL, Buffer.from(`${id}#${n}`)],
    ];
    return { status: Status.OK, ttl: mode === 'ok' ? 300 : 0, objects: [object] };
  };
  const service = await startService({ socketPath, handler });
  return { service, asked, close: () => service.close() };
}
