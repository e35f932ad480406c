export type { StreamConnectionOptions } from '../shared/options.js';
export { createWsClient, type WsClientOptions } from './client.js';
export {
  createWsServer,
  type DeflateOptions,
  type UpgradeVerdict,
  type WsServerOptions,
} from './server.js';
