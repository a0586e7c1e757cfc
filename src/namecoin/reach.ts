// Whether a source's server accepts a TCP connection within a time limit:
// what `ncfence serve` checks before it serves (dns.ts, rpc.ts).

import { connect } from 'node:net';
import { EngineError } from '../engine/errors.js';
import { systemErrorWords } from '../systemError.js';

/** Resolves once `host:port` accepts a connection; rejects, naming `what`, on refusal or after `timeoutMs`. */
export function checkReachable(host: string, port: number, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new EngineError('SOURCE', `${what} did not accept a connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(new EngineError('SOURCE', `${what} ${systemErrorWords(e) ?? `is not reachable: ${e.message}`}`));
    });
  });
}
