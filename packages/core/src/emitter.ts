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

/**
 * The listeners of one event, for a hot path that calls them itself (a connection's
 * `message`, once per frame): a call loop of its own stays monomorphic, where
 * {@link Emitter.emit} is one function shared by every emitter. The rules are the emitter's:
 * listeners run in the order added, `items` is replaced on every change (never changed), so a
 * delivery calls exactly the listeners it started with, and a `once` listener can be removed
 * by the function given to `once` (the emitter keeps its own arrays, so that browser bundles,
 * which carry the emitter, need not carry this class too). Deliver like this:
 *
 * ```ts
 * const items = list.items;
 * for (let i = 0; i < items.length; i++) {
 *   try {
 *     items[i]!(data, channel);
 *   } catch (error) {
 *     list.report(error);
 *   }
 * }
 * ```
 */
export class ListenerList<A extends unknown[]> {
  #items: readonly ((...args: A) => void)[] = [];

  /** The current listeners, in the order added (an array replaced, never changed, by add and remove). */
  get items(): readonly ((...args: A) => void)[] {
    return this.#items;
  }
  readonly #onError: (error: unknown) => void;

  /** `onError` receives what a listener throws ({@link report}); by default it is rethrown in a microtask. */
  constructor(onError: (error: unknown) => void = rethrowLater) {
    this.#onError = onError;
  }

  /** Adds a listener; returns a function that removes it. */
  add(listener: (...args: A) => void): () => void {
    this.#items = [...this.#items, listener];
    return () => this.remove(listener);
  }

  /** Adds a listener that runs once; returns a function that removes it. */
  once(listener: (...args: A) => void): () => void {
    let fired = false;
    const wrapper = (...args: A) => {
      // A nested delivery may reach this wrapper before the outer one does.
      if (fired) return;
      fired = true;
      this.remove(wrapper);
      listener(...args);
    };
    (wrapper as { listener?: unknown }).listener = listener;
    return this.add(wrapper);
  }

  /** Removes a listener added with `add` or `once` (the first, if added twice). */
  remove(listener: (...args: A) => void): void {
    const items = this.#items;
    const index = items.findIndex(
      (item) => item === listener || (item as { listener?: unknown }).listener === listener,
    );
    if (index === -1) return;
    const next = items.slice();
    next.splice(index, 1);
    this.#items = next;
  }

  /** Hands what a listener threw to the error handler. */
  report(error: unknown): void {
    this.#onError(error);
  }
}

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

/**
 * The subscribe half of `emitter`, except that the listeners of `event` go to `list`: its owner
 * calls them from a loop of its own (see {@link ListenerList}), for an event it delivers per
 * message.
 */
export function subscribableWith<M extends EventMap, H extends keyof M & string>(
  emitter: Emitter<M>,
  event: H,
  list: ListenerList<M[H]>,
): Subscribable<M> {
  return {
    on: (name, listener) =>
      (name as string) === event
        ? list.add(listener as unknown as Listener<M, H>)
        : emitter.on(name, listener),
    once: (name, listener) =>
      (name as string) === event
        ? list.once(listener as unknown as Listener<M, H>)
        : emitter.once(name, listener),
    off: (name, listener) => {
      if ((name as string) === event) list.remove(listener as unknown as Listener<M, H>);
      else emitter.off(name, listener);
    },
  };
}
