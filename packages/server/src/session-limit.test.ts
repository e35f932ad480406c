// `limits.maxSessions` under concurrent handshakes: a slot is taken before the auth hook runs,
// so handshakes whose auth is still pending can never together open more sessions than allowed;
// and every handshake that does not end in a session gives its slot back.
import {
  CloseCode,
  createManualTime,
  type ManualTime,
  Opcode,
  PROTOCOL_VERSION,
  type Store,
} from '@tickwire/core';
import { createMemoryStore } from '@tickwire/core/memory';
import { holdWrites } from '@tickwire/core/testing';
import { decodeWelcome, encodeHello } from '@tickwire/rooms/protocol';
import { describe, expect, it } from 'vitest';
import type { AuthContext, AuthResult, TickwireServer } from './server.js';
import { cleanupAfterEach, type MemoryPeer, startMemoryServer, until } from './test-game.js';

const cleanup = cleanupAfterEach();
const MAX_SESSIONS = 3;

interface Peer extends MemoryPeer {
  welcomed: () => boolean;
}

/** An auth call held until the test settles it. */
interface PendingAuth {
  context: AuthContext;
  resolve: (result: AuthResult) => void;
  reject: (error: unknown) => void;
}

async function start(
  store?: Store,
  secret?: string,
): Promise<{
  server: TickwireServer;
  time: ManualTime;
  pending: PendingAuth[];
  connect: (token?: string) => Promise<Peer>;
}> {
  const time = createManualTime(1_000_000);
  const pending: PendingAuth[] = [];
  const started = await startMemoryServer(
    {
      time,
      limits: { maxSessions: MAX_SESSIONS },
      ...(store === undefined ? {} : { store }),
      ...(secret === undefined ? {} : { session: { secret } }),
      auth: (context) =>
        new Promise<AuthResult>((resolve, reject) => {
          pending.push({ context, resolve, reject });
        }),
    },
    cleanup,
  );
  const { server } = started;
  const connect = async (token = ''): Promise<Peer> => {
    const peer = await started.connect();
    peer.connection.send(
      encodeHello({ version: PROTOCOL_VERSION, token, received: 0, auth: undefined }),
    );
    return { ...peer, welcomed: () => peer.frames.some((data) => data[0] === Opcode.Welcome) };
  };
  return { server, time, pending, connect };
}

