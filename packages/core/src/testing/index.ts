export { type HeldStore, holdWrites } from './hold-writes.js';
export { type PubSubHarness, testPubSub } from './pubsub-suite.js';
export { type StoreHarness, testStore } from './store-suite.js';
export {
  type TestTransportOptions,
  type TransportHarness,
  testTransport,
} from './transport-suite.js';
export { catchMicrotaskErrors, nextEvent, withTimeout } from './wait.js';
