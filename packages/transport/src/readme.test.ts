import { randomBytes } from 'node:crypto';
import { nextEvent } from '@tickwire/core/testing';
import { expect, it } from 'vitest';
import { createTcpClient, createTcpServer } from './tcp/index.js';
import { createUdpClient, createUdpServer, generateConnectToken } from './udp/index.js';
import { createWsClient, createWsServer } from './ws/index.js';

// The README's examples, on port 0 and with assertions instead of logging.
it('runs the WebSocket example', async () => {
  const server = createWsServer({ port: 0, allowedOrigins: ['https://game.example'] });
  server.on('connection', (conn) => {
    conn.on('message', (data, channel) => conn.send(data, channel));
  });
  const { port } = await server.listen();
  const conn = await createWsClient({ origin: 'https://game.example' }).connect(
    `ws://127.0.0.1:${port}`,
  );
  const echoes: [number[], string][] = [];
  const both = new Promise<void>((resolve) =>
    conn.on('message', (data, channel) => {
      echoes.push([Array.from(data), channel]);
      if (echoes.length === 2) resolve();
    }),
  );
  conn.send(new Uint8Array([1, 2, 3]));
  conn.send(new Uint8Array([4]), 'unreliable');
  await both;
  expect(echoes).toEqual([
    [[1, 2, 3], 'reliable'],
    [[4], 'unreliable'],
  ]);
  await server.close();
});

it('runs the TCP example', async () => {
  const server = createTcpServer({ port: 0 });
  const { url } = await server.listen();
  expect(url).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
  const conn = await createTcpClient().connect(url);
  expect(conn.state).toBe('open');
  await server.close();
});

it('runs the UDP example with a connect token', async () => {
  const key = randomBytes(32);
  const server = createUdpServer({ port: 0, connectTokenKey: key });
  const accepted = nextEvent(server, 'connection');
  const { url } = await server.listen();
  const token = generateConnectToken({
    clientId: 'player-42',
    expiresInMs: 30_000,
    secretKey: key,
  });
  const conn = await createUdpClient({ connectToken: token }).connect(url);
  const [serverSide] = await accepted;
  expect((serverSide as { clientId?: string }).clientId).toBe('player-42');
  const got = nextEvent(serverSide, 'message');
  conn.sendOn(new Uint8Array([1]), 'reliable-unordered');
  const [data, channel] = await got;
  expect(Array.from(data)).toEqual([1]);
  expect(channel).toBe('reliable');
  await server.close();
});
