export {
  createTimeSyncClient,
  type SampleEvent,
  type ScheduledEvent,
  type StepEvent,
  type TimeSyncClient,
  type TimeSyncClientOptions,
  type TimeSyncEvents,
  type TimeSyncOptions,
  type TimeSyncStats,
} from './client.js';
export {
  serveTimeSync,
  type TimeSyncConnectionOptions,
  type TimeSyncServer,
  timeSyncOverConnection,
} from './connection.js';
export { type Estimate, type EstimatorOptions, estimate, type TimeSample } from './estimator.js';
export {
  decodeTimeRequest,
  decodeTimeResponse,
  encodeTimeRequest,
  encodeTimeResponse,
  TIME_REQUEST_BYTES,
  TIME_RESPONSE_BYTES,
  type TimeRequest,
  type TimeResponse,
} from './messages.js';
export {
  createTimeSyncResponder,
  type TimeSyncResponder,
  type TimeSyncResponderOptions,
} from './responder.js';
