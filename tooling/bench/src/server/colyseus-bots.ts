// A bot process of the `server` suite for the peer: colyseus.js 0.16 clients (ws), each joining
// a room of 50 with joinOrCreate, sending an 'input' at 20 Hz and decoding every state patch.
// Same IPC protocol and figures as tickwire-bots.ts.
import { performance } from 'node:perf_hooks';
import { Client, type Room } from 'colyseus.js';
import {
  botWindow,
  describeError,
  exitWithParent,
  roomViews,
  serveCommands,
  startSlots,
} from './child.js';
import { RATE_HZ, ROOM_NAME, stick } from './game.js';
import type { BotCommand, BotReply, BotReport } from './protocol.js';

const CONCURRENCY = 32;
const SLOTS = 10;

interface BenchState {
  avatars: { size: number };
}

interface Bot {
  index: number;
  room: Room<BenchState>;
  inputs: number;
  patches: number;
  left: boolean;
}

const bots: Bot[] = [];
let disconnects = 0;
let errors = 0;
let firstError: string | null = null;
let stopping = false;
let inputsSent = 0;

const reply = (message: BotReply) => process.send?.(message);

async function startBot(url: string, index: number): Promise<Bot> {
  const client = new Client(url);
  const room = await client.joinOrCreate<BenchState>(ROOM_NAME, {});
  const bot: Bot = { index, room, inputs: 0, patches: 0, left: false };
  room.onStateChange(() => {
    bot.patches++;
  });
  room.onLeave((code) => {
    bot.left = true;
    if (stopping) return;
    disconnects++;
    firstError ??= `left with code ${code}`;
  });
  room.onError((code, message) => {
    errors++;
    firstError ??= `error ${code}: ${message}`;
  });
  return bot;
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
        if (failed > 50) return;
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
  if (bot.left) return;
  bot.room.send('input', stick(bot.index, bot.inputs++));
  inputsSent++;
});

const patchesApplied = () => bots.reduce((sum, bot) => sum + bot.patches, 0);

const window = botWindow(patchesApplied);

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
        inputsDropped: 0,
        disconnects,
        errors,
        firstError,
        rooms: roomViews(
          bots,
          (bot) => bot.room.roomId,
          (bot) => bot.room.state?.avatars?.size ?? 0,
        ),
      };
      reply({ type: 'report', report });
      return;
    }
    case 'stop':
      stopping = true;
      driver.stop();
      for (const bot of bots) if (!bot.left) void bot.room.leave(true).catch(() => undefined);
      setTimeout(() => process.exit(0), 500).unref();
      return;
  }
}

exitWithParent();
serveCommands(handle, reply);
