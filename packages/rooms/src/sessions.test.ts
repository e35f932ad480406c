import { createManualTime, ErrorCode, isTickwireError, type Store } from '@tickwire/core';
import { createMemoryLogger, createMemoryStore } from '@tickwire/core/memory';
import { holdWrites } from '@tickwire/core/testing';
import { describe, expect, it } from 'vitest';
import { createSessionRegistry, type SessionRegistryOptions } from './sessions.js';
import { createTokenSigner } from './tokens.js';

const SECRET = 'sessions-test-secret-of-32-bytes';
const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function setup(overrides: Partial<SessionRegistryOptions> = {}) {
  const time = createManualTime();
  const wall = { now: 1_700_000_000_000 };
  const signer = createTokenSigner({ secret: SECRET, clock: () => wall.now });
  const store = overrides.store ?? createMemoryStore({ clock: time });
  let ids = 0;
  const registry = createSessionRegistry({
    signer,
    time,
    store,
    graceMs: 1_000,
    generateId: () => `id${++ids}`,
    ...overrides,
  });
  const expired: string[] = [];
  const revoked: string[] = [];
  registry.on('expired', (id) => expired.push(id));
  registry.on('revoked', (id) => revoked.push(id));
  return { time, wall, signer, store, registry, expired, revoked };
}

async function reasonOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    if (isTickwireError(error, ErrorCode.UNAUTHORIZED)) return error.details?.reason;
    throw error;
  }
  throw new Error('expected UNAUTHORIZED');
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isTickwireError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a TickwireError');
}

