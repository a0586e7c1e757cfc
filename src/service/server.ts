// The live service's transport (docs/service-protocol.md): a Unix stream
// socket in a private directory, one request frame per connection, one answer.
// Fails closed everywhere: a peer with another uid, a malformed or slow frame,
// or too many connections is cut off without an answer; a failing or slow
// handler becomes status 3. Nothing a client sends can crash the process.

import { chmodSync, lstatSync, unlinkSync, type Stats } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { EngineError } from '../engine/errors.js';
import { makeDirs } from '../fsPaths.js';
import { describePathError, errnoCode } from '../systemError.js';
import { loadBinding } from './binding.js';
import { withDeadline } from './client.js';
import { FRAME_HEADER_LENGTH, Status, decodeRequest, encodeResponse, readFrameHeader, type Response } from './protocol.js';

export const DEFAULT_TIMEOUT_MS = 2000;
/** Longer than a source may take (namecoin/serve.ts SOURCE_TIMEOUT_MS), shorter than the module keeps a question open (6000). */
export const DEFAULT_HANDLER_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_CONNECTIONS = 64;
/** sun_path is 108 bytes on Linux, NUL included; libuv may truncate a longer path silently. */
const MAX_SOCKET_PATH_BYTES = 107;
/** How long to wait on an existing socket before deciding something still answers on it. */
const STALE_PROBE_MS = 1000;

export interface ServiceOptions {
  socketPath: string;
  handler: (name: Uint8Array) => Promise<Response>;
  /** Bound on receiving the request frame, and again on writing the answer. */
  timeoutMs?: number;
  /** Bound on the handler; past it the client gets status 3. */
  handlerTimeoutMs?: number;
  /** Connections served at once; more are closed as soon as they are accepted. */
  maxConnections?: number;
  /**
   * A listening socket inherited from systemd socket activation (fd 3): the
   * unit already made it (SocketMode=0600, DirectoryMode=0700), so the path
   * is neither created nor chmodded here; peer uids are still checked.
   */
  listenFd?: number;
}

/** Counters for what the service did with each connection it accepted. */
export interface ServiceStats {
  accepted: number;
  answered: number;
  refusedUid: number;
  refusedBusy: number;
  badFrames: number;
  readTimeouts: number;
  writeTimeouts: number;
  handlerErrors: number;
  handlerTimeouts: number;
  acceptErrors: number;
}

export interface Service {
  close(): Promise<void>;
  readonly socketPath: string;
  readonly stats: Readonly<ServiceStats>;
}

/** The uid at the other end of a connected Unix socket (SO_PEERCRED); throws on error. */
export function peerUid(fd: number): number {
  return loadBinding().peerUid(fd);
}

function ownUid(): number {
  const uid = process.getuid?.();
  if (uid === undefined) throw new EngineError('USAGE', 'the ncfence service needs a POSIX system (process.getuid is unavailable)');
  return uid;
}

function positiveInteger(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new EngineError('USAGE', `service ${what} must be a positive integer, got ${v}`);
  return v;
}

// ---- the socket's directory and path ----

/** Creates the directory 0700 when missing; refuses one another user could write to or that we do not own. */
export function prepareSocketDirectory(dir: string, uid: number): void {
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw new EngineError('USAGE', `socket directory ${describePathError(e, dir)}`, { cause: e });
    // One component at a time: a recursive mkdirSync never returns under /proc (fsPaths.ts).
    try {
      if (makeDirs(dir, 0o700) !== undefined) chmodSync(dir, 0o700);
    } catch (e) {
      throw new EngineError('USAGE', `socket directory: ${(e as Error).message}`, { cause: e });
    }
    st = lstatSync(dir);
  }
  if (!st.isDirectory()) throw new EngineError('USAGE', `socket directory ${dir} is not a directory (a symlink is refused too)`);
  if (st.uid !== uid) throw new EngineError('USAGE', `socket directory ${dir} is owned by uid ${st.uid}, not by this user (uid ${uid}); use a private directory`);
  if ((st.mode & 0o022) !== 0) {
    throw new EngineError('USAGE', `socket directory ${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}); make it 0700 or use another directory`);
  }
}

