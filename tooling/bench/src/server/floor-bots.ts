// A bot process of the `server` suite for the floor (floor-server.ts): plain `ws` clients, each
// sending one 16 B binary message (the size of an input) at 20 Hz and counting the messages the
// server broadcasts (checking their size). No rooms, nothing decoded. Same IPC protocol and
// figures as tickwire-bots.ts; a "snapshot" is one broadcast message received.
import { performance } from 'node:perf_hooks';
import WebSocket, { type RawData } from 'ws';
import { botWindow, describeError, exitWithParent, serveCommands, startSlots } from './child.js';
import { RATE_HZ } from './game.js';
import type { BotCommand, BotReply, BotReport } from './protocol.js';

/** Bots connecting at once. */
const CONCURRENCY = 32;
/** Inputs are spread over this many slots of one 20 Hz period. */
const SLOTS = 10;
/** Size of the server's broadcast (SNAPSHOT_BYTES in floor-server.ts). */
const SNAPSHOT_BYTES = 400;
/** One input: 16 B of 7 (floor-server.ts checks the first byte). */
const input = Buffer.alloc(16, 7);

interface Bot {
  socket: WebSocket;
  received: number;
}

const bots: Bot[] = [];
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
        driver.add(index, bot);
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

// Each slot of a 20 Hz period sends the inputs of a tenth of the bots.
const driver = startSlots<Bot>(1000 / RATE_HZ, SLOTS, (bot) => {
  if (bot.socket.readyState !== WebSocket.OPEN) return;
  bot.socket.send(input);
  inputsSent++;
});

const received = () => bots.reduce((sum, bot) => sum + bot.received, 0);

const window = botWindow(received);

function handle(command: BotCommand): Promise<void> | void {
  switch (command.type) {
    case 'grow':
      return grow(command.url, command.total, command.firstIndex).then((grown) => {
        reply(grown);
      });
    case 'begin': {
      window.begin();
      inputsSent = 0;
      reply({ type: 'begun' });
      return;
    }
    case 'end': {
      const measured = window.end();
      const report: BotReport = {
        ...measured,
        bots: bots.length,
        inputsSent,
        // ws.send never refuses a message: it queues it.
        inputsDropped: 0,
        disconnects,
        errors,
        firstError,
        // No rooms: the floor's bots are not grouped.
        rooms: {},
      };
      reply({ type: 'report', report });
      return;
    }
    case 'stop':
      stopping = true;
      driver.stop();
      for (const bot of bots) bot.socket.terminate();
      setTimeout(() => process.exit(0), 500).unref();
      return;
  }
}

exitWithParent();
serveCommands(handle, reply);