describe('createSessionRegistry', () => {
  it('creates a session at generation 0 with a token for it, stored as JSON under the prefix', async () => {
    const { registry, store, signer, wall } = setup();
    const { session, token } = await registry.create({ userId: 'u1', auth: { role: 'admin' } });
    expect(session).toEqual({
      id: 'id1',
      userId: 'u1',
      auth: { role: 'admin' },
      gen: 0,
      createdAt: wall.now,
    });
    expect(signer.verify(token)).toEqual({
      sid: 'id1',
      uid: 'u1',
      exp: wall.now + 86_400_000,
      jti: 'id2',
      gen: 0,
    });
    expect(JSON.parse((await store.get('tickwire:session:id1')) as string)).toEqual(session);
    expect(await registry.get('id1')).toEqual(session);
    expect(await registry.get('nope')).toBeNull();
    expect(registry.graceMs).toBe(1_000);
  });

  it('resume rotates the token: once the new one is confirmed, every older one is replayed', async () => {
    const { registry } = setup();
    const first = await registry.create();
    const second = await registry.resume(first.token);
    expect(second.session.gen).toBe(1);
    expect(second.token).not.toBe(first.token);
    await registry.confirm('id1', 1); // the client spoke on the connection that carried it
    expect(await reasonOf(registry.resume(first.token))).toBe('replayed');
    const third = await registry.resume(second.token);
    expect(third.session).toMatchObject({ id: 'id1', gen: 2 });
    await registry.confirm('id1', 2);
    expect(await reasonOf(registry.resume(second.token))).toBe('replayed');
    expect(await reasonOf(registry.resume(first.token))).toBe('replayed');
    // A confirmation of another generation changes nothing.
    await registry.confirm('id1', 7);
    expect(await reasonOf(registry.resume(second.token))).toBe('replayed');
  });

  it('accepts the previous token while the newest is unconfirmed (its Welcome may be lost)', async () => {
    const { registry } = setup();
    const { token } = await registry.create();
    const lost = await registry.resume(token); // the Welcome carrying it never arrived
    const again = await registry.resume(token);
    expect(again.session.gen).toBe(2);
    // Only one step back: the lost token's predecessor of a predecessor is not accepted.
    await registry.resume(again.token);
    expect(await reasonOf(registry.resume(token))).toBe('replayed');
    expect(await reasonOf(registry.resume(lost.token))).toBe('replayed');
  });

  it('of two concurrent resumes with one token, the loser is refused as replayed', async () => {
    // Writes are held until both resumes have read the record: their read-modify-writes overlap.
    const held = holdWrites(createMemoryStore());
    const { registry } = setup({ store: held.store });
    const { token } = await registry.create();
    held.hold();
    const racing = [registry.resume(token), registry.resume(token)];
    for (let i = 0; i < 20 && held.waiting < 2; i++) await flush();
    expect(held.waiting).toBe(2); // both read generation 0
    held.release();
    const results = await Promise.allSettled(racing);
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({
      code: ErrorCode.UNAUTHORIZED,
      details: { reason: 'replayed', sessionId: 'id1' },
    });
    expect((await registry.get('id1'))?.gen).toBe(1);
    // The winner's token is the one that resumes.
    const winner = (won[0] as PromiseFulfilledResult<{ token: string }>).value.token;
    expect((await registry.resume(winner)).session.gen).toBe(2);
  });

  it('without held writes, two concurrent resumes with one token still open one generation', async () => {
    const { registry } = setup();
    const { token } = await registry.create();
    const results = await Promise.allSettled([registry.resume(token), registry.resume(token)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await registry.get('id1'))?.gen).toBe(1);
  });

  it('two holders of one token cannot take turns with the previous-token allowance', async () => {
    const { registry } = setup();
    const { token } = await registry.create();
    const first = await registry.resume(token); // holder A, unconfirmed
    const second = await registry.resume(token); // holder B, with the previous token
    expect(second.session.gen).toBe(2);
    // A's token is now the previous one, but gen 2 was itself issued for a previous token.
    expect(await reasonOf(registry.resume(first.token))).toBe('replayed');
    expect((await registry.resume(second.token)).session.gen).toBe(3);
    // A normal resume restores the allowance for a lost Welcome.
    expect((await registry.resume(second.token)).session.gen).toBe(4);
  });

  it('refuses tampered, malformed and expired tokens with their reason', async () => {
    const { registry, wall } = setup({ tokenTtlMs: 60_000 });
    const { token } = await registry.create();
    const [body, signature] = token.split('.') as [string, string];
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...payload, gen: 5 })).toString('base64url');
    expect(await reasonOf(registry.resume(`${forged}.${signature}`))).toBe('signature');
    expect(await reasonOf(registry.resume('garbage'))).toBe('malformed');
    wall.now += 60_000;
    expect(await reasonOf(registry.resume(token))).toBe('expired');
  });

  it("a session whose record is gone is 'expired'", async () => {
    const { registry, store } = setup();
    const { token } = await registry.create();
    await store.delete('tickwire:session:id1');
    const error = await registry.resume(token).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: ErrorCode.UNAUTHORIZED,
      details: { reason: 'expired', sessionId: 'id1' },
    });
    expect((error as Error).message).toMatch(/start a new session/);
  });

  it('keeps a revoked record only a minute (churned sessions do not pile up for a day)', async () => {
    const { registry, time, store } = setup();
    const { token } = await registry.create();
    await registry.revoke('id1');
    expect(await reasonOf(registry.resume(token))).toBe('revoked');
    time.advance(60_001);
    expect(await store.scan('')).toEqual([]);
    expect(await reasonOf(registry.resume(token))).toBe('expired');
  });

  it("revoke ends the session: resume is 'revoked', get is null, update is NOT_FOUND", async () => {
    const { registry, revoked } = setup();
    const { token } = await registry.create();
    await registry.revoke('id1');
    await registry.revoke('id1');
    await registry.revoke('unknown');
    expect(revoked).toEqual(['id1']);
    expect(await reasonOf(registry.resume(token))).toBe('revoked');
    expect(await registry.get('id1')).toBeNull();
    expect(await codeOf(registry.update('id1', { roomId: 'r' }))).toBe(ErrorCode.NOT_FOUND);
  });

  it('expires a detached session after graceMs: event, record deleted, resume refused', async () => {
    const { registry, time, expired } = setup();
    const { token } = await registry.create();
    registry.detached('id1');
    registry.detached('id1'); // still the first timer
    await flush();
    time.advance(999);
    await flush();
    expect(expired).toEqual([]);
    time.advance(1);
    await flush();
    expect(expired).toEqual(['id1']);
    expect(await registry.get('id1')).toBeNull();
    expect(await reasonOf(registry.resume(token))).toBe('expired');
  });

  it('attached and resume cancel the grace timer', async () => {
    const { registry, time, expired } = setup();
    const a = await registry.create();
    await registry.create();
    registry.detached('id1');
    registry.detached('id3');
    registry.attached('id3');
    await registry.resume(a.token);
    time.advance(5_000);
    await flush();
    expect(expired).toEqual([]);
    expect(await registry.get('id1')).not.toBeNull();
    expect(await registry.get('id3')).not.toBeNull();
  });

  it('a timer that fires while the session is being resumed does not delete it', async () => {
    const time = createManualTime();
    const inner = createMemoryStore({ clock: time });
    // Resumes on another process (same store, no shared timers).
    const { registry, expired } = setup({ store: inner, time });
    const elsewhere = setup({ store: inner, time, generateId: () => 'other' }).registry;
    const { token } = await registry.create();
    registry.detached('id1');
    await flush();
    await elsewhere.resume(token);
    const moved: string[] = [];
    registry.on('moved', (sessionId) => moved.push(sessionId));
    time.advance(1_000);
    await flush();
    expect(expired).toEqual([]);
    expect(moved).toEqual(['id1']); // this process lets its copy go
    expect((await registry.get('id1'))?.gen).toBe(1);
  });

  it('refreshes the record TTL at every resume', async () => {
    const { registry, time, wall } = setup({ tokenTtlMs: 1_000 });
    let { token } = await registry.create();
    for (let i = 0; i < 3; i++) {
      time.advance(800);
      wall.now += 800;
      ({ token } = await registry.resume(token));
    }
    expect(await registry.get('id1')).not.toBeNull();
    time.advance(1_000);
    expect(await registry.get('id1')).toBeNull();
  });

  it('update sets and clears roomId and data, keeping the generation', async () => {
    const { registry } = setup();
    await registry.create({ userId: 'u' });
    expect(await registry.update('id1', { roomId: 'r1', data: { hp: 3 } })).toEqual(
      expect.objectContaining({ roomId: 'r1', data: { hp: 3 }, gen: 0 }),
    );
    const cleared = await registry.update('id1', { roomId: null, data: undefined });
    expect(cleared).not.toHaveProperty('roomId');
    expect(cleared).not.toHaveProperty('data');
    expect(await registry.update('id1', {})).toEqual(cleared);
    expect(await codeOf(registry.update('missing', { roomId: 'r' }))).toBe(ErrorCode.NOT_FOUND);
    expect(await codeOf(registry.update('id1', null as never))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(await codeOf(registry.update('id1', { roomId: 5 as never }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
  });

  it('resume retries when an unrelated update wins the compare-and-set', async () => {
    const time = createManualTime();
    const inner = createMemoryStore({ clock: time });
    let interfere: (() => Promise<unknown>) | undefined;
    const store: Store = {
      ...inner,
      async compareAndSet(key, expected, next, options) {
        const run = interfere;
        interfere = undefined;
        if (run) await run();
        return inner.compareAndSet(key, expected, next, options);
      },
    };
    const { registry } = setup({ store, time });
    const { token } = await registry.create();
    interfere = () => registry.update('id1', { data: 'x' });
    const resumed = await registry.resume(token);
    expect(resumed.session).toMatchObject({ gen: 1, data: 'x' });
  });

  it('gives up with CONFLICT when the record never stops changing', async () => {
    const time = createManualTime();
    const inner = createMemoryStore({ clock: time });
    const { registry } = setup({ store: inner, time });
    await registry.create();
    const busy: Store = { ...inner, compareAndSet: async () => false };
    const contended = setup({ store: busy, time }).registry;
    expect(await codeOf(contended.update('id1', { data: 1 }))).toBe(ErrorCode.CONFLICT);
    expect(await codeOf(contended.create())).toBe(ErrorCode.CONFLICT);
  });

  it('create refuses a bad userId or auth that is not JSON (INVALID_ARGUMENT)', async () => {
    const { registry } = setup();
    expect(await codeOf(registry.create({ userId: 7 as never }))).toBe(ErrorCode.INVALID_ARGUMENT);
    const error = await registry.create({ auth: { big: 1n } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect((error as Error).message).toMatch(/JSON-serialisable/);
  });

  it('a corrupt record is INTERNAL, naming its key', async () => {
    const { registry, store } = setup();
    await store.set('tickwire:session:bad', '{not json');
    const error = await registry.get('bad').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCode.INTERNAL });
    expect((error as Error).message).toMatch(/tickwire:session:bad/);
    await store.set('tickwire:session:bytes', new TextEncoder().encode('{"id":"other","gen":0}'));
    expect(await codeOf(registry.get('bytes'))).toBe(ErrorCode.INTERNAL);
  });

  it('reports a store failure during expiry through the logger', async () => {
    const logger = createMemoryLogger();
    const { registry, store, time, expired } = setup({ logger });
    await registry.create();
    registry.detached('id1');
    await flush();
    await store.close();
    time.advance(1_000);
    await flush();
    expect(expired).toEqual([]);
    expect(logger.records.some((r) => r.level === 'warn' && r.fields.sessionId === 'id1')).toBe(
      true,
    );
  });

  it('logs a listener that throws instead of crashing', async () => {
    const logger = createMemoryLogger();
    const { registry, time } = setup({ logger });
    registry.on('expired', () => {
      throw new Error('listener bug');
    });
    await registry.create();
    registry.detached('id1');
    time.advance(1_000);
    await flush();
    expect(logger.records.some((r) => r.level === 'error')).toBe(true);
  });

  it('close cancels every grace timer and keeps the records', async () => {
    const { registry, time, expired } = setup();
    await registry.create();
    registry.detached('id1');
    registry.close();
    time.advance(10_000);
    await flush();
    expect(expired).toEqual([]);
    expect(await registry.get('id1')).not.toBeNull();
  });

  it('expires at once with graceMs 0; a session deleted meanwhile still reports expired', async () => {
    const { registry, time, expired, store } = setup({ graceMs: 0 });
    await registry.create();
    await registry.create();
    registry.detached('id1');
    await store.delete('tickwire:session:id3');
    registry.detached('id3');
    time.advance(0);
    await flush();
    expect(expired.sort()).toEqual(['id1', 'id3']);
  });

  it('validates its options and ids', () => {
    const signer = createTokenSigner({ secret: SECRET });
    const bad: unknown[] = [
      {},
      { signer: {} },
      { signer, graceMs: -1 },
      { signer, tokenTtlMs: 0 },
      { signer, tokenTtlMs: Number.POSITIVE_INFINITY },
    ];
    for (const options of bad) {
      expect(() => createSessionRegistry(options as SessionRegistryOptions)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    const registry = createSessionRegistry({ signer });
    expect(() => registry.detached('')).toThrow(/sessionId/);
    expect(() => registry.attached(5 as never)).toThrow(/sessionId/);
    registry.close();
  });

  it('defaults to random 128-bit ids', async () => {
    const signer = createTokenSigner({ secret: SECRET });
    const registry = createSessionRegistry({ signer, time: createManualTime() });
    const a = await registry.create();
    const b = await registry.create();
    expect(a.session.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a.session.id).not.toBe(b.session.id);
  });
});
