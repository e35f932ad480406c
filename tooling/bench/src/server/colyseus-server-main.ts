// The peer's server process of the `server` suite: Colyseus 0.16 (@colyseus/core +
// @colyseus/ws-transport, @colyseus/schema 3) on 127.0.0.1, the same room as Tickwire's:
// rooms of 50, a 20 Hz simulation and patch rate, one avatar (x, y, angle) per member moved by
// its 'input' messages. Same IPC protocol and figures as tickwire-server.ts; a "tick" here is
// one broadcastPatch() (the state encoded once, the patch sent to every member).
import { createServer as createHttpServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Client, Room, Server } from '@colyseus/core';
import { WebSocketTransport } from '@colyseus/ws-transport';
import { defineTypes, MapSchema, Schema } from 'colyseus-schema3';
import {
  beginUsage,
  exitWithParent,
  quantile,
  retainedHeapMb,
  serveCommands,
  type Usage,
} from './child.js';
import { ARENA, move, RATE_HZ, ROOM_NAME, ROOM_SIZE } from './game.js';
import type { ServerCommand, ServerReply, ServerReport } from './protocol.js';

const STEP_MS = 1000 / RATE_HZ;
const MAX_SAMPLES = 1 << 18;
const tickSamples = new Float64Array(MAX_SAMPLES);
let sampleCount = 0;
let inputs = 0;
let snapshotsSent = 0;
let sessionsEnded = 0;

// Fields are declared, never initialised as class fields: those would shadow the accessors
// that defineTypes puts on the prototype (and changes would go untracked).
class Avatar extends Schema {
  declare x: number;
  declare y: number;
  declare angle: number;
}
// Schema 3 has no quantized numbers: float32, as in the serialization suite's f32 case.
defineTypes(Avatar, { x: 'float32', y: 'float32', angle: 'float32' });

class BenchState extends Schema {
  declare avatars: MapSchema<Avatar>;
}
defineTypes(BenchState, { avatars: { map: Avatar } });

const rooms = new Set<BenchRoom>();

class BenchRoom extends Room<BenchState> {
  override maxClients = ROOM_SIZE;

  override onCreate(): void {
    const state = new BenchState();
    state.avatars = new MapSchema<Avatar>();
    this.setState(state);
    this.patchRate = STEP_MS;
    // Inputs are applied as they arrive, as in the Tickwire room; the simulation step is empty.
    this.setSimulationInterval(() => {}, STEP_MS);
    this.onMessage('input', (client: Client, value: { dx: number; dy: number }) => {
      inputs++;
      const avatar = this.state.avatars.get(client.sessionId);
      if (avatar === undefined) return;
      avatar.x = move(avatar.x, value.dx);
      avatar.y = move(avatar.y, value.dy);
      avatar.angle = Math.atan2(value.dy, value.dx);
    });
    rooms.add(this);
  }

  override onJoin(client: Client): void {
    const n = this.state.avatars.size;
    const avatar = new Avatar();
    avatar.x = ((n % 10) + 0.5) * (ARENA / 10);
    avatar.y = (Math.floor(n / 10) + 0.5) * (ARENA / 10);
    avatar.angle = 0;
    this.state.avatars.set(client.sessionId, avatar);
  }

  override onLeave(client: Client): void {
    sessionsEnded++;
    this.state.avatars.delete(client.sessionId);
  }

  override onDispose(): void {
    rooms.delete(this);
  }

  override broadcastPatch(): boolean {
    const start = performance.now();
    const changed = super.broadcastPatch();
    if (changed) snapshotsSent += this.clients.length;
    if (sampleCount < MAX_SAMPLES) tickSamples[sampleCount++] = performance.now() - start;
    return changed;
  }
}

const http = createHttpServer();
const gameServer = new Server({
  transport: new WebSocketTransport({ server: http }),
  greet: false,
});
gameServer.define(ROOM_NAME, BenchRoom);

const reply = (message: ServerReply) => process.send?.(message);

let window: {
  usage: () => Usage;
  snapshots: number;
} | null = null;

async function handle(command: ServerCommand): Promise<void> {
  switch (command.type) {
    case 'listen': {
      await gameServer.listen(0, '127.0.0.1');
      const address = http.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      reply({ type: 'listening', url: `ws://127.0.0.1:${address.port}` });
      return;
    }
    case 'begin':
      sampleCount = 0;
      inputs = 0;
      window = {
        usage: beginUsage(),
        snapshots: snapshotsSent,
      };
      reply({ type: 'begun' });
      return;
    case 'end': {
      if (window === null) throw new Error("'end' without 'begin'");
      const usage = window.usage();
      const count = sampleCount;
      const roomSizes: Record<string, number> = {};
      let connections = 0;
      for (const room of rooms) {
        roomSizes[room.roomId] = room.clients.length;
        connections += room.clients.length;
      }
      const report: ServerReport = {
        ...usage,
        ticks: count,
        // The patch timer is a plain setInterval without a schedule to be late against.
        lagP99Ms: Number.NaN,
        tickP50Ms: quantile(tickSamples, count, 0.5),
        tickP99Ms: quantile(tickSamples, count, 0.99),
        tickMaxMs: count === 0 ? Number.NaN : tickSamples[count - 1]!,
        droppedTicks: 0,
        snapshotsSent: snapshotsSent - window.snapshots,
        snapshotsDropped: 0,
        snapshotsShared: null,
        snapshotsFollowed: null,
        inputs,
        rooms: rooms.size,
        roomSizes,
        connections,
        sessionsEnded,
        rejections: {},
        heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
        heapRetainedMb: retainedHeapMb(),
      };
      window = null;
      reply({ type: 'report', report });
      return;
    }
    case 'stop':
      await Promise.race([
        gameServer.gracefullyShutdown(false),
        new Promise((resolve) => setTimeout(resolve, 3_000)),
      ]);
      process.exit(0);
  }
}

exitWithParent();
serveCommands(handle, reply);
