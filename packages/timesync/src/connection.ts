import { type Channel, type Connection, ErrorCode, Opcode, toTickwireError } from '@tickwire/core';
import { createClientInternals, type TimeSyncClient, type TimeSyncOptions } from './client.js';
import {
  decodeTimeRequest,
  decodeTimeResponse,
  encodeTimeRequest,
  encodeTimeResponse,
} from './messages.js';
import { createTimeSyncResponder, type TimeSyncResponderOptions } from './responder.js';

/** Options of {@link timeSyncOverConnection}. */
export interface TimeSyncConnectionOptions extends TimeSyncOptions {
  /** Channel requests go on; unreliable avoids retransmission delays. @default 'unreliable' */
  channel?: Channel;
}

/**
 * A {@link TimeSyncClient} over a `Connection`: requests go out as `Opcode.TimeRequest` frames,
 * `Opcode.TimeResponse` frames come back; other frames are left alone, malformed time frames
 * are counted in `stats().rejected`. The client closes with the connection (at once if it is
 * already closed): sampling stops and `sync()` rejects with CLOSED. `close()` also detaches
 * from the connection.
 */
export function timeSyncOverConnection(
  connection: Connection,
  options: TimeSyncConnectionOptions = {},
): TimeSyncClient {
  const channel = options.channel ?? 'unreliable';
  const { client, reject, shutdown } = createClientInternals({
    ...options,
    send: (request) => {
      if (connection.state === 'open') connection.send(encodeTimeRequest(request), channel);
    },
  });
  const off = connection.on('message', (data) => {
    if (data[0] !== Opcode.TimeResponse) return;
    try {
      client.receive(decodeTimeResponse(data));
    } catch (error) {
      reject(toTickwireError(error, ErrorCode.DECODE_FAILED, 'timesync: bad frame'));
    }
  });
  const stop = (reason: string): void => {
    off();
    offClose();
    shutdown(reason);
  };
  const offClose = connection.on('close', () => stop('connection closed'));
  client.close = () => stop('client closed');
  // Its close event is over: nothing would ever stop the sampling.
  if (connection.state === 'closed') stop('connection is closed');
  return client;
}

/** What {@link serveTimeSync} returns. */
export interface TimeSyncServer {
  /** Requests answered / malformed request frames dropped. */
  readonly stats: { readonly served: number; readonly badFrames: number };
  /** Stops answering; idempotent. */
  close(): void;
}

/**
 * Answers `Opcode.TimeRequest` frames on a server-side `Connection` with the server clock,
 * on the channel the request came on. Malformed frames are counted and dropped.
 */
export function serveTimeSync(
  connection: Connection,
  options: TimeSyncResponderOptions = {},
): TimeSyncServer {
  const responder = createTimeSyncResponder(options);
  const stats = { served: 0, badFrames: 0 };
  const off = connection.on('message', (data, channel) => {
    if (data[0] !== Opcode.TimeRequest) return;
    let request: ReturnType<typeof decodeTimeRequest>;
    try {
      request = decodeTimeRequest(data);
    } catch {
      stats.badFrames++;
      return;
    }
    if (connection.state !== 'open') return;
    connection.send(encodeTimeResponse(responder.respond(request)), channel);
    stats.served++;
  });
  return { stats, close: off };
}
