import { describe, expect, it } from 'vitest';
import { FragmentResult, Reassembler, type ReassemblerOptions } from './fragment.js';

const options: ReassemblerOptions = {
  maxMessages: 2,
  maxBytes: 1_000,
  maxMessageBytes: 800,
  maxFragments: 8,
  timeoutMs: 100,
  evictOldest: false,
};

const part = (value: number, length: number) => new Uint8Array(length).fill(value);

describe('Reassembler', () => {
  it('reassembles fragments arriving in any order, once', () => {
    const r = new Reassembler(options);
    expect(r.add(1, 2, 3, part(3, 10), 0)).toBe(FragmentResult.Pending);
    expect(r.add(1, 0, 3, part(1, 100), 0)).toBe(FragmentResult.Pending);
    expect(r.add(1, 0, 3, part(1, 100), 0)).toBe(FragmentResult.Duplicate);
    expect(r.bytes).toBe(110);
    expect(r.add(1, 1, 3, part(2, 100), 0)).toBe(FragmentResult.Complete);
    expect(r.message.length).toBe(210);
    expect([r.message[0], r.message[100], r.message[209]]).toEqual([1, 2, 3]);
    expect(r.size).toBe(0);
    expect(r.bytes).toBe(0);
  });

  it('refuses new messages over the count limit and fragments over the byte limit', () => {
    const r = new Reassembler(options);
    expect(r.add(1, 0, 2, part(1, 400), 0)).toBe(FragmentResult.Pending);
    expect(r.add(2, 0, 2, part(1, 400), 0)).toBe(FragmentResult.Pending);
    expect(r.add(3, 0, 2, part(1, 10), 0)).toBe(FragmentResult.Refused);
    expect(r.add(1, 1, 2, part(1, 300), 0)).toBe(FragmentResult.Refused); // 1,100 > 1,000 bytes
    expect(r.has(3)).toBe(false);
    // The limits can be bypassed for a reliable receiver's next expected message.
    expect(r.add(3, 0, 2, part(1, 10), 0, true)).toBe(FragmentResult.Pending);
  });

  it('evicts the oldest incomplete message when configured to', () => {
    const r = new Reassembler({ ...options, evictOldest: true });
    r.add(1, 0, 2, part(1, 400), 0);
    r.add(2, 0, 2, part(1, 400), 1);
    expect(r.add(3, 0, 2, part(1, 400), 2)).toBe(FragmentResult.Pending);
    expect(r.has(1)).toBe(false);
    expect(r.has(2)).toBe(true);
    expect(r.dropped).toBe(1);
  });

  it('times incomplete messages out', () => {
    const r = new Reassembler(options);
    r.add(1, 0, 2, part(1, 10), 0);
    r.add(2, 0, 2, part(1, 10), 50);
    expect(r.expire(99)).toBe(0);
    expect(r.expire(100)).toBe(1);
    expect(r.has(1)).toBe(false);
    expect(r.expire(150)).toBe(1);
    expect(r.size).toBe(0);
    expect(r.bytes).toBe(0);
  });

  it('drops inconsistent and oversized messages', () => {
    const r = new Reassembler(options);
    r.add(1, 0, 3, part(1, 10), 0);
    expect(r.add(1, 1, 4, part(1, 10), 0)).toBe(FragmentResult.Invalid);
    expect(r.has(1)).toBe(false);
    expect(r.add(2, 5, 3, part(1, 10), 0)).toBe(FragmentResult.Invalid);
    expect(r.add(2, 0, 9, part(1, 10), 0)).toBe(FragmentResult.Invalid);
    expect(r.add(2, 0, 1, part(1, 10), 0)).toBe(FragmentResult.Invalid);
    r.add(4, 0, 3, part(1, 500), 0);
    expect(r.add(4, 1, 3, part(1, 400), 0, true)).toBe(FragmentResult.TooLarge);
    expect(r.bytes).toBe(0);
  });
});
