import { testTransport } from '@tickwire/core/testing';
import { createTcpClient, createTcpServer } from './index.js';

testTransport('tcp', () => {
  const maxMessageBytes = 256 * 1024;
  return {
    server: createTcpServer({ maxMessageBytes }),
    client: createTcpClient({ maxMessageBytes }),
    maxMessageBytes,
  };
});
