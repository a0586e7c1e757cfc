// One question to the live .bit service over its socket, as the module asks
// it (docs/service-protocol.md): for doctor's checks and `status`.

import { createConnection } from 'node:net';
import { FRAME_HEADER_LENGTH, decodeResponse, encodeRequest, readFrameHeader, type Response } from './protocol.js';
import { systemErrorWords } from '../systemError.js';

/**
 * One question to the live service, with the exact issuer name the module
 * would send: an answer, or an Error whose `code` is the socket's errno name
 * when the connection failed.
 */
export function askServiceFor(path: string, name: Uint8Array, timeoutMs = 3000): Promise<Response> {
  return new Promise((resolveAnswer, reject) => {
    const s = createConnection(path);
    let got = Buffer.alloc(0);
    let settled = false;
    const done = (e?: Error, r?: Response): void => {
      if (settled) return;
      settled = true;
      s.destroy();
      if (e) reject(e);
      else resolveAnswer(r!);
    };
    s.setTimeout(timeoutMs, () => done(new Error(`no answer within ${timeoutMs} ms`)));
    s.once('connect', () => s.write(encodeRequest({ name })));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      try {
        const len = readFrameHeader(got, 'response');
        if (len !== undefined && got.length >= FRAME_HEADER_LENGTH + len) done(undefined, decodeResponse(got.subarray(0, FRAME_HEADER_LENGTH + len)));
      } catch (e) {
        done(e as Error);
      }
    });
    s.once('error', (e) => done(Object.assign(new Error(systemErrorWords(e) ? `${path} ${systemErrorWords(e)}` : e.message), { code: (e as NodeJS.ErrnoException).code })));
    s.once('close', () => done(new Error('the service closed the connection without an answer (a service run by another user refuses us)')));
  });
}
