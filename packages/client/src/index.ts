// The building blocks the engine wires, re-exported so one import serves a game client.
export {
  createInterpolator,
  createPrediction,
  type InterpolationFrame,
  type Interpolator,
  type InterpolatorOptions,
  type Prediction,
  type PredictionOptions,
} from '@tickwire/prediction';
export { type Backoff, type BackoffOptions, createBackoff } from './backoff.js';
export {
  type Client,
  type ClientEvents,
  type ClientOptions,
  type ClientState,
  type ClientStats,
  createClient,
  type Endpoint,
  errorOfClose,
  type JoinRequest,
  type ReconnectOptions,
  type SessionInfo,
} from './client.js';
export type {
  ClientRoom,
  ClientRoomEvents,
  ClientRoomOptions,
  SendOptions,
} from './room.js';
export {
  type EntityInterpolation,
  type EntityInterpolationOptions,
  interpolateEntities,
} from './state.js';
