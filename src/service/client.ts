// One question to the live .bit service over its socket, as the module asks
// it (docs/service-protocol.md): for doctor's checks and `status`. And the
// deadline every socket the service and its sources open is held to.

import { createConnection } from 'node:net';
import { FRAME_HEADER_LENGTH, decodeResponse, encodeRequest, readFrameHeader, type Response } from './protocol.js';
import { systemErrorWords } from '../systemError.js';

/**
 * Settles once, with the first outcome `run` hands to `done` (an Error
 * rejects) or with `late()` after `timeoutMs`; the socket (or request) is
 * destroyed then, so it never outlives the call.
 */
export function withDeadline<T>(socket: { destroy(): void }, timeoutMs: number, late: () => Error | NoInfer<T>, run: (done: (outcome: Error | T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (outcome: Error | T): void => {
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(() => done(late()), timeoutMs);
    run(done);
  });
}

/**
 * One question to the live service, with the exact issuer name the module
 * would send: an answer, or an Error whose `code` is the socket's errno name
 * when the connection failed.
 */
export function askServiceFor(path: string, name: Uint8Array, timeoutMs = 3000): Promise<Response> {
  const s = createConnection(path);
  let got = Buffer.alloc(0);
  return withDeadline(s, timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`), (done) => {
    s.once('connect', () => s.write(encodeRequest({ name })));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      try {
        const len = readFrameHeader(got, 'response');
        if (len !== undefined && got.length >= FRAME_HEADER_LENGTH + len) done(decodeResponse(got.subarray(0, FRAME_HEADER_LENGTH + len)));
      } catch (e) {
        done(e as Error);
      }
    });
    s.once('error', (e) => done(Object.assign(new Error(systemErrorWords(e) ? `${path} ${systemErrorWords(e)}` : e.message), { code: (e as NodeJS.ErrnoException).code })));
    s.once('close', () => done(new Error('the service closed the connection without an answer (a service run by another user refuses us)')));
  });
}
