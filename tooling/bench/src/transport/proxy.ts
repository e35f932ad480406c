import { createSocket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

/** A loopback relay that counts the application-layer bytes it forwards, both ways. */
export interface CountingProxy {
  port: number;
  /** Bytes forwarded so far (TCP stream bytes or UDP datagram payloads), both directions. */
  bytes(): number;
  /** Datagrams or TCP chunks forwarded so far, both directions. */
  packets(): number;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** A TCP relay to 127.0.0.1:`targetPort`. */
export async function createTcpCountingProxy(targetPort: number): Promise<CountingProxy> {
  let bytes = 0;
  let packets = 0;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: HOST, port: targetPort });
    track(client);
    track(upstream);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        packets++;
        to.write(chunk);
      });
      from.on('close', () => to.destroy());
    }
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return {
    port: address.port,
    bytes: () => bytes,
    packets: () => packets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A UDP relay to 127.0.0.1:`targetPort` for one client at a time. */
export async function createUdpCountingProxy(targetPort: number): Promise<CountingProxy> {
  let bytes = 0;
  let packets = 0;
  const front = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  const back = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  let client: RemoteInfo | null = null;
  front.on('message', (data: Buffer, remote: RemoteInfo) => {
    client = remote;
    bytes += data.length;
    packets++;
    back.send(data, targetPort, HOST);
  });
  back.on('message', (data: Buffer) => {
    if (!client) return;
    bytes += data.length;
    packets++;
    front.send(data, client.port, client.address);
  });
  front.bind(0, HOST);
  back.bind(0, HOST);
  await Promise.all([once(front, 'listening'), once(back, 'listening')]);
  return {
    port: front.address().port,
    bytes: () => bytes,
    packets: () => packets,
    close: async () => {
      front.close();
      back.close();
    },
  };
}
