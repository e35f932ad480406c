import { ErrorCode, TickwireError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';

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

/** Options of {@link createMemoryPubSub}. */
export interface MemoryPubSubOptions {
  /** Where a throwing handler is reported. @default silentLogger */
  logger?: Logger;
}

/** Checks a topic name; adapters share it so errors read the same. */
export function checkTopic(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'pub/sub topic must be a non-empty string');
  }
}

/** An in-process {@link PubSub}. A throwing handler is logged and does not affect others. */
export function createMemoryPubSub(options: MemoryPubSubOptions = {}): PubSub {
  const logger = options.logger ?? silentLogger;
  const topics = new Map<string, Set<{ handler: PubSubHandler }>>();
  let closed = false;

  const guard = (): void => {
    if (closed) throw new TickwireError(ErrorCode.CLOSED, 'memory pub/sub is closed');
  };

  return {
    async publish(topic, message) {
      guard();
      checkTopic(topic);
      if (typeof message !== 'string' && !(message instanceof Uint8Array)) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `message on '${topic}' must be a string or Uint8Array`,
        );
      }
      const subscribers = topics.get(topic);
      if (!subscribers || subscribers.size === 0) return;
      const payload = typeof message === 'string' ? message : message.slice();
      for (const sub of [...subscribers]) {
        // Asynchronous like a networked broker; a subscription ended meanwhile gets nothing.
        queueMicrotask(() => {
          if (!topics.get(topic)?.has(sub)) return;
          try {
            sub.handler(typeof payload === 'string' ? payload : payload.slice(), topic);
          } catch (error) {
            logger.error({ err: error, topic }, 'pub/sub handler threw');
          }
        });
      }
    },
    async subscribe(topic, handler) {
      guard();
      checkTopic(topic);
      if (typeof handler !== 'function') {
        throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'pub/sub handler must be a function');
      }
      const sub = { handler };
      let set = topics.get(topic);
      if (!set) {
        set = new Set();
        topics.set(topic, set);
      }
      set.add(sub);
      return async () => {
        const current = topics.get(topic);
        if (!current) return;
        current.delete(sub);
        if (current.size === 0) topics.delete(topic);
      };
    },
    async close() {
      closed = true;
      topics.clear();
    },
  };
}
