// The demo's process entry: `PORT` (default 8080) for HTTP + WebSocket, TCP on PORT+1 and UDP on
// PORT+2, `HOST` (default 127.0.0.1), `LOG_LEVEL` (default warn). Stops gracefully on SIGINT and
// SIGTERM: clients are told to reconnect, rooms are disposed, then the process exits.
import { createPinoLogger } from '@tickwire/server';
import { startDemoServer } from './app.js';

function portFromEnv(value: string | undefined): number {
  if (value === undefined || value === '') return 8080;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65533) {
    throw new Error(`PORT must be an integer in [0, 65533] (PORT+2 is the UDP port), got ${value}`);
  }
  return port;
}

const port = portFromEnv(process.env.PORT);
const host = process.env.HOST || '127.0.0.1';
const logger = createPinoLogger({ level: process.env.LOG_LEVEL || 'warn' });

const demo = await startDemoServer({
  port,
  host,
  transports: {
    tcp: { port: port === 0 ? 0 : port + 1 },
    udp: { port: port === 0 ? 0 : port + 2 },
  },
  logger,
  debug: process.env.DEMO_DEBUG === '1',
});
const portOf = (url: string | undefined) => (url === undefined ? '?' : new URL(url).port);
const shownHost = host.includes(':') ? `[${host}]` : host;
console.log(
  `Tickwire demo: http://${shownHost}:${portOf(demo.url)} (ws, tcp :${portOf(demo.tcpUrl)}, udp :${portOf(demo.udpUrl)})`,
);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  demo.close().then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
