import { randomBytes } from 'node:crypto';
import type { ClientTransport, ServerTransport } from '@tickwire/core';
import { testTransport } from '@tickwire/core/testing';
import { createUdpClient, createUdpServer, generateConnectToken } from './index.js';

testTransport('udp', () => {
  const maxMessageBytes = 262_144;
  return {
    server: createUdpServer({ host: '127.0.0.1', port: 0, maxMessageBytes }),
    client: createUdpClient({ maxMessageBytes }),
    maxMessageBytes,
  };
});

testTransport('udp with connect tokens + encryption', () => {
  const maxMessageBytes = 262_144;
  const secretKey = randomBytes(32);
  let clientNumber = 0;
  return {
    server: createUdpServer({
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes,
      connectTokenKey: secretKey,
    }),
    client: createUdpClient({
      maxMessageBytes,
      connectToken: () =>
        generateConnectToken({
          clientId: `player-${++clientNumber}`,
          expiresInMs: 30_000,
          secretKey,
          protocolId: 0x54575544,
        }),
    }),
    maxMessageBytes,
  };
});

// A UdpServer / UdpClient is a core ServerTransport / ClientTransport (checked by the compiler).
const asServer: ServerTransport = createUdpServer();
const asClient: ClientTransport = createUdpClient();
void asServer;
void asClient;
