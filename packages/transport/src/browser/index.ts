export type { StreamConnectionOptions } from '../shared/options.js';
export {
  type BrowserWsClientOptions,
  createBrowserWsClient,
  type WebSocketConstructor,
} from './client.js';
