// The server process of the `server` suite (Tickwire): one createServer on 127.0.0.1 (ws),
// the bench room (rooms of 50 at 20 Hz, replicated avatars moved by inputs), and per
// measurement window the process CPU, event-loop utilization and the duration of every room
// tick. Started by suites/server.ts, pinned to one core when the machine allows.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { silentLogger } from '@tickwire/core';
import type { Entity, EntityType } from '@tickwire/replication';
import { defineRoom, type Room } from '@tickwire/rooms';
import { createServer, type RoomReplication, replicate } from '@tickwire/server';
import {
  beginUsage,
  exitWithParent,
  quantile,
  retainedHeapMb,
  serveCommands,
  type Usage,
} from './child.js';
import { ARENA, Avatar, benchMessages, move, RATE_HZ, ROOM_NAME, ROOM_SIZE } from './game.js';
import type { ServerCommand, ServerReply, ServerReport } from './protocol.js';

const STEP_MS = 1000 / RATE_HZ;
/** Tick samples kept per window; more are not timed (≈ 200 rooms × 20 Hz × 60 s). */
const MAX_SAMPLES = 1 << 18;
const tickSamples = new Float64Array(MAX_SAMPLES);
const lagSamples = new Float64Array(MAX_SAMPLES);
let sampleCount = 0;
let inputs = 0;

type AvatarShape = typeof Avatar extends EntityType<infer S> ? S : never;

interface BenchState {
  replication: RoomReplication;
  avatars: Map<string, Entity<AvatarShape>>;
  /** performance.now() when the tick in progress started. */
  tickStart: number;
  /** Least (start − scheduled step time) seen: the room's schedule origin. */
  origin: number;
}

const stateOf = (room: Room<unknown>) => room.state as BenchState;

// What is timed: one room step, from the start of onTick (the first thing a step runs) to the
// end of the last 'tick' listener, which is this one, registered after replicate()'s: the
// replication update (diff of the world) and one snapshot encoded and sent per member.
const benchRoom = defineRoom({
  capacity: ROOM_SIZE,
  tickRateHz: RATE_HZ,
  messages: benchMessages,
  state: (room): BenchState => ({
    replication: replicate(room, { types: [Avatar] }),
    avatars: new Map(),
    tickStart: 0,
    origin: Number.POSITIVE_INFINITY,
  }),
  onCreate(room) {
    room.on('tick', () => {
      const state = stateOf(room);
      if (sampleCount < MAX_SAMPLES)
        tickSamples[sampleCount++] = performance.now() - state.tickStart;
    });
  },
  onTick(room, _dtMs, tick) {
    const state = stateOf(room);
    const now = performance.now();
    state.tickStart = now;
    const offset = now - (tick + room.stats.droppedTicks) * STEP_MS;
    if (offset < state.origin) state.origin = offset;
    // The lag of the sample that the tick listener above is about to record.
    if (sampleCount < MAX_SAMPLES) lagSamples[sampleCount] = offset - state.origin;
  },
  onJoin(room, member) {
    const state = stateOf(room);
    const n = state.avatars.size;
    const avatar = state.replication.world.spawn(Avatar, {
      x: ((n % 10) + 0.5) * (ARENA / 10),
      y: (Math.floor(n / 10) + 0.5) * (ARENA / 10),
      angle: 0,
    });
    state.avatars.set(member.sessionId, avatar);
  },
  onLeave(room, member) {
    const state = stateOf(room);
    const avatar = state.avatars.get(member.sessionId);
    if (avatar !== undefined) state.replication.world.despawn(avatar);
    state.avatars.delete(member.sessionId);
  },
  onMessage: {
    input(room, member, value) {
      inputs++;
      const avatar = stateOf(room).avatars.get(member.sessionId);
      if (avatar === undefined) return;
      avatar.set('x', move(avatar.get('x'), value.dx));
      avatar.set('y', move(avatar.get('y'), value.dy));
      avatar.set('angle', Math.atan2(value.dy, value.dx));
    },
  },
});

const server = createServer({
  logger: silentLogger,
  host: '127.0.0.1',
  port: 0,
  transports: { ws: true },
  rooms: { [ROOM_NAME]: benchRoom },
  session: { secret: 'tickwire-bench-server-suite-secret-0123456789' },
  limits: {
    maxConnections: 50_000,
    maxConnectionsPerAddress: 50_000,
    handshakesPerSecondPerAddress: 10_000,
  },
});
let sessionsEnded = 0;
server.on('sessionEnd', () => {
  sessionsEnded++;
});

