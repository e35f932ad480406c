import type { Subscribable } from '../emitter.js';
import { ErrorCode, TickwireError } from '../errors.js';

/** Resolves with `promise`, or rejects with TIMEOUT after `ms` (real time). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new TickwireError(ErrorCode.TIMEOUT, `timed out after ${ms} ms waiting for ${what}`),
        ),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** The next emission of `event`, as its argument tuple. */
export function nextEvent<M extends { [e: string]: unknown[] }, E extends keyof M & string>(
  source: Subscribable<M>,
  event: E,
  ms = 5_000,
): Promise<M[E]> {
  return withTimeout(
    new Promise<M[E]>((resolve) => {
      source.once(event, (...args: M[E]) => resolve(args));
    }),
    ms,
    `event '${event}'`,
  );
}

/**
 * From now until `restore()`, runs every task queued with `queueMicrotask` in a promise job and
 * keeps what it throws in `thrown`, instead of letting it become an uncaught error (how core's
 * emitters and `ListenerList` report a listener's error by default).
 */
export function catchMicrotaskErrors(): { thrown: unknown[]; restore(): void } {
  const original = globalThis.queueMicrotask;
  const thrown: unknown[] = [];
  globalThis.queueMicrotask = (task) => {
    void Promise.resolve().then(() => {
      try {
        task();
      } catch (error) {
        thrown.push(error);
      }
    });
  };
  return {
    thrown,
    restore() {
      globalThis.queueMicrotask = original;
    },
  };
}
