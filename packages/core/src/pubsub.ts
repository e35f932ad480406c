import { ErrorCode, TickwireError } from './errors.js';

/** A pub/sub message: text or bytes. */
export type PubSubMessage = string | Uint8Array;

/** Receives messages of one topic. */
export type PubSubHandler = (message: PubSubMessage, topic: string) => void;

/**
 * Topic-based publish/subscribe. Delivery is asynchronous; messages from one publisher to one
 * topic arrive in the order published. Adapters: in-memory (core), Redis (`@tickwire/redis`).
 */
export interface PubSub {
  /** Sends `message` to every current subscriber of `topic`. */
  publish(topic: string, message: PubSubMessage): Promise<void>;
  /** Calls `handler` for each message on `topic`; resolves once the subscription is active. */
  subscribe(topic: string, handler: PubSubHandler): Promise<() => Promise<void>>;
  /** Ends every subscription and releases resources; later calls reject with CLOSED. */
  close(): Promise<void>;
}

/** Checks a topic name; adapters share it so errors read the same. */
export function checkTopic(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'pub/sub topic must be a non-empty string');
  }
}
