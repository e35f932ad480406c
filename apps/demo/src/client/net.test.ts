// The session's join against close(): the client engine, the transport and the arena are
// stand-ins, so only the session's own logic runs.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const fake = vi.hoisted(() => {
  type Listener = (...args: unknown[]) => void;
  const client = {
    state: 'open' as string,
    listeners: new Map<string, Listener[]>(),
    on(event: string, listener: Listener) {
      client.listeners.set(event, [...(client.listeners.get(event) ?? []), listener]);
      return () => {};
    },
    connect: () => Promise.resolve(),
    close() {
      client.state = 'closed';
    },
  };
  return { client };
});

vi.mock('@tickwire/client', () => ({ createClient: () => fake.client }));
vi.mock('@tickwire/transport/browser', () => ({ createBrowserWsClient: () => ({}) }));
vi.mock('./network.js', () => ({
  conditionTransport: () => ({ transport: {}, setPreset: () => {} }),
}));
vi.mock('./arena.js', () => ({ joinArena: vi.fn(), createArena: vi.fn() }));

import { createArena, joinArena } from './arena.js';
import { startArenaSession } from './net.js';

const fakeRoom = () => ({ state: 'joined', on: vi.fn(), leave: vi.fn(() => Promise.resolve()) });
const fakeArena = () => ({ dispose: vi.fn() });
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const start = () =>
  startArenaSession({ url: 'ws://test', name: 'ada', preset: 'lan', onChange: () => {} });

beforeEach(() => {
  fake.client.state = 'open';
  fake.client.listeners.clear();
});
afterEach(() => {
  vi.mocked(joinArena).mockReset();
  vi.mocked(createArena).mockReset();
});

describe('arena session', () => {
  it('plays in the room a join completes', async () => {
    const room = fakeRoom();
    const arena = fakeArena();
    vi.mocked(joinArena).mockResolvedValue(room as never);
    vi.mocked(createArena).mockReturnValue(arena as never);
    const session = start();
    await settle();
    expect(createArena).toHaveBeenCalledWith(fake.client, room);
    expect(session.arena).toBe(arena);
    expect(session.status).toEqual({ state: 'connected' });
    session.close();
    expect(arena.dispose).toHaveBeenCalled();
    expect(session.arena).toBeNull();
  });

  it('leaves, and creates no arena for, a join that completes after close()', async () => {
    const join = deferred<ReturnType<typeof fakeRoom>>();
    vi.mocked(joinArena).mockReturnValue(join.promise as never);
    const session = start();
    await settle();
    expect(joinArena).toHaveBeenCalledTimes(1);
    session.close();
    const room = fakeRoom();
    join.resolve(room);
    await settle();
    expect(createArena).not.toHaveBeenCalled();
    expect(room.leave).toHaveBeenCalledTimes(1);
    expect(room.on).not.toHaveBeenCalled();
    expect(session.arena).toBeNull();
    expect(session.status.state).not.toBe('connected');
  });
});
