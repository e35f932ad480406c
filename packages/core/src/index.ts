export { copyBytes } from './bytes.js';
export {
  type Clock,
  createManualTime,
  createSystemTime,
  type ManualTime,
  type Scheduler,
  type SystemTimeOptions,
  systemTime,
  type Timer,
  type TimeSource,
} from './clock.js';
export type { Codec } from './codec.js';
export {
  type ConditionConnectionOptions,
  type ConditionedConnection,
  conditionConnection,
  type LinkView,
} from './conditioned-connection.js';
export {
  Emitter,
  type EventMap,
  type Listener,
  ListenerList,
  type Subscribable,
  subscribable,
  subscribableWith,
} from './emitter.js';
export {
  ErrorCode,
  isTickwireError,
  TickwireError,
  type TickwireErrorOptions,
  toTickwireError,
} from './errors.js';
export {
  createLinkConditioner,
  type JitterDistribution,
  type LinkConditioner,
  type LinkConditionerOptions,
  type LinkOptions,
  type LinkStats,
} from './link-conditioner.js';
export { type LogFn, type Logger, silentLogger } from './logger.js';
export {
  type Counter,
  type Gauge,
  type Histogram,
  type HistogramOptions,
  type Labels,
  type MetricOptions,
  type Metrics,
  noopMetrics,
} from './metrics.js';
export {
  CloseCode,
  checkCloseArgs,
  FRAME_HEADER_BYTES,
  FrameFlag,
  MAX_CLOSE_REASON_BYTES,
  Opcode,
  PROTOCOL_VERSION,
} from './protocol.js';
export {
  checkTopic,
  type PubSub,
  type PubSubHandler,
  type PubSubMessage,
} from './pubsub.js';
export { createRandom, type Random, type SeededRandom, systemRandom } from './random.js';
export {
  checkScanArgs,
  checkStoreArgs,
  type ScanOptions,
  type SetOptions,
  type Store,
  type StoreEntry,
  type StoreValue,
  storeValuesEqual,
} from './store.js';
export {
  Channel,
  type ClientTransport,
  type CloseInfo,
  type Connection,
  type ConnectionEvents,
  type ConnectionState,
  type ConnectionStats,
  type ConnectOptions,
  checkSend,
  createConnectionStats,
  type ServerTransport,
  type ServerTransportEvents,
  type TransportAddress,
} from './transport.js';
export { utf8Length } from './utf8.js';
