// A bot process of the `server` suite for the floor (floor-server.ts): plain `ws` clients, each
// sending one 16 B binary message (the size of an input) at 20 Hz and counting the messages the
// server broadcasts (checking their size). No rooms, nothing decoded. Same IPC protocol and
// figures as tickwire-bots.ts; a "snapshot" is one broadcast message received.
import WebSocket, { type RawData } from 'ws';
import { describeError, runBots } from './child.js';
import { RATE_HZ } from './game.js';

/** Size of the server's broadcast (SNAPSHOT_BYTES in floor-server.ts). */
const SNAPSHOT_BYTES = 400;
/** One input: 16 B of 7 (floor-server.ts checks the first byte). */
const input = Buffer.alloc(16, 7);

interface Bot {
  socket: WebSocket;
  received: number;
}

runBots<Bot>(
  {
    start: (url, _index, status) =>
      new Promise((resolve, reject) => {
        const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30_000 });
        const bot: Bot = { socket, received: 0 };
        let open = false;
        socket.on('message', (data: RawData) => {
          // binaryType is 'nodebuffer' (the default): every message is one Buffer.
          if ((data as Buffer).length === SNAPSHOT_BYTES) bot.received++;
          else
            status.error(`a message of ${(data as Buffer).length} B, expected ${SNAPSHOT_BYTES}`);
        });
        socket.on('open', () => {
          open = true;
          resolve(bot);
        });
        socket.on('error', (error) => {
          if (open) status.error(describeError(error));
          else reject(error);
        });
        socket.on('close', (code) => {
          if (open && !status.stopping) status.disconnect(`closed with code ${code}`);
        });
      }),
    send: (bot) => {
      if (bot.socket.readyState !== WebSocket.OPEN) return undefined;
      // ws.send never refuses a message: it queues it.
      bot.socket.send(input);
      return true;
    },
    applied: (bots) => bots.reduce((sum, bot) => sum + bot.received, 0),
    // No rooms: the floor's bots are not grouped.
    rooms: () => ({}),
    stop: (bot) => bot.socket.terminate(),
  },
  RATE_HZ,
);
