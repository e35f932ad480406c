import { copyBytes } from '../bytes.js';
import { type Clock, systemTime } from '../clock.js';
import { ErrorCode, TickwireError } from '../errors.js';
import {
  checkScanArgs,
  checkStoreArgs,
  type Store,
  type StoreEntry,
  type StoreValue,
  storeValuesEqual,
} from '../store.js';

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Clock for TTLs. @default systemTime */
  clock?: Clock;
}

interface Slot {
  value: StoreValue;
  expiresAt: number;
}

const SWEEP_EVERY_WRITES = 1_000;

const copy = (value: StoreValue): StoreValue =>
  typeof value === 'string' ? value : copyBytes(value);

/** An in-memory {@link Store}: the embedded default. Expiry is lazy (no timers). */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const clock = options.clock ?? systemTime;
  const data = new Map<string, Slot>();
  let closed = false;

  const live = (key: string): Slot | undefined => {
    const slot = data.get(key);
    if (slot && slot.expiresAt <= clock.now()) {
      data.delete(key);
      return undefined;
    }
    return slot;
  };
  const guard = (): void => {
    if (closed) throw new TickwireError(ErrorCode.CLOSED, 'memory store is closed');
  };
  let writesSinceSweep = 0;
  // Lazy expiry alone would keep keys that are never read again (tokens, presence) forever.
  const sweep = (): void => {
    writesSinceSweep = 0;
    const now = clock.now();
    for (const [key, slot] of data) if (slot.expiresAt <= now) data.delete(key);
  };
  const write = (key: string, value: StoreValue, ttlMs: number | undefined): void => {
    if (++writesSinceSweep >= Math.max(SWEEP_EVERY_WRITES, data.size)) sweep();
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `value of '${key}' must be a string or Uint8Array`,
      );
    }
    data.set(key, {
      value: copy(value),
      expiresAt: ttlMs === undefined ? Number.POSITIVE_INFINITY : clock.now() + ttlMs,
    });
  };

  return {
    async get(key) {
      guard();
      checkStoreArgs(key);
      const slot = live(key);
      return slot ? copy(slot.value) : null;
    },
    async set(key, value, opts) {
      guard();
      checkStoreArgs(key, opts);
      write(key, value, opts?.ttlMs);
    },
    async delete(key) {
      guard();
      checkStoreArgs(key);
      const existed = live(key) !== undefined;
      data.delete(key);
      return existed;
    },
    async compareAndSet(key, expected, next, opts) {
      guard();
      checkStoreArgs(key, opts);
      for (const value of [expected, next]) {
        if (value !== null && typeof value !== 'string' && !(value instanceof Uint8Array)) {
          throw new TickwireError(
            ErrorCode.INVALID_ARGUMENT,
            `compareAndSet of '${key}': values must be strings, Uint8Arrays or null`,
          );
        }
      }
      const current = live(key)?.value ?? null;
      if (!storeValuesEqual(current, expected)) return false;
      if (next === null) data.delete(key);
      else write(key, next, opts?.ttlMs);
      return true;
    },
    async scan(prefix, opts) {
      guard();
      const limit = checkScanArgs(prefix, opts);
      const keys: string[] = [];
      for (const key of data.keys()) if (key.startsWith(prefix) && live(key)) keys.push(key);
      keys.sort();
      const out: StoreEntry[] = [];
      for (const key of keys) {
        if (out.length >= limit) break;
        out.push({ key, value: copy(data.get(key)!.value) });
      }
      return out;
    },
    async close() {
      closed = true;
      data.clear();
    },
  };
}
