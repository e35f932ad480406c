// Test support (not published): a small room type with messages and replicated players, and
// helpers that start a server and connect clients over a given transport, on loopback.

import { type Client, type ClientOptions, createClient } from '@tickwire/client';
import {
  type ClientTransport,
  type CloseInfo,
  type Connection,
  silentLogger,
} from '@tickwire/core';
import { createMemoryClient, createMemoryNetwork, createMemoryServer } from '@tickwire/core/memory';
import { defineEntityType } from '@tickwire/replication';
import { defineRoom } from '@tickwire/rooms';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';
import { createTcpClient } from '@tickwire/transport/tcp';
import { createUdpClient } from '@tickwire/transport/udp';
import { createWsClient } from '@tickwire/transport/ws';
import { afterEach } from 'vitest';
import { type RoomReplication, replicate } from './replicate.js';
import { createServer, type TickwireServer, type TickwireServerOptions } from './server.js';

export const Player = defineEntityType('player', {
  x: t.quantized(0, 1024, 1 / 64),
  y: t.quantized(0, 1024, 1 / 64),
  hp: t.u8(),
});

export const arenaMessages = {
  client: defineMessages({
    move: {
      id: 1,
      schema: defineSchema({ x: t.quantized(0, 1024, 1 / 64), y: t.quantized(0, 1024, 1 / 64) }),
    },
    chat: { id: 2, schema: defineSchema({ text: t.string({ maxBytes: 200 }) }) },
    burst: { id: 3, schema: defineSchema({ count: t.varuint() }) },
  }),
  server: defineMessages({
    chat: {
      id: 1,
      schema: defineSchema({ from: t.string({ maxBytes: 64 }), text: t.string({ maxBytes: 200 }) }),
    },
    seq: { id: 2, schema: defineSchema({ n: t.varuint() }) },
  }),
};

export interface ArenaState {
  replication: RoomReplication;
  players: Map<string, ReturnType<RoomReplication['world']['spawn']>>;
  /** Called after each message of a burst (tests cut connections from it). */
  onBurst?: (n: number) => void;
}

export const arena = defineRoom({
  capacity: 8,
  tickRateHz: 20,
  messages: arenaMessages,
  state: (room) =>
    ({
      replication: replicate(room, { types: [Player] }),
      players: new Map(),
    }) as ArenaState,
  onJoin(room, member) {
    const state = room.state as ArenaState;
    state.players.set(
      member.sessionId,
      state.replication.world.spawn(Player, { x: 100, y: 100, hp: 100 }),
    );
  },
  onLeave(room, member) {
    const state = room.state as ArenaState;
    const player = state.players.get(member.sessionId);
    if (player) state.replication.world.despawn(player);
    state.players.delete(member.sessionId);
  },
  onMessage: {
    move(room, member, value) {
      const player = (room.state as ArenaState).players.get(member.sessionId);
      player?.set('x', value.x);
      player?.set('y', value.y);
    },
    chat(room, member, value) {
      room.broadcast('chat', { from: member.sessionId, text: value.text });
    },
    burst(room, member, value) {
      const state = room.state as ArenaState;
      for (let n = 0; n < value.count; n++) {
        room.send(member, 'seq', { n });
        state.onBurst?.(n);
      }
    },
  },
});

export type TransportName = 'ws' | 'tcp' | 'udp';

export function clientTransport(name: TransportName): ClientTransport {
  if (name === 'ws') return createWsClient();
  if (name === 'tcp') return createTcpClient();
  return createUdpClient();
}

export async function startServer(
  options: TickwireServerOptions = {},
): Promise<{ server: TickwireServer; url: (name: TransportName) => string; http: string }> {
  const server = createServer({
    logger: silentLogger,
    rooms: { arena },
    transports: { ws: true, tcp: true, udp: true },
    ...options,
  });
  const addresses = await server.listen();
  return {
    server,
    http: addresses.http,
    url: (name) => {
      const address = addresses.transports[name];
      if (!address) throw new Error(`transport ${name} is not listening`);
      return address.url;
    },
  };
}

export function connectClient(
  url: string,
  transport: TransportName,
  options: Partial<ClientOptions> = {},
): Client {
  return createClient({
    endpoints: [{ url, transport: clientTransport(transport) }],
    ...options,
  });
}

/** Resolves when `check` holds, polling every 10 ms; rejects after `ms`. */
export async function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What a client passes to join the arena: its messages and replicated types. */
export const roomOptions = { messages: arenaMessages, replication: { types: [Player] } };

/**
 * The cleanups of a test file's tests: push to the returned list; after each test they run,
 * newest first.
 */
export function cleanupAfterEach(): (() => Promise<void>)[] {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  return cleanup;
}

/** A raw connection to a server on core's memory transport, with what it received. */
export interface MemoryPeer {
  connection: Connection;
  frames: Uint8Array[];
  /** How it closed, once it has. */
  closed: () => CloseInfo | undefined;
}

/**
 * Starts a server (options as given, `logger` silent unless set) on core's memory transport
 * only, closed by `cleanup`; `connect` opens a raw peer to it (no Hello sent).
 */
export async function startMemoryServer(
  options: TickwireServerOptions,
  cleanup: (() => Promise<void>)[],
): Promise<{ server: TickwireServer; connect: () => Promise<MemoryPeer> }> {
  const network = createMemoryNetwork();
  const server = createServer({
    logger: silentLogger,
    ...options,
    extraTransports: [{ name: 'memory', transport: createMemoryServer({ network }) }],
  });
  const addresses = await server.listen();
  cleanup.push(() => server.close());
  const url = addresses.transports.memory!.url;
  const connect = async (): Promise<MemoryPeer> => {
    const connection = await createMemoryClient({ network }).connect(url);
    const frames: Uint8Array[] = [];
    let info: CloseInfo | undefined;
    connection.on('message', (data) => frames.push(data));
    connection.on('close', (closeInfo) => {
      info = closeInfo;
    });
    return { connection, frames, closed: () => info };
  };
  return { server, connect };
}
