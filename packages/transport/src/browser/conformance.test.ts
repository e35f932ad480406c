import { testTransport } from '@tickwire/core/testing';
import { WebSocket as WsWebSocket } from 'ws';
import { createWsServer } from '../ws/index.js';
import { createBrowserWsClient } from './index.js';

testTransport('ws (browser client)', () => {
  const maxMessageBytes = 256 * 1024;
  return {
    server: createWsServer({ maxMessageBytes }),
    client: createBrowserWsClient({ maxMessageBytes, WebSocket: WsWebSocket }),
    maxMessageBytes,
  };
});