/** Lets promise chains (auth results, store writes) run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

const decided = (peer: Peer): boolean => peer.welcomed() || peer.closed() !== undefined;

describe('maxSessions under concurrent handshakes', () => {
  it(`lets ${MAX_SESSIONS} of ${MAX_SESSIONS + 2} handshakes with pending auth through; the rest get ServerFull`, async () => {
    const { server, pending, connect } = await start();
    const peers = await Promise.all(Array.from({ length: MAX_SESSIONS + 2 }, () => connect()));
    // Every Hello handled: either its auth hook is pending or it was refused at once.
    await until(
      () =>
        pending.length + peers.filter((peer) => peer.closed() !== undefined).length ===
        peers.length,
      3000,
      'every Hello',
    );
    await settle();
    for (const call of pending) call.resolve(true);
    await until(() => peers.every(decided), 3000, 'every handshake to end');
    await settle();

    const welcomed = peers.filter((peer) => peer.welcomed());
    const full = peers.filter((peer) => peer.closed()?.code === CloseCode.ServerFull);
    expect(welcomed).toHaveLength(MAX_SESSIONS);
    expect(full).toHaveLength(2);
    for (const peer of full) expect(peer.closed()!.reason).toBe('server is full (session limit)');
    // The refused ones never reached the auth hook.
    expect(pending).toHaveLength(MAX_SESSIONS);
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
    expect(server.stats().rejections['max-sessions']).toBe(2);
    for (const peer of welcomed) expect(peer.connection.state).toBe('open');

    // A seat freed is a seat again: an opened session holds no slot besides its own.
    const gone = decodeWelcome(welcomed[0]!.frames.find((data) => data[0] === Opcode.Welcome)!);
    expect(await server.kick(gone.sessionId)).toBe(true);
    const later = await connect();
    await until(() => pending.length === MAX_SESSIONS + 1, 3000, 'the later auth call');
    pending[MAX_SESSIONS]!.resolve(true);
    await until(() => later.welcomed(), 3000, 'the later Welcome');
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
  });

  it('gives the slot back when the auth hook refuses or throws', async () => {
    const { server, pending, connect } = await start();
    const peers = await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS, 3000, 'the auth calls');
    // Full while these are pending.
    const extra = await connect();
    await until(() => extra.closed() !== undefined, 3000, 'the refusal');
    expect(extra.closed()!.code).toBe(CloseCode.ServerFull);

    pending[0]!.resolve(false);
    pending[1]!.reject(new Error('auth backend down'));
    await until(
      () => peers[0]!.closed() !== undefined && peers[1]!.closed() !== undefined,
      3000,
      'the two refusals',
    );
    expect(peers[0]!.closed()!.code).toBe(CloseCode.Unauthorized);
    expect(peers[1]!.closed()!.code).toBe(CloseCode.Unauthorized);

    // Two slots are free again.
    const later = await Promise.all([connect(), connect()]);
    await until(() => pending.length === MAX_SESSIONS + 2, 3000, 'the later auth calls');
    for (const call of pending.slice(2)) call.resolve(true);
    await until(() => later.every((peer) => peer.welcomed()), 3000, 'the later Welcomes');
    expect(peers[2]!.welcomed()).toBe(true);
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
  });

  it('gives the slot back when the connection closes during auth, even if auth never settles', async () => {
    const { server, pending, connect } = await start();
    const peers = await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS, 3000, 'the auth calls');
    peers[0]!.connection.close(CloseCode.GoingAway, 'gone');
    await until(() => server.stats().connections === MAX_SESSIONS - 1, 3000, 'the close');

    const later = await connect();
    await until(() => pending.length === MAX_SESSIONS + 1, 3000, 'the later auth call');
    pending[MAX_SESSIONS]!.resolve(true);
    await until(() => later.welcomed(), 3000, 'the later Welcome');
    // The abandoned handshake's auth finally accepts: no session for a closed connection.
    pending[0]!.resolve(true);
    pending[1]!.resolve(true);
    pending[2]!.resolve(true);
    await until(() => peers[1]!.welcomed() && peers[2]!.welcomed(), 3000, 'the Welcomes');
    await settle();
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
  });

  it('gives the slot back when the auth hook outlives the handshake timeout', async () => {
    const { server, time, pending, connect } = await start();
    const peers = await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS, 3000, 'the auth calls');
    time.advance(server.config.handshakeTimeoutMs + 1);
    await until(() => peers.every((peer) => peer.closed() !== undefined), 3000, 'the timeouts');
    for (const peer of peers) expect(peer.closed()!.code).toBe(CloseCode.Timeout);

    const later = await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === 2 * MAX_SESSIONS, 3000, 'the later auth calls');
    for (const call of pending.slice(MAX_SESSIONS)) call.resolve(true);
    await until(() => later.every((peer) => peer.welcomed()), 3000, 'the later Welcomes');
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
  });

  it('gives the slot back when the session store fails', async () => {
    const inner = createMemoryStore();
    let failing = true;
    const store: Store = Object.assign(Object.create(inner) as Store, {
      compareAndSet: async (...args: Parameters<Store['compareAndSet']>) => {
        if (failing) throw new Error('store down');
        return inner.compareAndSet(...args);
      },
    });
    const { server, pending, connect } = await start(store);
    const peers = await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS, 3000, 'the auth calls');
    for (const call of pending) call.resolve(true);
    await until(() => peers.every((peer) => peer.closed() !== undefined), 3000, 'the failures');
    for (const peer of peers) expect(peer.closed()!.code).toBe(CloseCode.InternalError);

    failing = false;
    const later = await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === 2 * MAX_SESSIONS, 3000, 'the later auth calls');
    for (const call of pending.slice(MAX_SESSIONS)) call.resolve(true);
    await until(() => later.every((peer) => peer.welcomed()), 3000, 'the later Welcomes');
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
  });
});

describe('maxSessions for sessions restored from a shared store', () => {
  const SECRET = 'session-limit-test-secret-32-bytes!';

  /** Opens one session on a first server sharing `store`, then closes that server. */
  async function sessionFromAnotherProcess(store: Store): Promise<{ id: string; token: string }> {
    const first = await start(store, SECRET);
    const peer = await first.connect();
    await until(() => first.pending.length === 1, 3000, 'the auth call');
    first.pending[0]!.resolve(true);
    await until(() => peer.welcomed(), 3000, 'the Welcome');
    const welcome = decodeWelcome(peer.frames.find((data) => data[0] === Opcode.Welcome)!);
    await first.server.close();
    return { id: welcome.sessionId, token: welcome.token };
  }

  it('refuses a restore with ServerFull when full, without rotating its token', async () => {
    const store = createMemoryStore();
    const restored = await sessionFromAnotherProcess(store);
    const genBefore = (await store.get(`tickwire:session:${restored.id}`)) as string;

    const { server, pending, connect } = await start(store, SECRET);
    const peers = await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS, 3000, 'the auth calls');
    // Full with pending handshakes: the restore is refused before it touches the store.
    const refused = await connect(restored.token);
    await until(() => refused.closed() !== undefined, 3000, 'the refusal');
    expect(refused.closed()!.code).toBe(CloseCode.ServerFull);
    expect(refused.closed()!.reason).toBe('server is full (session limit)');
    expect(server.stats().rejections['max-sessions']).toBe(1);
    expect(await store.get(`tickwire:session:${restored.id}`)).toBe(genBefore);

    // Full with live sessions too.
    for (const call of pending) call.resolve(true);
    await until(() => peers.every((peer) => peer.welcomed()), 3000, 'the Welcomes');
    const again = await connect(restored.token);
    await until(() => again.closed() !== undefined, 3000, 'the second refusal');
    expect(again.closed()!.code).toBe(CloseCode.ServerFull);
    expect(server.stats().sessions).toBe(MAX_SESSIONS);

    // A freed seat takes it, with the same (never rotated) token.
    const gone = decodeWelcome(peers[0]!.frames.find((data) => data[0] === Opcode.Welcome)!);
    expect(await server.kick(gone.sessionId)).toBe(true);
    const later = await connect(restored.token);
    await until(() => later.welcomed(), 3000, 'the restore');
    const welcome = decodeWelcome(later.frames.find((data) => data[0] === Opcode.Welcome)!);
    expect(welcome.sessionId).toBe(restored.id);
    expect(welcome.resume).toBe('restored');
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
  });

  it('tells a session gone from the store (expired or revoked) SessionExpired, not ServerFull, when full', async () => {
    const store = createMemoryStore();
    const gone = await sessionFromAnotherProcess(store);
    await store.delete(`tickwire:session:${gone.id}`);
    const { server, pending, connect } = await start(store, SECRET);
    await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS, 3000, 'the auth calls');
    const refused = await connect(gone.token);
    await until(() => refused.closed() !== undefined, 3000, 'the refusal');
    expect(refused.closed()!.code).toBe(CloseCode.SessionExpired);
    expect(server.stats().rejections['max-sessions'] ?? 0).toBe(0);
  });

  it('refuses a forged token naming a session not live here as Unauthorized, not ServerFull, when full', async () => {
    const { server, pending, connect } = await start(createMemoryStore(), SECRET);
    await Promise.all(Array.from({ length: MAX_SESSIONS }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS, 3000, 'the auth calls');
    const body = Buffer.from(
      JSON.stringify({ sid: 'ghost', exp: Date.now() + 60_000, jti: 'x', gen: 0 }),
    ).toString('base64url');
    const forged = await connect(`${body}.${'A'.repeat(43)}`);
    await until(() => forged.closed() !== undefined, 3000, 'the refusal');
    expect(forged.closed()!.code).toBe(CloseCode.Unauthorized);
    expect(server.stats().rejections['max-sessions'] ?? 0).toBe(0);
  });

  it('a restore in progress holds a slot: concurrent new handshakes cannot overfill', async () => {
    const held = holdWrites(createMemoryStore());
    const store = held.store;
    const restored = await sessionFromAnotherProcess(store);
    const { server, pending, connect } = await start(store, SECRET);
    const peers = await Promise.all(Array.from({ length: MAX_SESSIONS - 1 }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS - 1, 3000, 'the auth calls');

    held.hold();
    const restoring = await connect(restored.token);
    await settle(); // the restore waits on its store write, holding the last slot
    const extra = await connect();
    await until(() => extra.closed() !== undefined, 3000, 'the refusal');
    expect(extra.closed()!.code).toBe(CloseCode.ServerFull);

    held.release();
    for (const call of pending) call.resolve(true);
    await until(
      () => restoring.welcomed() && peers.every((peer) => peer.welcomed()),
      3000,
      'the Welcomes',
    );
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
    expect(pending).toHaveLength(MAX_SESSIONS - 1);
  });

  it('a refused or abandoned restore gives its slot back', async () => {
    const store = createMemoryStore();
    const restored = await sessionFromAnotherProcess(store);
    const { server, pending, connect } = await start(store, SECRET);
    // A forged token naming a session not live here is refused before it takes a slot.
    const [body] = restored.token.split('.') as [string];
    const forged = await connect(`${body}.${'A'.repeat(43)}`);
    await until(() => forged.closed() !== undefined, 3000, 'the refusal');
    expect(forged.closed()!.code).toBe(CloseCode.Unauthorized);

    const peers = await Promise.all(Array.from({ length: MAX_SESSIONS - 1 }, () => connect()));
    await until(() => pending.length === MAX_SESSIONS - 1, 3000, 'the auth calls');
    const restoring = await connect(restored.token);
    await until(() => restoring.welcomed(), 3000, 'the restore');
    for (const call of pending) call.resolve(true);
    await until(() => peers.every((peer) => peer.welcomed()), 3000, 'the Welcomes');
    expect(server.stats().sessions).toBe(MAX_SESSIONS);
  });
});
