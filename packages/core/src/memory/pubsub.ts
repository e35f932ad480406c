import { copyBytes } from '../bytes.js';
import { ErrorCode, TickwireError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { checkTopic, type PubSub, type PubSubHandler } from '../pubsub.js';

/** Options of {@link createMemoryPubSub}. */
export interface MemoryPubSubOptions {
  /** Where a throwing handler is reported. @default silentLogger */
  logger?: Logger;
}

/** An in-process {@link PubSub}. A throwing handler is logged and does not affect others. */
export function createMemoryPubSub(options: MemoryPubSubOptions = {}): PubSub {
  const logger = options.logger ?? silentLogger;
  const topics = new Map<string, Set<{ handler: PubSubHandler }>>();
  let closed = false;
  const report = (error: unknown, topic: string): void =>
    logger.error({ err: error, topic }, 'pub/sub handler threw');

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
      const payload = typeof message === 'string' ? message : copyBytes(message);
      for (const sub of [...subscribers]) {
        // Asynchronous like a networked broker; a subscription ended meanwhile gets nothing.
        queueMicrotask(() => {
          if (!topics.get(topic)?.has(sub)) return;
          try {
            const result: unknown = sub.handler(
              typeof payload === 'string' ? payload : copyBytes(payload),
              topic,
            );
            // An async handler's rejection is the same bug as a throw: log it, don't crash.
            if (result instanceof Promise) result.catch((error: unknown) => report(error, topic));
          } catch (error) {
            report(error, topic);
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
