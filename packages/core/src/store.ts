import { ErrorCode, TickwireError } from './errors.js';

/** A stored value: text or bytes. */
export type StoreValue = string | Uint8Array;

/** Validates a scan's prefix and limit; returns the limit (Infinity when none). */
export function checkScanArgs(prefix: string, options?: ScanOptions): number {
  if (typeof prefix !== 'string') {
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'scan prefix must be a string');
  }
  const limit = options?.limit;
  if (limit === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isInteger(limit) || limit <= 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `scan limit must be a positive integer, got ${limit}`,
    );
  }
  return limit;
}

/** Options of a write. */
export interface SetOptions {
  /** Time to live in ms (> 0); the key disappears after it. Omit to keep the key until deleted. */
  ttlMs?: number;
}

/** One key and its value, as returned by {@link Store.scan}. */
export interface StoreEntry {
  key: string;
  value: StoreValue;
}

/** Options of {@link Store.scan}. */
export interface ScanOptions {
  /** At most this many entries. */
  limit?: number;
}

/**
 * A key/value store with TTL, compare-and-set and prefix scan. All operations are atomic per key.
 * Adapters: in-memory (core), Redis (`@tickwire/redis`).
 */
export interface Store {
  /** The value of `key`, or null if it is missing or expired. */
  get(key: string): Promise<StoreValue | null>;
  /** Writes `value` at `key`, replacing any value and TTL. */
  set(key: string, value: StoreValue, options?: SetOptions): Promise<void>;
  /** Removes `key`; true if it existed. */
  delete(key: string): Promise<boolean>;
  /**
   * Writes `next` only if the current value equals `expected` (null: only if the key is missing).
   * `next` null deletes the key. Returns whether the write happened.
   */
  compareAndSet(
    key: string,
    expected: StoreValue | null,
    next: StoreValue | null,
    options?: SetOptions,
  ): Promise<boolean>;
  /** Every live entry whose key starts with `prefix`, in ascending key order. */
  scan(prefix: string, options?: ScanOptions): Promise<StoreEntry[]>;
  /** Releases resources; later calls reject with CLOSED. */
  close(): Promise<void>;
}

/** True if two stored values are equal (same kind, same content). */
export function storeValuesEqual(a: StoreValue | null, b: StoreValue | null): boolean {
  if (a === null || b === null) return a === b;
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Validates the key and TTL of a store call; adapters share it so errors read the same. */
export function checkStoreArgs(key: string, options?: SetOptions): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'store key must be a non-empty string');
  }
  const ttl = options?.ttlMs;
  if (ttl !== undefined && !(Number.isFinite(ttl) && ttl > 0)) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `ttlMs of '${key}' must be a finite number > 0, got ${ttl}`,
    );
  }
}
