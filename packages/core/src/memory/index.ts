export { createMemoryLogger, type LogLevel, type LogRecord, type MemoryLogger } from './logger.js';
export {
  createMemoryMetrics,
  type MemoryMetrics,
  type MetricSnapshot,
  type MetricType,
  type SeriesSnapshot,
} from './metrics.js';
export { createMemoryPubSub, type MemoryPubSubOptions } from './pubsub.js';
export { createMemoryStore, type MemoryStoreOptions } from './store.js';
export {
  createMemoryClient,
  createMemoryConnectionPair,
  createMemoryNetwork,
  createMemoryServer,
  defaultMemoryNetwork,
  type MemoryClientOptions,
  type MemoryConnectionOptions,
  type MemoryNetwork,
  type MemoryServerOptions,
} from './transport.js';