const reply = (message: ServerReply) => process.send?.(message);
// Diagnostics (off by default): a CPU profile of each measurement window (sampled every
// TICKWIRE_BENCH_PROFILE_INTERVAL_US, default 1000), a heap snapshot after it.
const profileDir = process.env.TICKWIRE_BENCH_PROFILE_DIR;
const profileIntervalUs = Number(process.env.TICKWIRE_BENCH_PROFILE_INTERVAL_US ?? 1000);
const heapDir = process.env.TICKWIRE_BENCH_HEAP_DIR;
let profiler: Session | null = null;

interface Window {
  usage: () => Usage;
  dropped: number;
  snapshots: number;
  snapshotsDropped: number;
  shared: number;
  followed: number;
}
let window: Window | null = null;

function roomTotals() {
  let dropped = 0;
  let snapshots = 0;
  let snapshotsDropped = 0;
  let shared = 0;
  let followed = 0;
  for (const room of server.rooms.rooms()) {
    dropped += room.stats.droppedTicks;
    const { host, server: encoder } = stateOf(room).replication;
    snapshots += host.stats.snapshots;
    snapshotsDropped += host.stats.dropped;
    // Per member (a bot never leaves during a run; one that joins later starts at 0).
    for (const sessionId of room.clients.keys()) {
      const stats = encoder.statsOf(sessionId);
      shared += stats.shared;
      followed += stats.followed;
    }
  }
  return { dropped, snapshots, snapshotsDropped, shared, followed };
}

async function handle(command: ServerCommand): Promise<void> {
  switch (command.type) {
    case 'listen': {
      const addresses = await server.listen();
      reply({ type: 'listening', url: addresses.transports.ws!.url });
      return;
    }
    case 'begin': {
      if (profileDir !== undefined) {
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.setSamplingInterval', { interval: profileIntervalUs });
        await profiler.post('Profiler.start');
      }
      const totals = roomTotals();
      sampleCount = 0;
      inputs = 0;
      window = {
        usage: beginUsage(),
        dropped: totals.dropped,
        snapshots: totals.snapshots,
        snapshotsDropped: totals.snapshotsDropped,
        shared: totals.shared,
        followed: totals.followed,
      };
      reply({ type: 'begun' });
      return;
    }
    case 'end': {
      if (window === null) throw new Error("'end' without 'begin'");
      const usage = window.usage();
      const count = sampleCount;
      const inputCount = inputs;
      const totals = roomTotals();
      const roomSizes: Record<string, number> = {};
      for (const room of server.rooms.rooms()) roomSizes[room.id] = room.clients.size;
      const stats = server.stats();
      const report: ServerReport = {
        ...usage,
        ticks: count,
        // Lags first: quantile sorts in place and the samples are paired by index.
        lagP99Ms: quantile(lagSamples, count, 0.99),
        tickP50Ms: quantile(tickSamples, count, 0.5),
        tickP99Ms: quantile(tickSamples, count, 0.99),
        tickMaxMs: count === 0 ? Number.NaN : tickSamples[count - 1]!,
        droppedTicks: totals.dropped - window.dropped,
        snapshotsSent: totals.snapshots - window.snapshots,
        snapshotsDropped: totals.snapshotsDropped - window.snapshotsDropped,
        snapshotsShared: totals.shared - window.shared,
        snapshotsFollowed: totals.followed - window.followed,
        inputs: inputCount,
        rooms: stats.rooms,
        roomSizes,
        connections: stats.connections,
        sessionsEnded,
        rejections: stats.rejections,
        heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
        heapRetainedMb: retainedHeapMb(),
      };
      window = null;
      if (profiler !== null) {
        const { profile } = await profiler.post('Profiler.stop');
        profiler.disconnect();
        profiler = null;
        let members = 0;
        for (const size of Object.values(roomSizes)) members += size;
        const file = join(profileDir!, `tickwire-server-${members}.cpuprofile`);
        writeFileSync(file, JSON.stringify(profile));
        process.stderr.write(`  server: wrote ${file}\n`);
      }
      if (heapDir !== undefined) {
        const file = writeHeapSnapshot(
          join(heapDir, `tickwire-server-${report.connections}.heapsnapshot`),
        );
        process.stderr.write(`  server: wrote ${file}\n`);
      }
      if (process.env.TICKWIRE_BENCH_METRICS !== undefined) {
        // Frames by opcode since start (diagnostics): what the read path handles per bot.
        const text = await server.metrics.text();
        for (const line of text.split('\n'))
          if (/^tickwire_(messages_(received|sent)_total|rejections_total)/.test(line))
            process.stderr.write(`  server: ${line}\n`);
      }
      reply({ type: 'report', report });
      return;
    }
    case 'stop':
      await Promise.race([server.close(), new Promise((resolve) => setTimeout(resolve, 3_000))]);
      process.exit(0);
  }
}

exitWithParent();
serveCommands(handle, reply);
