/** A map of event names to listener argument tuples. */
export type EventMap = { [event: string]: unknown[] };

/** A listener of event `E` of map `M`. */
export type Listener<M extends EventMap, E extends keyof M> = (...args: M[E]) => void;

/** The subscribe half of an emitter, the part an interface exposes to users. */
export interface Subscribable<M extends EventMap> {
  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof M & string>(event: E, listener: Listener<M, E>): () => void;
  /** Adds a listener that runs once; returns a function that removes it. */
  once<E extends keyof M & string>(event: E, listener: Listener<M, E>): () => void;
  /** Removes a listener added with `on` or `once`. */
  off<E extends keyof M & string>(event: E, listener: Listener<M, E>): void;
}

type AnyListener = (...args: unknown[]) => void;

const rethrowLater = (error: unknown): void => {
  queueMicrotask(() => {
    throw error;
  });
};

/** A small typed event emitter for browsers and Node. Listeners run in the order added. */
export class Emitter<M extends EventMap> implements Subscribable<M> {
  #listeners = new Map<keyof M, AnyListener[]>();
  readonly #onListenerError: (error: unknown, event: string) => void;

  /** `onListenerError` receives what a listener throws; by default it is rethrown in a microtask. */
  constructor(options: { onListenerError?: (error: unknown, event: string) => void } = {}) {
    this.#onListenerError = options.onListenerError ?? rethrowLater;
  }

  on<E extends keyof M & string>(event: E, listener: Listener<M, E>): () => void {
    const list = this.#listeners.get(event);
    // Copy on write, so that an emit in progress calls exactly the listeners it started with.
    this.#listeners.set(
      event,
      list ? [...list, listener as AnyListener] : [listener as AnyListener],
    );
    return () => this.off(event, listener);
  }

  once<E extends keyof M & string>(event: E, listener: Listener<M, E>): () => void {
    let fired = false;
    const wrapper = ((...args: M[E]) => {
      // A nested emit of the same event may reach this wrapper before the outer one does.
      if (fired) return;
      fired = true;
      this.off(event, wrapper);
      listener(...args);
    }) as Listener<M, E>;
    (wrapper as { listener?: unknown }).listener = listener;
    return this.on(event, wrapper);
  }

  off<E extends keyof M & string>(event: E, listener: Listener<M, E>): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    const index = list.findIndex(
      (item) =>
        item === (listener as AnyListener) ||
        (item as { listener?: unknown }).listener === listener,
    );
    if (index === -1) return;
    const next = list.slice();
    next.splice(index, 1);
    if (next.length === 0) this.#listeners.delete(event);
    else this.#listeners.set(event, next);
  }

  /**
   * Calls every listener of `event`; returns whether there was any. A listener that throws does
   * not stop the others, nor the caller (a transport mid-delivery): the error goes to
   * `onListenerError`, which by default rethrows it in a microtask, as an uncaught error.
   */
  emit<E extends keyof M & string>(event: E, ...args: M[E]): boolean {
    const list = this.#listeners.get(event);
    if (!list) return false;
    for (const listener of list) {
      try {
        (listener as (...a: M[E]) => void)(...args);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
    return true;
  }

  /** Number of listeners of `event`. */
  listenerCount(event: keyof M & string): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Removes every listener, of one event or of all. */
  removeAllListeners(event?: keyof M & string): void {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
  }
}

/** The subscribe half of `emitter` as a plain object, to spread into what a factory returns. */
export function subscribable<M extends EventMap>(emitter: Emitter<M>): Subscribable<M> {
  return {
    on: (event, listener) => emitter.on(event, listener),
    once: (event, listener) => emitter.once(event, listener),
    off: (event, listener) => emitter.off(event, listener),
  };
}