/** Whether something accepts connections on an existing socket file. */
function probeSocket(path: string): Promise<'live' | 'stale'> {
  const c = createConnection(path);
  // A listener that is too busy to accept still counts as alive.
  return withDeadline(c, STALE_PROBE_MS, () => 'live', (done) => {
    c.once('connect', () => done('live'));
    c.once('error', (e) => {
      if (errnoCode(e) === 'ECONNREFUSED') done('stale');
      else done(new EngineError('USAGE', `cannot tell whether ${path} is still in use: ${describePathError(e, path)}`, { cause: e }));
    });
  });
}

/** Whether a socket file is at `path` (false when nothing is); refuses anything else there. */
function socketExists(path: string): boolean {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw new EngineError('USAGE', `cannot use socket ${describePathError(e, path)}`, { cause: e });
  }
  if (!st.isSocket()) throw new EngineError('USAGE', `${path} exists and is not a socket; refusing to replace it`);
  return true;
}

/** Removes a leftover socket file nothing answers on; refuses anything else at that path. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!socketExists(path)) return;
  if ((await probeSocket(path)) === 'live') throw new EngineError('USAGE', `another service is already answering on ${path}`);
  unlinkSync(path);
}

/** The socket path, absolute and short enough for sun_path. */
function checkedSocketPath(path: string): string {
  const socketPath = resolve(path);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new EngineError('USAGE', `socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes, the limit for a Unix socket; choose a shorter --socket`);
  }
  return socketPath;
}

/** Listens on a path, or on a descriptor inherited from systemd. */
function listen(server: Server, at: string | { fd: number }): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(at, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
}

// ---- one connection ----

interface Context {
  handler: ServiceOptions['handler'];
  timeoutMs: number;
  handlerTimeoutMs: number;
  stats: ServiceStats;
}

const UNAVAILABLE: Response = { status: Status.UNAVAILABLE, ttl: 0, objects: [] };

/** Whether the peer runs as `uid`; false when its uid, or the socket's descriptor, cannot be read. */
function peerIsUid(socket: Socket, uid: number): boolean {
  // Node does not expose the descriptor of an accepted pipe publicly: `_handle` is its internal Pipe wrap,
  // whose `fd` getter is the only way to reach it.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return false;
  try {
    return peerUid(fd) === uid;
  } catch {
    return false;
  }
}

/** Reads exactly one request frame, never buffering more than that frame, then answers it. */
function serveConnection(socket: Socket, ctx: Context): void {
  let header = Buffer.alloc(0);
  let frame: Buffer | undefined;
  let filled = 0;
  const refuse = (): void => {
    ctx.stats.badFrames++;
    socket.destroy();
  };
  const readTimer = setTimeout(() => {
    ctx.stats.readTimeouts++;
    socket.destroy();
  }, ctx.timeoutMs);
  socket.once('close', () => clearTimeout(readTimer));

  const onData = (chunk: Buffer): void => {
    let data = chunk;
    if (frame === undefined) {
      const take = FRAME_HEADER_LENGTH - header.length;
      header = Buffer.concat([header, data.subarray(0, take)]);
      data = data.subarray(take);
      let bodyLength: number | undefined;
      try {
        bodyLength = readFrameHeader(header, 'request');
      } catch {
        return refuse();
      }
      if (bodyLength === undefined) return;
      frame = Buffer.alloc(FRAME_HEADER_LENGTH + bodyLength);
      header.copy(frame);
      filled = FRAME_HEADER_LENGTH;
    }
    // One request per connection: a byte past the frame is a protocol error.
    if (filled + data.length > frame.length) return refuse();
    data.copy(frame, filled);
    filled += data.length;
    if (filled === frame.length) {
      clearTimeout(readTimer);
      onFrame(frame);
    }
  };
  const onFrame = (complete: Buffer): void => {
    socket.off('end', refuse);
    let name: Uint8Array;
    try {
      name = decodeRequest(complete).name;
    } catch {
      return refuse();
    }
    socket.off('data', onData);
    socket.on('data', refuse);
    void answer(socket, name, ctx);
  };
  socket.on('data', onData);
  socket.once('end', refuse); // the client gave up before its frame was complete
}

/** Runs the handler within its bound; anything but a well-formed answer becomes status 3. */
async function respond(name: Uint8Array, ctx: Context): Promise<Uint8Array> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = Symbol('timeout');
  try {
    const work = Promise.resolve().then(() => ctx.handler(name));
    work.catch(() => undefined); // a late rejection after the timeout must not go unhandled
    const limit = new Promise<typeof timedOut>((r) => (timer = setTimeout(() => r(timedOut), ctx.handlerTimeoutMs)));
    const result = await Promise.race([work, limit]);
    if (result === timedOut) {
      ctx.stats.handlerTimeouts++;
      return encodeResponse(UNAVAILABLE);
    }
    return encodeResponse(result);
  } catch {
    // The handler failed, or returned something the protocol cannot carry (out of bounds, too large).
    ctx.stats.handlerErrors++;
    return encodeResponse(UNAVAILABLE);
  } finally {
    clearTimeout(timer);
  }
}

