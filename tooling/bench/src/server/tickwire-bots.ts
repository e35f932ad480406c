// A bot process of the `server` suite (Tickwire): many Node clients over ws (createClient +
// createWsClient, no reconnection), each joining a room of 50 with joinOrCreate, sending an
// unreliable 'input' at 20 Hz and applying every snapshot to its replica. Started by
// suites/server.ts, pinned to a core other than the server's when the machine allows.
import { type Client, createClient } from '@tickwire/client';
import { createWsClient } from '@tickwire/transport/ws';
import { describeError, roomViews, runBots } from './child.js';
import { Avatar, benchMessages, RATE_HZ, ROOM_NAME, stick } from './game.js';

const roomOptions = { messages: benchMessages, replication: { types: [Avatar] } };
const joinBench = (client: Client) => client.joinOrCreate(ROOM_NAME, {}, roomOptions);
type BenchRoom = Awaited<ReturnType<typeof joinBench>>;

interface Bot {
  index: number;
  client: Client;
  room: BenchRoom;
  inputs: number;
}

runBots<Bot>(
  {
    async start(url, index, status) {
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
          if (status.stopping) return;
          status.disconnect(error === undefined ? undefined : `disconnected: ${error.message}`);
        });
        const noteError = (error: unknown) => status.error(describeError(error));
        client.on('error', noteError);
        room.on('error', noteError);
        return { index, client, room, inputs: 0 };
      } catch (error) {
        client.close();
        throw error;
      }
    },
    send: (bot) => {
      if (bot.room.state !== 'joined') return undefined;
      return bot.room.send('input', stick(bot.index, bot.inputs++), { reliable: false });
    },
    applied: (bots) => {
      let sum = 0;
      for (const bot of bots) sum += bot.room.replication?.stats.snapshots ?? 0;
      return sum;
    },
    rooms: (bots) =>
      roomViews(
        bots,
        (bot) => bot.room.id,
        (bot) => bot.room.replica?.size ?? 0,
      ),
    stop: (bot) => bot.client.close(),
  },
  RATE_HZ,
);
