import { testTransport } from '@tickwire/core/testing';
import { createWsClient, createWsServer } from './index.js';

testTransport('ws', () => {
  const maxMessageBytes = 256 * 1024;
  return {
    server: createWsServer({ maxMessageBytes }),
    client: createWsClient({ maxMessageBytes }),
    maxMessageBytes,
  };
});
