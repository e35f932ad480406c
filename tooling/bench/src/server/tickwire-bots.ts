// A bot process of the `server` suite (Tickwire): many Node clients over ws (createClient +
// createWsClient, no reconnection), each joining a room of 50 with joinOrCreate, sending an
// unreliable 'input' at 20 Hz and applying every snapshot to its replica. Started by
// suites/server.ts, pinned to a core other than the server's when the machine allows.
import { performance } from 'node:perf_hooks';
import { type Client, createClient } from '@tickwire/client';
import { createWsClient } from '@tickwire/transport/ws';
import {
  botWindow,
  describeError,
  exitWithParent,
  roomViews,
  serveCommands,
  startSlots,
} from './child.js';
import { Avatar, benchMessages, RATE_HZ, ROOM_NAME, stick } from './game.js';
import type { BotCommand, BotReply, BotReport } from './protocol.js';

/** Bots connecting at once. */
const CONCURRENCY = 32;
/** Inputs are spread over this many slots of one 20 Hz period. */
const SLOTS = 10;

const roomOptions = { messages: benchMessages, replication: { types: [Avatar] } };
const joinBench = (client: Client) => client.joinOrCreate(ROOM_NAME, {}, roomOptions);
type BenchRoom = Awaited<ReturnType<typeof joinBench>>;

interface Bot {
  index: number;
  client: Client;
  room: BenchRoom;
  inputs: number;
}

const bots: Bot[] = [];
let disconnects = 0;
let errors = 0;
let firstError: string | null = null;
let stopping = false;
let inputsSent = 0;
let inputsDropped = 0;

const reply = (message: BotReply) => process.send?.(message);

function noteError(error: unknown): void {
  errors++;
  firstError ??= describeError(error);
}

async function startBot(url: string, index: number): Promise<Bot> {
  const client = createClient({
    endpoints: [{ url, transport: createWsClient() }],
    reconnect: false,
    connectTimeoutMs: 30_000,
    requestTimeoutMs: 30_000,
  });
  try {
    await client.connect();
    const room = await joinBench(client);
    client.on('close', (_info, error) => {
      if (stopping) return;
      disconnects++;
      if (error !== undefined) firstError ??= `disconnected: ${error.message}`;
    });
    client.on('error', noteError);
    room.on('error', noteError);
    return { index, client, room, inputs: 0 };
  } catch (error) {
    client.close();
    throw error;
  }
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
        const bot = await startBot(url, index);
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
  if (bot.room.state !== 'joined') return;
  const ok = bot.room.send('input', stick(bot.index, bot.inputs++), { reliable: false });
  if (ok) inputsSent++;
  else inputsDropped++;
});

const snapshotsApplied = () => {
  let sum = 0;
  for (const bot of bots) sum += bot.room.replication?.stats.snapshots ?? 0;
  return sum;
};

const window = botWindow(snapshotsApplied);

function handle(command: BotCommand): Promise<void> | void {
  switch (command.type) {
    case 'grow':
      return grow(command.url, command.total, command.firstIndex).then((grown) => {
        reply(grown);
      });
    case 'begin': {
      window.begin();
      inputsSent = 0;
      inputsDropped = 0;
      reply({ type: 'begun' });
      return;
    }
    case 'end': {
      const measured = window.end();
      const report: BotReport = {
        ...measured,
        bots: bots.length,
        inputsSent,
        inputsDropped,
        disconnects,
        errors,
        firstError,
        rooms: roomViews(
          bots,
          (bot) => bot.room.id,
          (bot) => bot.room.replica?.size ?? 0,
        ),
      };
      reply({ type: 'report', report });
      return;
    }
    case 'stop': {
      stopping = true;
      driver.stop();
      for (const bot of bots) bot.client.close();
      setTimeout(() => process.exit(0), 500).unref();
      return;
    }
  }
}

exitWithParent();
serveCommands(handle, reply);
