// The demo server: the Tickwire engine with the arena room, the built browser client on the same
// HTTP port as the WebSocket, and optionally TCP and UDP for Node clients (bots, load tests).
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createRandom,
  type Logger,
  systemRandom,
  systemTime,
  type TimeSource,
} from '@tickwire/core';
import { createServer, type LimitsConfig, type TickwireServer } from '@tickwire/server';
import { TICK_RATE_HZ } from '../shared/game.js';
import { defineArena } from './arena.js';
import { createStaticHandler } from './static.js';

/** Where `vite build` puts the client (apps/demo/dist/client). */
export const DEFAULT_STATIC_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../dist/client',
);

/** A transport on its own port: `true` for a free port, or the port. */
export type PortOption = boolean | { port: number };

/** Options of {@link startDemoServer}. */
export interface DemoServerOptions {
  /** HTTP + WebSocket port; 0 picks a free one. @default 0 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** TCP and UDP besides the WebSocket (which is always on). @default neither */
  transports?: { tcp?: PortOption; udp?: PortOption };
  /** The built client. @default apps/demo/dist/client */
  staticDir?: string;
  /** @default the server's pino logger at level 'info' */
  logger?: Logger;
  /**
   * The server clock and scheduler (rooms' tick loops, sessions) and the clock of the arena's
   * `tickOrigin`. Clients sync to the server's timesync responder, which reads `systemTime`:
   * anything else is for tests that do not compare the two.
   * @default systemTime
   */
  time?: TimeSource;
  /** Seed of the arena's random choices (spawns, bots). @default random */
  seed?: number;
  /** Bots top every arena up to this many players. @default MIN_PLAYERS */
  minPlayers?: number;
  /** Key of the reconnect tokens (≥ 32 bytes). @default 32 random bytes (sessions die with the process) */
  sessionSecret?: string | Uint8Array;
  /** Serve `/debug` (sessions, addresses, rooms): keep it off on a public address. @default false */
  debug?: boolean;
  /** Connection and rate limits (a load test raises the per-address cap). @default the server's */
  limits?: LimitsConfig;
}

/** A running demo server. */
export interface DemoServer {
  readonly server: TickwireServer;
  /** `http://host:port`: the client, `/health`, `/metrics`, `/debug`. */
  readonly url: string;
  /** `ws://host:port`. */
  readonly wsUrl: string;
  /** `tcp://host:port` when TCP is on. */
  readonly tcpUrl?: string;
  /** `udp://host:port` when UDP is on. */
  readonly udpUrl?: string;
  /** Graceful shutdown (clients are told to reconnect). */
  close(): Promise<void>;
}

const portConfig = (option: PortOption | undefined): false | { port: number } =>
  option === undefined || option === false ? false : option === true ? { port: 0 } : option;

/** Starts the demo server; resolves once every transport listens. */
export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const time = options.time ?? systemTime;
  const seed = options.seed ?? Math.floor(systemRandom.next() * 2 ** 32);
  const arena = defineArena({
    time,
    random: createRandom(seed),
    ...(options.minPlayers === undefined ? {} : { minPlayers: options.minPlayers }),
  });
  const server = createServer({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    tickRateHz: TICK_RATE_HZ,
    transports: {
      ws: true,
      tcp: portConfig(options.transports?.tcp),
      udp: portConfig(options.transports?.udp),
    },
    http: { debug: options.debug ?? false },
    session: { secret: options.sessionSecret ?? randomBytes(32) },
    rooms: { arena },
    requestHandler: createStaticHandler({ root: options.staticDir ?? DEFAULT_STATIC_DIR }),
    time,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const addresses = await server.listen();
  const { ws, tcp, udp } = addresses.transports;
  return {
    server,
    url: addresses.http,
    wsUrl: ws!.url,
    ...(tcp === undefined ? {} : { tcpUrl: tcp.url }),
    ...(udp === undefined ? {} : { udpUrl: udp.url }),
    close: () => server.close(),
  };
}
