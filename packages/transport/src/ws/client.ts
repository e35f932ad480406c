// The Node WebSocket client; the channel mapping is described at the top of ./server.ts.
import { type ClientTransport, ErrorCode, TickwireError } from '@tickwire/core';
import { WebSocket } from 'ws';
import {
  hostPort,
  intOption,
  nextConnectionId,
  resolveStreamOptions,
  type StreamConnectionOptions,
} from '../shared/options.js';
import { maxPayloadBytes, WsConnection } from './connection.js';
import type { DeflateOptions } from './server.js';

/** Options of {@link createWsClient}. */
export interface WsClientOptions extends StreamConnectionOptions {
  /**
   * Default connect timeout in ms when `connect()` is not given `timeoutMs`.
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * Extra HTTP headers of the upgrade request (e.g. an auth token for `verifyUpgrade`).
   * @default {}
   */
  headers?: Record<string, string>;
  /**
   * Origin header of the upgrade request.
   * @default undefined (none, as for any non-browser client)
   */
  origin?: string;
  /**
   * WebSocket subprotocols to offer.
   * @default []
   */
  protocols?: string | string[];
  /**
   * WebSocket per-message deflate (used only if the server enables it too).
   * @default false
   */
  perMessageDeflate?: boolean | DeflateOptions;
}

/** Checks a `ws://` / `wss://` URL; returns its `host:port`. */
export function parseWsUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL('invalid:');
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `websocket URL must start with ws:// or wss://, got '${url}'`,
    );
  }
  const port = parsed.port ? Number(parsed.port) : parsed.protocol === 'wss:' ? 443 : 80;
  return hostPort(parsed.hostname.replace(/^\[|\]$/g, ''), port);
}

/** A Node WebSocket {@link ClientTransport} on `ws`: `connect('ws://127.0.0.1:4000')`. */
export function createWsClient(options: WsClientOptions = {}): ClientTransport {
  const resolved = resolveStreamOptions(options);
  const defaultTimeoutMs = intOption(
    'connectTimeoutMs',
    options.connectTimeoutMs ?? 10_000,
    1,
    2_147_483_647,
  );
  return {
    async connect(url, connectOptions = {}) {
      const remote = parseWsUrl(url);
      const timeoutMs = intOption(
        'timeoutMs',
        connectOptions.timeoutMs ?? defaultTimeoutMs,
        1,
        2_147_483_647,
      );
      const ws = new WebSocket(url, options.protocols ?? [], {
        maxPayload: maxPayloadBytes(resolved.maxMessageBytes),
        perMessageDeflate: options.perMessageDeflate ?? false,
        // `ws` 8.23's closing-handshake timeout; @types/ws 8.18 does not declare it yet.
        ...({ closeTimeout: resolved.closeTimeoutMs } as object),
        ...(options.headers ? { headers: options.headers } : {}),
        ...(options.origin !== undefined ? { origin: options.origin } : {}),
      });
      const connection = new WsConnection(ws, nextConnectionId('ws'), remote, resolved, true);
      return connection.waitForOpen(url, timeoutMs, connectOptions.signal);
    },
  };
}
