export {
  createUdpClient,
  parseUdpUrl,
  type UdpClient,
  type UdpClientOptions,
} from './client.js';
export type { UdpChannel, UdpConnection } from './connection.js';
export type { UdpConnectionStats } from './endpoint.js';
export type { UdpConnectionOptions } from './options.js';
export { DEFAULT_PROTOCOL_ID, UDP_WIRE_VERSION } from './packet.js';
export {
  createUdpServer,
  type UdpDropReason,
  type UdpServer,
  type UdpServerEvents,
  type UdpServerOptions,
  type UdpServerStats,
} from './server.js';
export {
  type ConnectTokenOptions,
  generateConnectToken,
  systemWallClock,
} from './token.js';
