import { describe, expect, it } from 'vitest';
import { Emitter, ListenerList, subscribableWith } from './emitter.js';
import { catchMicrotaskErrors } from './testing/wait.js';

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

  it('isolates a throwing listener: the others run, emit returns, the error is reported', () => {
    const reported: [unknown, string][] = [];
    const emitter = new Emitter<Events>({
      onListenerError: (error, event) => reported.push([error, event]),
    });
    const calls: string[] = [];
    emitter.on('done', () => {
      throw new Error('listener bug');
    });
    emitter.on('done', () => calls.push('second'));
    expect(emitter.emit('done')).toBe(true);
    expect(calls).toEqual(['second']);
    expect(reported).toHaveLength(1);
    expect((reported[0]![0] as Error).message).toBe('listener bug');
    expect(reported[0]![1]).toBe('done');
  });

  it('rethrows a listener error in a microtask by default', async () => {
    const emitter = new Emitter<Events>();
    emitter.on('done', () => {
      throw new Error('surfaced');
    });
    const original = globalThis.queueMicrotask;
    const scheduled: (() => void)[] = [];
    globalThis.queueMicrotask = (task) => {
      scheduled.push(task);
    };
    try {
      emitter.emit('done');
    } finally {
      globalThis.queueMicrotask = original;
    }
    expect(scheduled).toHaveLength(1);
    expect(() => scheduled[0]!()).toThrow('surfaced');
  });

  it('runs a once() listener once even when an earlier listener re-emits the event', () => {
    const emitter = new Emitter<Events>();
    let depth = 0;
    const seen: number[] = [];
    emitter.on('data', (value) => {
      if (depth++ === 0) emitter.emit('data', value + 1, '');
    });
    emitter.once('data', (value) => seen.push(value));
    emitter.emit('data', 1, '');
    expect(seen).toEqual([2]);
  });
});

describe('ListenerList', () => {
  const deliver = (list: ListenerList<[number]>, value: number) => {
    const items = list.items;
    for (let i = 0; i < items.length; i++) {
      try {
        items[i]!(value);
      } catch (error) {
        list.report(error);
      }
    }
  };

  it('replaces its items on every change, so a delivery keeps the listeners it started with', () => {
    const list = new ListenerList<[number]>();
    const calls: string[] = [];
    const late = (value: number) => calls.push(`late:${value}`);
    list.add((value) => {
      calls.push(`first:${value}`);
      list.add(late);
    });
    const before = list.items;
    deliver(list, 1);
    expect(calls).toEqual(['first:1']);
    expect(before).toHaveLength(1);
    expect(list.items).toHaveLength(2);
    deliver(list, 2);
    expect(calls).toEqual(['first:1', 'first:2', 'late:2']);
  });

  it('runs a once listener once, also when a nested delivery reaches it first', () => {
    const list = new ListenerList<[number]>();
    const seen: number[] = [];
    list.add((value) => {
      if (value === 1) deliver(list, 2);
    });
    list.once((value) => seen.push(value));
    deliver(list, 1);
    deliver(list, 3);
    expect(seen).toEqual([2]);
    expect(list.items).toHaveLength(1);
  });

  it('removes a once listener by the function given, and through the returned function', () => {
    const list = new ListenerList<[number]>();
    const seen: number[] = [];
    const listener = (value: number) => seen.push(value);
    list.once(listener);
    list.remove(listener);
    const remove = list.add(listener);
    remove();
    list.remove(listener); // not there: nothing happens
    deliver(list, 1);
    expect(seen).toEqual([]);
    expect(list.items).toHaveLength(0);
  });

  it('hands what a listener throws to its error handler, and the others still run', () => {
    const errors: unknown[] = [];
    const list = new ListenerList<[number]>((error) => errors.push(error));
    const seen: number[] = [];
    list.add(() => {
      throw new Error('boom');
    });
    list.add((value) => seen.push(value));
    deliver(list, 7);
    expect(seen).toEqual([7]);
    expect(errors).toEqual([new Error('boom')]);
  });
});

describe('subscribableWith', () => {
  it('routes one event to a ListenerList and the others to the emitter', () => {
    const emitter = new Emitter<Events>();
    const list = new ListenerList<Events['data']>();
    const api = subscribableWith(emitter, 'data', list);
    const calls: string[] = [];
    const onData = (value: number) => calls.push(`data:${value}`);
    api.on('data', onData);
    api.once('data', (value) => calls.push(`once:${value}`));
    const offDone = api.on('done', () => calls.push('done'));
    expect(list.items).toHaveLength(2);
    expect(emitter.listenerCount('data')).toBe(0);
    for (const listener of list.items) listener(1, 'x');
    emitter.emit('done');
    api.off('data', onData);
    offDone();
    expect(list.items).toHaveLength(0);
    expect(emitter.emit('done')).toBe(false);
    expect(calls).toEqual(['data:1', 'once:1', 'done']);
  });
});

describe('catchMicrotaskErrors', () => {
  it('keeps what a listener throws, which the emitter would rethrow as an uncaught error', async () => {
    const emitter = new Emitter<Events>();
    const failure = new Error('listener bug');
    const seen: number[] = [];
    emitter.on('data', () => {
      throw failure;
    });
    emitter.on('data', (value) => seen.push(value));
    const caught = catchMicrotaskErrors();
    try {
      emitter.emit('data', 1, 'x');
      await Promise.resolve();
      await Promise.resolve();
    } finally {
      caught.restore();
    }
    expect(seen).toEqual([1]);
    expect(caught.thrown).toEqual([failure]);
    // Restored: queueMicrotask is the runtime's own again.
    const ran = await new Promise<boolean>((resolve) => queueMicrotask(() => resolve(true)));
    expect(ran).toBe(true);
  });
});
