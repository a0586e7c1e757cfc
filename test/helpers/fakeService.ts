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
//   late  status 0, TTL 2: one certificate object, a second after the question
//   hang  no answer at all (the handler never returns)
//   chain status 0, TTL 300: its object, and one for the name "<marker>|ok|above-<id>"
//         (as the service sends the chain above an AIA parent with it)
// The object has CKA_CLASS certificate, CKA_SUBJECT the name asked for (so
// {CLASS, SUBJECT} finds it) and CKA_LABEL "<id>#<n>", n counting how often
// the service was asked for that exact name: a label says which answer a
// handle belongs to.

import { CKA, CKO } from '../../src/pkcs11/constants.js';
import { Status, type Response } from '../../src/service/protocol.js';
import { startService, type Service } from '../../src/service/server.js';

export const MARKER = 'Namecoin TLS Certificate';

/** The name the fake service answers in `mode` for `id`. */
export const fakeName = (mode: 'down' | 'ok0' | 'ok' | 'late' | 'hang' | 'chain', id: string): string => `${MARKER}|${mode}|${id}`;
/** How long a `late` answer takes, and its TTL in seconds. */
export const LATE_MS = 1000;
export const LATE_TTL = 2;

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
  /** Hung questions, let go when the service closes (their handler timers would keep the process alive). */
  const hung: (() => void)[] = [];
  const handler = async (bytes: Uint8Array): Promise<Response> => {
    const name = Buffer.from(bytes).toString('latin1');
    const n = (asked.get(name) ?? 0) + 1;
    asked.set(name, n);
    const [marker, mode, id] = name.split('|');
    if (marker !== MARKER || id === undefined) return { status: Status.BAD_REQUEST, ttl: 0, objects: [] };
    if (mode === 'down') return { status: Status.UNAVAILABLE, ttl: 0, objects: [] };
    if (mode === 'hang') return new Promise<Response>((r) => hung.push(() => r({ status: Status.UNAVAILABLE, ttl: 0, objects: [] })));
    if (mode === 'late') await new Promise((r) => setTimeout(r, LATE_MS));
    const object = (subject: Uint8Array, label: string): [number, Uint8Array][] => [
      [CKA.CLASS, u64(CKO.CERTIFICATE)],
      [CKA.SUBJECT, subject],
      [CKA.LABEL, Buffer.from(label)],
    ];
    const own = object(Uint8Array.from(bytes), `${id}#${n}`);
    if (mode === 'chain') return { status: Status.OK, ttl: 300, objects: [own, object(Buffer.from(fakeName('ok', `above-${id}`), 'latin1'), `above-${id}#with-${n}`)] };
    return { status: Status.OK, ttl: mode === 'ok' ? 300 : mode === 'late' ? LATE_TTL : 0, objects: [own] };
  };
  // A hung name stays hung for as long as any test waits (the module gives up first).
  const service = await startService({ socketPath, handler, handlerTimeoutMs: 600_000 });
  return {
    service,
    asked,
    close: () => {
      for (const release of hung.splice(0)) release();
      return service.close();
    },
  };
}

/**
 * Something at the service's socket that is not a working service: `silent`
 * accepts and never reads or writes; `garbage` answers every question with
 * bytes that are no frame; `trickle` sends a valid header announcing a
 * 64 KiB answer, then one byte every 50 ms. Same user, so the module's peer
 * check lets it through.
 */
export async function startBrokenService(socketPath: string, kind: 'silent' | 'garbage' | 'trickle'): Promise<{ connections: () => number; close(): Promise<void> }> {
  const { createServer } = await import('node:net');
  const { mkdirSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  let connections = 0;
  const open = new Set<import('node:net').Socket>();
  const server = createServer((c) => {
    connections++;
    open.add(c);
    c.on('error', () => undefined);
    c.on('close', () => open.delete(c));
    if (kind === 'garbage') c.once('data', () => c.end(Buffer.from('NCFX not a frame at all')));
    if (kind === 'trickle') {
      const header = Buffer.from('NCFS\0\0\x01\0', 'latin1');
      c.write(header);
      const timer = setInterval(() => c.write(Buffer.of(0)), 50);
      c.on('close', () => clearInterval(timer));
    }
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return {
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        for (const c of open) c.destroy();
        server.close(() => r());
      }),
  };
}
