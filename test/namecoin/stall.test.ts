// A slow .bit source must not stall ordinary certificate lookups. NSS
// searches a token on its default session under the slot's lock (nss
// lib/dev/devtoken.c find_objects, lib/pk11wrap/pk11slot.c), so a module
// that waits for the service inside C_FindObjectsInit holds every other
// lookup of the process; any web page can make a browser look up Namecoin
// names, and a hung Namecoin Core is enough to make them slow.
//
// A real NSS process (test/native/nsslookup.c) looks a public root up by
// subject, as mozilla::pkix's issuer search does, 30 times while 4 threads
// look up distinct Namecoin AIA parent names in a loop against each kind of
// trouble: the real service over a Namecoin Core that never answers or
// answers in 2 s, a socket that accepts and stays silent, no service and a
// service-command that never brings one up. Not timed: every ordinary
// lookup must find the root before a deadline that only catches a hang
// (20 s; before the fix each hostile lookup held the others for 1.5 s, so
// 30 lookups could not finish in it), and no hostile lookup finds anything.

import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../src/compile/build.js';
import { serve } from '../../src/namecoin/serve.js';
import { startHungNamecoind, startNamecoind } from '../fixtures/namecoind.js';
import { startBrokenService } from '../helpers/fakeService.js';
import { buildNssLookup, type NssLookupResult } from '../helpers/native.js';
import { MODULE, SYSTEM_CKBI } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

const ORDINARY = 30;
const HOSTILE_THREADS = 4;
const DEADLINE_MS = 20_000;
/** A public root of the system CKBI, as NSS names it through the module. */
const ROOT_NICKNAME = 'Builtin Object Token:ISRG Root X1';

let dir: string;
let nsslookup: string;
let seq = 0;

test.before(async () => {
  for (const tool of ['gcc', 'pkg-config']) await requireTool(tool);
  dir = mkdtempSync(join(tmpdir(), 'ncfence-stall-'));
  nsslookup = await buildNssLookup(dir);
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Trouble {
  name: string;
  /** Starts it behind `socket`; returns how to stop it and, where known, whether questions reached the source. */
  start: (socket: string) => Promise<{ close(): Promise<void>; reached?: () => boolean }>;
  config?: string;
}

const troubles: Trouble[] = [
  {
    name: 'the service over a Namecoin Core that never answers',
    start: async (socket) => {
      const core = await startHungNamecoind();
      const svc = await serve({ socket, rpc: core.url, rpcCookie: core.cookieFile });
      return { reached: () => core.connections() > 0, close: async () => (await svc.close(), await core.close()) };
    },
  },
  {
    name: 'the service over a Namecoin Core that answers in 2 s',
    start: async (socket) => {
      const node = await startNamecoind({ auth: 'cookie' });
      node.delayMs = 2000;
      const svc = await serve({ socket, rpc: node.url, rpcCookie: node.cookieFile });
      return { reached: () => node.httpRequests > 0, close: async () => (await svc.close(), await node.close()) };
    },
  },
  { name: 'a socket that accepts and stays silent', start: (socket) => startBrokenService(socket, 'silent') },
  { name: 'no service, and a service-command that never brings one up', start: async () => ({ close: async () => undefined }), config: 'service-command = /bin/true\n' },
];

for (const trouble of troubles) {
  test.serial(`ordinary lookups in NSS complete and find the root while ${HOSTILE_THREADS} threads look up Namecoin names against ${trouble.name}`, async (t) => {
    const own = join(dir, `t${seq++}`);
    mkdirSync(join(own, 'run'), { recursive: true, mode: 0o700 });
    const socket = join(own, 'run', 's.sock');
    const { config } = await build({ upstream: SYSTEM_CKBI, upstreamParams: '', outDir: join(own, 'view'), service: socket });
    if (trouble.config) writeFileSync(config, trouble.config, { flag: 'a' });
    const behind = await trouble.start(socket);
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run(nsslookup, [MODULE, ROOT_NICKNAME, String(ORDINARY), String(HOSTILE_THREADS), '300', String(DEADLINE_MS)], {
        env: { ...process.env, NCFENCE_CONFIG: config },
        timeoutMs: DEADLINE_MS + 30_000,
      });
      if (behind.reached) t.true(behind.reached(), 'the hostile lookups reached the source');
    } finally {
      await behind.close();
    }
    t.is(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as NssLookupResult;
    t.is(out.alone_found, ORDINARY, 'alone: every lookup finds the root');
    t.true(out.hostile_done > 0, 'hostile lookups ran');
    t.is(out.hostile_found, 0, 'no hostile lookup found anything');
    t.is(out.attack_done, ORDINARY, `under attack: ${out.attack_done} of ${ORDINARY} lookups done within ${DEADLINE_MS / 1000} s`);
    t.is(out.attack_found, out.attack_done, 'under attack: every lookup done finds the root');
  });
}
