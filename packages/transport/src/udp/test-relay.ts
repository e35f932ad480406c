// Test support (not exported): a UDP relay between one client and a server that passes every
// datagram through core's seeded link conditioner, in real time, one conditioner per direction.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import {
  createLinkConditioner,
  type LinkConditioner,
  type LinkOptions,
  systemTime,
} from '@tickwire/core';
import { literalLookup } from './lookup.js';

/** A running relay. */
export interface LossyRelay {
  /** What the client connects to. */
  readonly url: string;
  /** Conditioners of each direction (reconfigurable). */
  readonly toServer: LinkConditioner;
  readonly toClient: LinkConditioner;
  /** Datagrams forwarded to the server (not counting `injectToServer`). */
  readonly forwardedToServer: number;
  /** Called with each client → server datagram before conditioning. */
  onClientDatagram: ((bytes: Buffer) => void) | null;
  /** Sends `bytes` to the server from the relay's own socket (the client's address there). */
  injectToServer(bytes: Uint8Array): void;
  /** Closes both sockets without a word to either side (the client "vanishes"). */
  close(): Promise<void>;
}

/** Options of {@link createLossyRelay}: link conditions of both directions, and a seed. */
export interface LossyRelayOptions extends LinkOptions {
  seed?: number;
}

const BUFFER_BYTES = 4 * 1_048_576;

function bind(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/** Starts a relay in front of the UDP server at `serverPort` on 127.0.0.1. */
export async function createLossyRelay(
  serverPort: number,
  options: LossyRelayOptions = {},
): Promise<LossyRelay> {
  const { seed = 1, ...link } = options;
  const socketOptions = {
    type: 'udp4' as const,
    recvBufferSize: BUFFER_BYTES,
    sendBufferSize: BUFFER_BYTES,
    lookup: literalLookup,
  };
  const clientSide = createSocket(socketOptions);
  const serverSide = createSocket(socketOptions);
  await bind(clientSide);
  await bind(serverSide);
  await new Promise<void>((resolve) => serverSide.connect(serverPort, '127.0.0.1', resolve));
  const toServer = createLinkConditioner({ time: systemTime, seed, ...link });
  const toClient = createLinkConditioner({ time: systemTime, seed: seed + 1, ...link });
  let client: RemoteInfo | null = null;
  let closed = false;
  let forwarded = 0;
  const ignore = (): void => {};
  clientSide.on('error', ignore);
  serverSide.on('error', ignore);

  const relay: LossyRelay = {
    url: `udp://127.0.0.1:${clientSide.address().port}`,
    toServer,
    toClient,
    get forwardedToServer() {
      return forwarded;
    },
    onClientDatagram: null,
    injectToServer(bytes) {
      if (!closed) serverSide.send(bytes);
    },
    async close() {
      if (closed) return;
      closed = true;
      toServer.clear();
      toClient.clear();
      await Promise.all([
        new Promise<void>((resolve) => clientSide.close(() => resolve())),
        new Promise<void>((resolve) => serverSide.close(() => resolve())),
      ]);
    },
  };

  clientSide.on('message', (msg, rinfo) => {
    client = rinfo;
    relay.onClientDatagram?.(msg);
    toServer.transmit(msg.length, () => {
      if (closed) return;
      forwarded++;
      serverSide.send(msg);
    });
  });
  serverSide.on('message', (msg) => {
    const to = client;
    if (to === null) return;
    toClient.transmit(msg.length, () => {
      if (!closed) clientSide.send(msg, to.port, to.address);
    });
  });
  return relay;
}
