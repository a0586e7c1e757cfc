// Whether a source's server accepts a TCP connection within a time limit:
// what `ncfence serve` checks before it serves (dns.ts, rpc.ts).

import { connect } from 'node:net';
import { EngineError } from '../engine/errors.js';
import { withDeadline } from '../service/client.js';
import { systemErrorWords } from '../systemError.js';

/** Resolves once `host:port` accepts a connection; rejects, naming `what`, on refusal or after `timeoutMs`. */
export function checkReachable(host: string, port: number, timeoutMs: number, what: string): Promise<void> {
  const socket = connect({ host, port });
  return withDeadline(socket, timeoutMs, () => new EngineError('SOURCE', `${what} did not accept a connection within ${timeoutMs} ms`), (done) => {
    socket.once('connect', () => done(undefined));
    socket.once('error', (e) => done(new EngineError('SOURCE', `${what} ${systemErrorWords(e) ?? `is not reachable: ${e.message}`}`)));
  });
}
