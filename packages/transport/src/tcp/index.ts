export type { StreamConnectionOptions } from '../shared/options.js';
export { createTcpClient, type TcpClientOptions } from './client.js';
export { createTcpServer, type TcpServerOptions, type TcpSocketOptions } from './server.js';
