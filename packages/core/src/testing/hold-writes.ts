import type { Store } from '../store.js';

/** A store whose writes a test can hold, see {@link holdWrites}. */
export interface HeldStore {
  /** The store: reads pass through; `compareAndSet` waits while writes are held. */
  readonly store: Store;
  /** From now on, every `compareAndSet` waits before it runs. */
  hold(): void;
  /** Lets every waiting `compareAndSet` run, and the later ones run at once. */
  release(): void;
  /** `compareAndSet` calls waiting now. */
  readonly waiting: number;
}

/**
 * Wraps `store` so that a test can stop its compare-and-set writes mid-way: to make two
 * read-modify-writes overlap, or to hold an operation at its write while something else happens.
 */
export function holdWrites(store: Store): HeldStore {
  const waiting: (() => void)[] = [];
  let holding = false;
  const held: Store = Object.assign(Object.create(store) as Store, {
    compareAndSet: async (...args: Parameters<Store['compareAndSet']>) => {
      if (holding) await new Promise<void>((resolve) => waiting.push(resolve));
      return store.compareAndSet(...args);
    },
  });
  return {
    store: held,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const resume of waiting.splice(0)) resume();
    },
    get waiting() {
      return waiting.length;
    },
  };
}
