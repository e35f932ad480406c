// A bot process of the `server` suite for the floor (floor-server.ts): plain `ws` clients, each
// sending one 16 B binary message (the size of an input) at 20 Hz and counting the messages the
// server broadcasts (checking their size). No rooms, nothing decoded. Same IPC protocol and
// figures as tickwire-bots.ts; a "snapshot" is one broadcast message received.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import WebSocket, { type RawData } from 'ws';
import { beginUsage, describeError, exitWithParent, serveCommands, type Usage } from './child.js';
import { RATE_HZ } from './game.js';
import type { BotCommand, BotReply, BotReport } from './protocol.js';

/** Bots connecting at once. */
const CONCURRENCY = 32;
/** Inputs are spread over this many slots of one 20 Hz period. */
const SLOTS = 10;
const SLOT_MS = 1000 / RATE_HZ / SLOTS;
/** Size of the server's broadcast (SNAPSHOT_BYTES in floor-server.ts). */
const SNAPSHOT_BYTES = 400;
/** One input: 16 B of 7 (floor-server.ts checks the first byte). */
const input = Buffer.alloc(16, 7);

interface Bot {
  socket: WebSocket;
  received: number;
}

const bots: Bot[] = [];
const slots: Bot[][] = Array.from({ length: SLOTS }, () => []);
let disconnects = 0;
let errors = 0;
let firstError: string | null = null;
let stopping = false;
let inputsSent = 0;

const reply = (message: BotReply) => process.send?.(message);

function startBot(url: string): Promise<Bot> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30_000 });
    const bot: Bot = { socket, received: 0 };
    let open = false;
    socket.on('message', (data: RawData) => {
      // binaryType is 'nodebuffer' (the default): every message is one Buffer.
      if ((data as Buffer).length === SNAPSHOT_BYTES) bot.received++;
      else {
        errors++;
        firstError ??= `a message of ${(data as Buffer).length} B, expected ${SNAPSHOT_BYTES}`;
      }
    });
    socket.on('open', () => {
      open = true;
      resolve(bot);
    });
    socket.on('error', (error) => {
      if (!open) {
        reject(error);
        return;
      }
      errors++;
      firstError ??= describeError(error);
    });
    socket.on('close', (code) => {
      if (!open || stopping) return;
      disconnects++;
      firstError ??= `closed with code ${code}`;
    });
  });
}

async function grow(url: string, total: number, firstIndex: number): Promise<BotReply> {
  const started = performance.now();
  let next = firstIndex + bots.length;
  const end = firstIndex + total;
  let failed = 0;
  let growError: string | null = null;
  const worker = async () => {
    while (next < end) {
      const index = next++;
      try {
        const bot = await startBot(url);
        bots.push(bot);
        slots[index % SLOTS]!.push(bot);
      } catch (error) {
        failed++;
        growError ??= describeError(error);
        if (failed > 50) return; // The server refuses: stop trying.
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return {
    type: 'grown',
    bots: bots.length,
    failed,
    firstError: growError,
    ms: performance.now() - started,
  };
}

// One timer for every bot: each slot of a 50 ms period sends the inputs of a tenth of them.
// Slots follow the clock, not the timer's count (setInterval drifts late): a late timer runs
// every slot that came due since, at most one period's worth (a saturated process falls behind).
const driverStart = performance.now();
let slot = 0;
const driver = setInterval(() => {
  const due = Math.floor((performance.now() - driverStart) / SLOT_MS);
  if (due - slot > SLOTS) slot = due - SLOTS;
  for (; slot < due; slot++) {
    for (const bot of slots[slot % SLOTS]!) {
      if (bot.socket.readyState !== WebSocket.OPEN) continue;
      bot.socket.send(input);
      inputsSent++;
    }
  }
}, SLOT_MS);

const received = () => bots.reduce((sum, bot) => sum + bot.received, 0);

interface Window {
  usage: () => Usage;
  snapshots: number;
  delay: ReturnType<typeof monitorEventLoopDelay>;
}
let window: Window | null = null;

function handle(command: BotCommand): Promise<void> | void {
  switch (command.type) {
    case 'grow':
      return grow(command.url, command.total, command.firstIndex).then((grown) => {
        reply(grown);
      });
    case 'begin': {
      const delay = monitorEventLoopDelay({ resolution: 10 });
      delay.enable();
      inputsSent = 0;
      window = { usage: beginUsage(), snapshots: received(), delay };
      reply({ type: 'begun' });
      return;
    }
    case 'end': {
      if (window === null) throw new Error("'end' without 'begin'");
      const usage = window.usage();
      window.delay.disable();
      const report: BotReport = {
        ...usage,
        bots: bots.length,
        snapshots: received() - window.snapshots,
        inputsSent,
        // ws.send never refuses a message: it queues it.
        inputsDropped: 0,
        disconnects,
        errors,
        firstError,
        // No rooms: the floor's bots are not grouped.
        rooms: {},
        loopDelayP99Ms: window.delay.percentile(99) / 1e6,
      };
      window = null;
      reply({ type: 'report', report });
      return;
    }
    case 'stop':
      stopping = true;
      clearInterval(driver);
      for (const bot of bots) bot.socket.terminate();
      setTimeout(() => process.exit(0), 500).unref();
      return;
  }
}

exitWithParent();
serveCommands(handle, reply);
