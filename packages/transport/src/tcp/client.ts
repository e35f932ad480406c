// The TCP client; the channel mapping is described at the top of ./server.ts.
import { connect as netConnect } from 'node:net';
import { type ClientTransport, ErrorCode, TickwireError } from '@tickwire/core';
import {
  hostPort,
  intOption,
  nextConnectionId,
  resolveStreamOptions,
  type StreamConnectionOptions,
} from '../shared/options.js';
import { TcpConnection } from './connection.js';
import { configureSocket, type TcpSocketOptions } from './server.js';

/** Options of {@link createTcpClient}. */
export interface TcpClientOptions extends StreamConnectionOptions, TcpSocketOptions {
  /**
   * Default connect timeout in ms when `connect()` is not given `timeoutMs`.
   * @default 10000
   */
  connectTimeoutMs?: number;
}

/** Splits `tcp://host:port` (IPv6 in brackets) into host and port; INVALID_ARGUMENT otherwise. */
export function parseTcpUrl(url: string): { host: string; port: number } {
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(url);
  const port = match ? Number(match[2]) : -1;
  if (!match || port < 1 || port > 65_535) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `tcp URL must look like tcp://host:port, got '${url}'`,
    );
  }
  const host = match[1]!;
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port };
}

/** A TCP {@link ClientTransport}: `connect('tcp://127.0.0.1:4000')`. */
export function createTcpClient(options: TcpClientOptions = {}): ClientTransport {
  const resolved = resolveStreamOptions(options);
  const noDelay = options.noDelay ?? true;
  const keepAliveDelayMs = intOption(
    'keepAliveInitialDelayMs',
    options.keepAliveInitialDelayMs ?? 30_000,
    0,
    2_147_483_647,
  );
  const defaultTimeoutMs = intOption(
    'connectTimeoutMs',
    options.connectTimeoutMs ?? 10_000,
    1,
    2_147_483_647,
  );
  return {
    async connect(url, connectOptions = {}) {
      const { host, port } = parseTcpUrl(url);
      const timeoutMs = intOption(
        'timeoutMs',
        connectOptions.timeoutMs ?? defaultTimeoutMs,
        1,
        2_147_483_647,
      );
      const socket = netConnect({ host, port, noDelay });
      const connection = new TcpConnection(
        socket,
        nextConnectionId('tcp'),
        hostPort(host, port),
        resolved,
        true,
      );
      socket.once('connect', () => {
        configureSocket(socket, noDelay, keepAliveDelayMs);
        connection.sendHello();
      });
      return connection.waitForOpen(url, timeoutMs, connectOptions.signal);
    },
  };
}
