// Minimal loopback HTTPS server for browser tests: serves `//ok` as JavaScript
// on every path, with the given certificate chain (leaf first) and key.

import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface TlsServer {
  port: number;
  /**
   * Messages of failed handshakes, in order, e.g. the alert a browser sent
   * when it rejected the chain (`...:SSL alert number 48` = unknown_ca).
   */
  tlsErrors: string[];
  close(): Promise<void>;
}

export async function startTlsServer(opts: { certChainPem: string; keyPem: string }): Promise<TlsServer> {
  const server = createServer({ cert: opts.certChainPem, key: opts.keyPem }, (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      'content-type': 'application/javascript; charset=utf-8',
      'access-control-allow-origin': '*',
      'cache-control': 'no-store',
    });
    res.end('//ok');
  });
  // Handshake failures (e.g. the browser rejecting our chain) are expected in tests.
  const tlsErrors: string[] = [];
  server.on('tlsClientError', (err: Error) => {
    if (tlsErrors.length < 1000) tlsErrors.push(err.message);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    tlsErrors,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5_000);
        server.closeAllConnections();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
