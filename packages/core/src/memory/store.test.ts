import { describe, expect, it } from 'vitest';
import { createManualTime } from '../clock.js';
import { ErrorCode } from '../errors.js';
import { checkStoreArgs, storeValuesEqual } from '../store.js';
import { testStore } from '../testing/store-suite.js';
import { createMemoryStore } from './store.js';

testStore('memory', () => {
  const time = createManualTime();
  return {
    store: createMemoryStore({ clock: time }),
    advanceTime: async (ms) => time.advance(ms),
  };
});

describe('memory store', () => {
  it('expires exactly at the TTL boundary on the injected clock', async () => {
    const time = createManualTime();
    const store = createMemoryStore({ clock: time });
    await store.set('k', 'v', { ttlMs: 100 });
    time.advance(99);
    expect(await store.get('k')).toBe('v');
    time.advance(1);
    expect(await store.get('k')).toBeNull();
  });

  it('treats an expired key as absent for compare-and-set', async () => {
    const time = createManualTime();
    const store = createMemoryStore({ clock: time });
    await store.set('lock', 'owner-a', { ttlMs: 50 });
    expect(await store.compareAndSet('lock', null, 'owner-b')).toBe(false);
    time.advance(60);
    expect(await store.compareAndSet('lock', null, 'owner-b', { ttlMs: 50 })).toBe(true);
    expect(await store.get('lock')).toBe('owner-b');
  });

  it('stores a copy of a Node Buffer and returns copies', async () => {
    const store = createMemoryStore();
    const buffer = Buffer.from([1, 2, 3]);
    await store.set('b', buffer);
    buffer.fill(0);
    const back = (await store.get('b')) as Uint8Array;
    back[0] = 9;
    expect(Array.from((await store.get('b')) as Uint8Array)).toEqual([1, 2, 3]);
  });

  it('sweeps expired keys that are never read again', async () => {
    const time = createManualTime();
    const store = createMemoryStore({ clock: time });
    for (let i = 0; i < 500; i++) await store.set(`token:${i}`, 'x', { ttlMs: 10 });
    time.advance(20);
    for (let i = 0; i < 1_000; i++) await store.set(`other:${i}`, 'y');
    // Every write so far was kept or swept; only the 1000 live keys remain visible and stored.
    expect((await store.scan('token:')).length).toBe(0);
    expect((await store.scan('other:')).length).toBe(1_000);
  });

  it('rejects bad scan and compare-and-set arguments with INVALID_ARGUMENT', async () => {
    const store = createMemoryStore();
    for (const call of [
      () => store.scan(undefined as unknown as string),
      () => store.scan('', { limit: 0 }),
      () => store.scan('', { limit: Number.NaN }),
      () => store.compareAndSet('k', 5 as never, 'x'),
      () => store.compareAndSet('k', null, {} as never),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    }
    expect(await store.get('k')).toBeNull();
  });

  it('uses the system clock by default', async () => {
    const store = createMemoryStore();
    await store.set('k', 'v', { ttlMs: 60_000 });
    expect(await store.get('k')).toBe('v');
  });
});

describe('store helpers', () => {
  it('compares values by kind and content', () => {
    expect(storeValuesEqual(null, null)).toBe(true);
    expect(storeValuesEqual('a', null)).toBe(false);
    expect(storeValuesEqual('a', 'a')).toBe(true);
    expect(storeValuesEqual('a', new Uint8Array([97]))).toBe(false);
    expect(storeValuesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(storeValuesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(storeValuesEqual(new Uint8Array([1]), new Uint8Array([1, 2]))).toBe(false);
  });

  it('names the key in TTL errors', () => {
    expect(() => checkStoreArgs('session:9', { ttlMs: 0 })).toThrow(/session:9/);
  });
});
