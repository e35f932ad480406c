// The floor's server process of the `server` suite: plain `ws` on 127.0.0.1 doing no game work
// at all, only moving the messages the game servers move. It reads every incoming message
// (16 B inputs from floor-bots.ts) and touches its first byte, and every 50 ms sends every
// connected bot one binary message of SNAPSHOT_BYTES, the same Buffer for all (as if one
// encoded snapshot were shared by every member). No rooms, no sessions, no decoding: what the
// socket traffic alone costs a Node ws server per bot, a floor under any ws server here.
// Same IPC protocol and figures as tickwire-server.ts, with two differences: it has no rooms
// (rooms 0, roomSizes {}), and its "tick" is one broadcast pass (the Buffer sent to every bot).
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import WebSocket, { type RawData, WebSocketServer } from 'ws';
import {
  beginUsage,
  exitWithParent,
  quantile,
  retainedHeapMb,
  serveCommands,
  type Usage,
} from './child.js';
import { RATE_HZ } from './game.js';
import type { ServerCommand, ServerReply, ServerReport } from './protocol.js';

/** Size of the message broadcast every period (floor-bots.ts checks it). */
const SNAPSHOT_BYTES = 400;
/** What floor-bots.ts fills its 16 B messages with. */
const INPUT_FIRST_BYTE = 7;
const STEP_MS = 1000 / RATE_HZ;
const MAX_SAMPLES = 1 << 18;
const tickSamples = new Float64Array(MAX_SAMPLES);
const lagSamples = new Float64Array(MAX_SAMPLES);
let sampleCount = 0;

const snapshot = Buffer.alloc(SNAPSHOT_BYTES);
for (let i = 0; i < SNAPSHOT_BYTES; i++) snapshot[i] = (i * 31) & 0xff;

let inputs = 0;
let snapshotsSent = 0;
/** Broadcasts skipped because the loop came back more than a period late. */
let droppedTicks = 0;
let sessionsEnded = 0;
let handshakeErrors = 0;
/** Incoming messages whose first byte (the only one read) is not INPUT_FIRST_BYTE. */
let unexpectedInputs = 0;

let wss: WebSocketServer | null = null;
let timer: ReturnType<typeof setTimeout> | null = null;

function onMessage(data: RawData): void {
  // binaryType is 'nodebuffer' (the default): every message is one Buffer.
  if ((data as Buffer)[0] !== INPUT_FIRST_BYTE) unexpectedInputs++;
  inputs++;
}

/**
 * Broadcast n is due at origin + n × 50 ms; the timer is armed for the next due time (no
 * setInterval drift). A pass that comes back more than a period late skips the broadcasts
 * missed (counted as dropped ticks) instead of sending them in a burst.
 */
function startBroadcasts(server: WebSocketServer): void {
  const origin = performance.now();
  let next = 1;
  const fire = () => {
    const start = performance.now();
    const latest = Math.floor((start - origin) / STEP_MS);
    if (latest > next) {
      droppedTicks += latest - next;
      next = latest;
    }
    for (const client of server.clients) {
      if (client.readyState !== WebSocket.OPEN) continue;
      client.send(snapshot);
      snapshotsSent++;
    }
    if (sampleCount < MAX_SAMPLES) {
      lagSamples[sampleCount] = Math.max(0, start - (origin + next * STEP_MS));
      tickSamples[sampleCount++] = performance.now() - start;
    }
    next++;
    timer = setTimeout(fire, Math.max(0, origin + next * STEP_MS - performance.now()));
  };
  timer = setTimeout(fire, STEP_MS);
}

const reply = (message: ServerReply) => process.send?.(message);

interface Window {
  usage: () => Usage;
  dropped: number;
  snapshots: number;
}
let window: Window | null = null;

async function handle(command: ServerCommand): Promise<void> {
  switch (command.type) {
    case 'listen': {
      const server = new WebSocketServer({
        host: '127.0.0.1',
        port: 0,
        perMessageDeflate: false,
        clientTracking: true,
      });
      wss = server;
      server.on('connection', (socket) => {
        socket.on('message', onMessage);
        socket.on('error', () => {});
        socket.on('close', () => {
          sessionsEnded++;
        });
      });
      server.on('wsClientError', (_error, socket) => {
        handshakeErrors++;
        socket.destroy();
      });
      await new Promise<void>((resolve, reject) => {
        server.once('listening', resolve);
        server.once('error', reject);
      });
      const { port } = server.address() as AddressInfo;
      startBroadcasts(server);
      reply({ type: 'listening', url: `ws://127.0.0.1:${port}` });
      return;
    }
    case 'begin':
      sampleCount = 0;
      inputs = 0;
      window = { usage: beginUsage(), dropped: droppedTicks, snapshots: snapshotsSent };
      reply({ type: 'begun' });
      return;
    case 'end': {
      if (window === null) throw new Error("'end' without 'begin'");
      const usage = window.usage();
      const count = sampleCount;
      const inputCount = inputs;
      const report: ServerReport = {
        ...usage,
        ticks: count,
        lagP99Ms: quantile(lagSamples, count, 0.99),
        tickP50Ms: quantile(tickSamples, count, 0.5),
        tickP99Ms: quantile(tickSamples, count, 0.99),
        tickMaxMs: count === 0 ? Number.NaN : tickSamples[count - 1]!,
        droppedTicks: droppedTicks - window.dropped,
        snapshotsSent: snapshotsSent - window.snapshots,
        // ws.send never refuses a message: it queues it.
        snapshotsDropped: 0,
        snapshotsShared: null,
        snapshotsFollowed: null,
        inputs: inputCount,
        // No rooms: the floor has nothing to group bots in.
        rooms: 0,
        roomSizes: {},
        connections: wss?.clients.size ?? 0,
        sessionsEnded,
        rejections: {
          ...(handshakeErrors === 0 ? {} : { handshake: handshakeErrors }),
          ...(unexpectedInputs === 0 ? {} : { unexpected_input: unexpectedInputs }),
        },
        heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
        heapRetainedMb: retainedHeapMb(),
      };
      window = null;
      reply({ type: 'report', report });
      return;
    }
    case 'stop':
      if (timer !== null) clearTimeout(timer);
      if (wss !== null) {
        for (const client of wss.clients) client.terminate();
        wss.close();
      }
      process.exit(0);
  }
}

exitWithParent();
serveCommands(handle, reply);
