// A bot process of the `server` suite for the peer: colyseus.js 0.16 clients (ws), each joining
// a room of 50 with joinOrCreate, sending an 'input' at 20 Hz and decoding every state patch.
// Same IPC protocol and figures as tickwire-bots.ts.
import { Client, type Room } from 'colyseus.js';
import { roomViews, runBots } from './child.js';
import { RATE_HZ, ROOM_NAME, stick } from './game.js';

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

runBots<Bot>(
  {
    async start(url, index, status) {
      const client = new Client(url);
      const room = await client.joinOrCreate<BenchState>(ROOM_NAME, {});
      const bot: Bot = { index, room, inputs: 0, patches: 0, left: false };
      room.onStateChange(() => {
        bot.patches++;
      });
      room.onLeave((code) => {
        bot.left = true;
        if (!status.stopping) status.disconnect(`left with code ${code}`);
      });
      room.onError((code, message) => status.error(`error ${code}: ${message}`));
      return bot;
    },
    send: (bot) => {
      if (bot.left) return undefined;
      bot.room.send('input', stick(bot.index, bot.inputs++));
      return true;
    },
    applied: (bots) => bots.reduce((sum, bot) => sum + bot.patches, 0),
    rooms: (bots) =>
      roomViews(
        bots,
        (bot) => bot.room.roomId,
        (bot) => bot.room.state?.avatars?.size ?? 0,
      ),
    stop: (bot) => {
      if (!bot.left) void bot.room.leave(true).catch(() => undefined);
    },
  },
  RATE_HZ,
);
