import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isTickwireError } from '../errors.js';
import type { Store, StoreValue } from '../store.js';

/** What {@link testStore} needs. */
export interface StoreHarness {
  store: Store;
  /** Lets `ms` of the store's time pass (a fake clock's advance, or a real wait). */
  advanceTime(ms: number): Promise<void>;
  /** Extra cleanup after each test (the suite closes the store itself). */
  dispose?: () => Promise<void> | void;
}

let runNumber = 0;

/**
 * The conformance suite of `Store`. Keys are prefixed per test, so a shared server (Redis) is fine:
 * `testStore('redis', async () => ({ store, advanceTime: (ms) => sleep(ms) }))`.
 */
export function testStore(name: string, factory: () => Promise<StoreHarness> | StoreHarness): void {
  describe(`store conformance: ${name}`, () => {
    let harness: StoreHarness;
    let store: Store;
    let ns: string;

    beforeEach(async () => {
      harness = await factory();
      store = harness.store;
      ns = `tw-conformance:${Math.random().toString(36).slice(2)}:${runNumber++}:`;
    });

    afterEach(async () => {
      for (const { key } of await store.scan(ns)) await store.delete(key);
      await store.close();
      await harness.dispose?.();
    });

    it('returns null for a missing key', async () => {
      expect(await store.get(`${ns}missing`)).toBeNull();
    });

    it('stores strings and bytes and gives back equal copies', async () => {
      await store.set(`${ns}text`, 'héllo ✓');
      const bytes = new Uint8Array([0, 1, 2, 255, 128, 0]);
      await store.set(`${ns}bytes`, bytes);
      expect(await store.get(`${ns}text`)).toBe('héllo ✓');
      const back = await store.get(`${ns}bytes`);
      expect(back).toBeInstanceOf(Uint8Array);
      expect(Array.from(back as Uint8Array)).toEqual([0, 1, 2, 255, 128, 0]);
      bytes[0] = 99;
      expect(((await store.get(`${ns}bytes`)) as Uint8Array)[0]).toBe(0);
    });

    it('overwrites and deletes', async () => {
      await store.set(`${ns}k`, 'a');
      await store.set(`${ns}k`, 'b');
      expect(await store.get(`${ns}k`)).toBe('b');
      expect(await store.delete(`${ns}k`)).toBe(true);
      expect(await store.delete(`${ns}k`)).toBe(false);
      expect(await store.get(`${ns}k`)).toBeNull();
    });

    it('expires a key after its TTL, and a plain set clears the TTL', async () => {
      await store.set(`${ns}short`, 'x', { ttlMs: 100 });
      await store.set(`${ns}kept`, 'y', { ttlMs: 100 });
      await store.set(`${ns}kept`, 'y2');
      await store.set(`${ns}long`, 'z', { ttlMs: 60_000 });
      expect(await store.get(`${ns}short`)).toBe('x');
      await harness.advanceTime(250);
      expect(await store.get(`${ns}short`)).toBeNull();
      expect(await store.get(`${ns}kept`)).toBe('y2');
      expect(await store.get(`${ns}long`)).toBe('z');
      expect((await store.scan(ns)).map((e) => e.key)).toEqual([`${ns}kept`, `${ns}long`]);
      expect(await store.delete(`${ns}short`)).toBe(false);
    });

    it('compare-and-set: creates only when absent, replaces only the expected value', async () => {
      const key = `${ns}cas`;
      expect(await store.compareAndSet(key, null, 'v1')).toBe(true);
      expect(await store.compareAndSet(key, null, 'other')).toBe(false);
      expect(await store.compareAndSet(key, 'wrong', 'v2')).toBe(false);
      expect(await store.get(key)).toBe('v1');
      expect(await store.compareAndSet(key, 'v1', 'v2')).toBe(true);
      expect(await store.get(key)).toBe('v2');
      expect(await store.compareAndSet(key, 'v2', null)).toBe(true);
      expect(await store.get(key)).toBeNull();
    });

    it('compare-and-set compares bytes by content and honours its TTL', async () => {
      const key = `${ns}casb`;
      await store.set(key, new Uint8Array([1, 2, 3]));
      expect(await store.compareAndSet(key, 'not bytes', 'x')).toBe(false);
      expect(await store.compareAndSet(key, new Uint8Array([1, 2, 4]), 'x')).toBe(false);
      expect(await store.compareAndSet(key, new Uint8Array([1, 2, 3]), 'x', { ttlMs: 100 })).toBe(
        true,
      );
      await harness.advanceTime(250);
      expect(await store.get(key)).toBeNull();
    });

    it('lets exactly one of two interleaved compare-and-sets win', async () => {
      const key = `${ns}race`;
      await store.set(key, '0');
      const results = await Promise.all([
        store.compareAndSet(key, '0', 'a'),
        store.compareAndSet(key, '0', 'b'),
      ]);
      expect(results.filter(Boolean).length).toBe(1);
      expect(await store.get(key)).toBe(results[0] ? 'a' : 'b');
    });

    it('counts correctly with 25 concurrent compare-and-set incrementers', async () => {
      const key = `${ns}counter`;
      await store.set(key, '0');
      const increment = async (): Promise<void> => {
        for (let attempt = 0; attempt < 200; attempt++) {
          const current = (await store.get(key)) as string;
          if (await store.compareAndSet(key, current, String(Number(current) + 1))) return;
        }
        throw new Error('incrementer gave up after 200 attempts');
      };
      await Promise.all(Array.from({ length: 25 }, increment));
      expect(await store.get(key)).toBe('25');
    });

    it('scans by prefix in key order, literally (no glob), with a limit', async () => {
      await store.set(`${ns}room:b`, '2');
      await store.set(`${ns}room:a`, '1');
      await store.set(`${ns}room*:c`, 'glob');
      await store.set(`${ns}room?x`, 'glob2');
      await store.set(`${ns}roomy`, 'no');
      await store.set(`${ns}other`, 'no');
      const rooms = await store.scan(`${ns}room:`);
      expect(rooms).toEqual([
        { key: `${ns}room:a`, value: '1' },
        { key: `${ns}room:b`, value: '2' },
      ]);
      expect((await store.scan(`${ns}room*`)).map((e) => e.key)).toEqual([`${ns}room*:c`]);
      expect((await store.scan(`${ns}room`, { limit: 2 })).length).toBe(2);
      expect(await store.scan(`${ns}nothing-here`)).toEqual([]);
    });

    it('rejects bad arguments with INVALID_ARGUMENT', async () => {
      const expectCode = async (call: () => Promise<unknown>) => {
        let caught: unknown;
        try {
          await call();
        } catch (error) {
          caught = error;
        }
        expect(isTickwireError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      };
      await expectCode(() => store.set('', 'x'));
      await expectCode(() => store.set(`${ns}k`, 'x', { ttlMs: -5 }));
      await expectCode(() => store.set(`${ns}k`, 'x', { ttlMs: Number.NaN }));
      await expectCode(() => store.set(`${ns}k`, 42 as unknown as StoreValue));
      expect(await store.get(`${ns}k`)).toBeNull();
    });

    it('rejects calls after close() with CLOSED', async () => {
      await store.close();
      let caught: unknown;
      try {
        await store.get(`${ns}k`);
      } catch (error) {
        caught = error;
      }
      expect(isTickwireError(caught, ErrorCode.CLOSED)).toBe(true);
      // A fresh store for afterEach's cleanup.
      harness = await factory();
      store = harness.store;
    });
  });
}
