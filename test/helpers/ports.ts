// Small shared pieces for tests that need a loopback port or replayable randomness.

import { createServer } from 'node:net';

/**
 * A loopback TCP port that was free a moment ago (the kernel picked it, and
 * the listener is closed again): for a server started next, or, left unused,
 * a port whose connections are refused at once.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** mulberry32: a small seeded generator, so a failing property-test round can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