async function answer(socket: Socket, name: Uint8Array, ctx: Context): Promise<void> {
  const frame = await respond(name, ctx);
  if (socket.destroyed) return;
  // A client that does not read its answer cannot hold the slot past the bound.
  const writeTimer = setTimeout(() => {
    ctx.stats.writeTimeouts++;
    socket.destroy();
  }, ctx.timeoutMs);
  socket.once('close', () => clearTimeout(writeTimer));
  ctx.stats.answered++;
  // Once flushed, the answer sits in the peer's receive queue: closing now is safe.
  socket.end(frame, () => socket.destroy());
}

/** Checks capacity, then the peer's uid, before a single byte is read; refusals are closed at once. */
function admit(socket: Socket, gate: { active: Set<Socket>; maxConnections: number; uid: number }, ctx: Context): void {
  ctx.stats.accepted++;
  socket.on('error', () => socket.destroy());
  const refused = gate.active.size >= gate.maxConnections ? 'refusedBusy' : !peerIsUid(socket, gate.uid) ? 'refusedUid' : undefined;
  if (refused !== undefined) {
    ctx.stats[refused]++;
    socket.destroy();
    return;
  }
  gate.active.add(socket);
  socket.once('close', () => gate.active.delete(socket));
  serveConnection(socket, ctx);
}

// ---- the service ----

/**
 * What can be checked of a socket path without listening: its length, its
 * directory (made 0700 when missing; refused when another user could write
 * it), and that nothing but a socket is in the way. `serve` runs it before
 * it spends time on its sources.
 */
export function checkSocketPath(path: string): string {
  const socketPath = checkedSocketPath(path);
  prepareSocketDirectory(dirname(socketPath), ownUid());
  socketExists(socketPath);
  return socketPath;
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const socketPath = checkedSocketPath(opts.socketPath);
  const ctx: Context = {
    handler: opts.handler,
    timeoutMs: positiveInteger(opts.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs'),
    handlerTimeoutMs: positiveInteger(opts.handlerTimeoutMs, DEFAULT_HANDLER_TIMEOUT_MS, 'handlerTimeoutMs'),
    stats: { accepted: 0, answered: 0, refusedUid: 0, refusedBusy: 0, badFrames: 0, readTimeouts: 0, writeTimeouts: 0, handlerErrors: 0, handlerTimeouts: 0, acceptErrors: 0 },
  };
  const maxConnections = positiveInteger(opts.maxConnections, DEFAULT_MAX_CONNECTIONS, 'maxConnections');
  const uid = ownUid();
  loadBinding(); // fail at start, not on the first connection

  const active = new Set<Socket>();
  // allowHalfOpen: a client may shut down its write side after the request and still read the answer.
  const server = createServer({ allowHalfOpen: true }, (socket) => admit(socket, { active, maxConnections, uid }, ctx));
  if (opts.listenFd !== undefined) {
    await listen(server, { fd: opts.listenFd });
  } else {
    prepareSocketDirectory(dirname(socketPath), uid);
    await removeStaleSocket(socketPath);
    try {
      await listen(server, socketPath);
    } catch (e) {
      throw new EngineError('USAGE', `cannot listen on ${describePathError(e, socketPath)}`, { cause: e });
    }
    try {
      chmodSync(socketPath, 0o600);
    } catch (e) {
      server.close();
      throw new EngineError('USAGE', `cannot make ${socketPath} private (mode 0600): ${describePathError(e, socketPath)}`, { cause: e });
    }
  }
  // e.g. EMFILE on accept: count it and keep serving.
  server.on('error', () => void ctx.stats.acceptErrors++);

  let closing: Promise<void> | undefined;
  return {
    socketPath,
    stats: ctx.stats,
    close(): Promise<void> {
      // libuv unlinks the socket file when the listener closes.
      closing ??= new Promise<void>((done) => {
        server.close(() => done());
        for (const s of active) s.destroy();
      });
      return closing;
    },
  };
}
