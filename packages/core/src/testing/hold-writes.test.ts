import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../memory/store.js';
import { holdWrites } from './hold-writes.js';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('holdWrites', () => {
  // readme.test.ts runs the README's race of two read-modify-writes.
  it('holds compare-and-set writes until release, and lets reads and later writes through', async () => {
    const held = holdWrites(createMemoryStore());
    held.hold();
    let done = false;
    const write = held.store.compareAndSet('k', null, 'a').then((ok) => {
      done = ok;
    });
    await flush();
    expect(held.waiting).toBe(1);
    expect(done).toBe(false);
    expect(await held.store.get('k')).toBeNull();
    held.release();
    await write;
    expect(done).toBe(true);
    expect(held.waiting).toBe(0);
    expect(await held.store.compareAndSet('k', 'a', 'b')).toBe(true);
    expect(await held.store.get('k')).toBe('b');
  });
});
