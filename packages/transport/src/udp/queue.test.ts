import { describe, expect, it } from 'vitest';
import { ByteQueue, StampedQueue } from './queue.js';

describe('StampedQueue', () => {
  it('keeps FIFO order and stamps across growth and wrap-around', () => {
    const queue = new StampedQueue<string>(2);
    queue.push('a', 1);
    queue.push('b', 2);
    expect(queue.shift()).toBe('a');
    for (let i = 0; i < 10; i++) queue.push(`x${i}`, 10 + i);
    expect(queue.size).toBe(11);
    expect([queue.peek(), queue.peekStamp()]).toEqual(['b', 2]);
    const out: string[] = [];
    while (queue.size > 0) out.push(queue.shift()!);
    expect(out).toEqual(['b', ...Array.from({ length: 10 }, (_, i) => `x${i}`)]);
    expect(queue.shift()).toBeUndefined();
    expect(queue.peekStamp()).toBeNaN();
  });
});

describe('ByteQueue', () => {
  it('appends and consumes bytes, compacting and growing as needed', () => {
    const queue = new ByteQueue(8);
    let at = queue.reserve(6);
    queue.buffer.set([1, 2, 3, 4, 5, 6], at);
    queue.commit(6);
    queue.consume(4);
    at = queue.reserve(5); // compacts or grows: the 2 unread bytes must survive
    queue.buffer.set([7, 8, 9, 10, 11], at);
    queue.commit(5);
    expect(queue.length).toBe(7);
    expect([...queue.buffer.subarray(queue.readOffset, queue.writeOffset)]).toEqual([
      5, 6, 7, 8, 9, 10, 11,
    ]);
    queue.consume(7);
    expect(queue.length).toBe(0);
    expect(queue.readOffset).toBe(0);
  });
});
