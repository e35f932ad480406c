import { describe, expect, it } from 'vitest';
import { Emitter } from './emitter.js';

type Events = { [e: string]: unknown[]; data: [value: number, label: string]; done: [] };

describe('Emitter', () => {
  it('calls listeners in the order added, with typed arguments', () => {
    const emitter = new Emitter<Events>();
    const calls: string[] = [];
    emitter.on('data', (value, label) => calls.push(`a:${value}:${label}`));
    emitter.on('data', (value) => calls.push(`b:${value}`));
    expect(emitter.emit('data', 1, 'x')).toBe(true);
    expect(calls).toEqual(['a:1:x', 'b:1']);
    expect(emitter.emit('done')).toBe(false);
  });

  it('removes listeners through the returned function and off()', () => {
    const emitter = new Emitter<Events>();
    const seen: number[] = [];
    const listener = (value: number) => seen.push(value);
    const off = emitter.on('data', listener);
    emitter.emit('data', 1, '');
    off();
    emitter.emit('data', 2, '');
    emitter.on('data', listener);
    emitter.off('data', listener);
    emitter.off('data', listener);
    emitter.off('done', () => {});
    emitter.emit('data', 3, '');
    expect(seen).toEqual([1]);
    expect(emitter.listenerCount('data')).toBe(0);
  });

  it('runs once() listeners once, and off() removes them before they run', () => {
    const emitter = new Emitter<Events>();
    const seen: number[] = [];
    emitter.once('data', (value) => seen.push(value));
    emitter.emit('data', 1, '');
    emitter.emit('data', 2, '');
    const listener = (value: number) => seen.push(value * 10);
    emitter.once('data', listener);
    emitter.off('data', listener);
    emitter.emit('data', 3, '');
    expect(seen).toEqual([1]);
  });

  it('calls exactly the listeners present when emit started', () => {
    const emitter = new Emitter<Events>();
    const calls: string[] = [];
    const second = () => calls.push('second');
    emitter.on('data', () => {
      calls.push('first');
      emitter.off('data', second);
      emitter.on('data', () => calls.push('late'));
    });
    emitter.on('data', second);
    emitter.emit('data', 0, '');
    expect(calls).toEqual(['first', 'second']);
    calls.length = 0;
    emitter.emit('data', 0, '');
    expect(calls).toEqual(['first', 'late']);
  });

  it('removes all listeners of one event or of every event', () => {
    const emitter = new Emitter<Events>();
    emitter.on('data', () => {});
    emitter.on('done', () => {});
    emitter.removeAllListeners('data');
    expect(emitter.listenerCount('data')).toBe(0);
    expect(emitter.listenerCount('done')).toBe(1);
    emitter.removeAllListeners();
    expect(emitter.listenerCount('done')).toBe(0);
  });

  it('propagates a listener exception to the emitter', () => {
    const emitter = new Emitter<Events>();
    emitter.on('done', () => {
      throw new Error('listener bug');
    });
    expect(() => emitter.emit('done')).toThrow('listener bug');
  });
});
