import { describe, expect, it } from 'vitest';
import { createManualTime, createSystemTime, MAX_HOST_TIMER_MS, systemTime } from './clock.js';
import { ErrorCode } from './errors.js';

describe('manual time', () => {
  it('only moves when told to', () => {
    const time = createManualTime(1000);
    expect(time.now()).toBe(1000);
    time.advance(250);
    expect(time.now()).toBe(1250);
    time.advanceTo(1200);
    expect(time.now()).toBe(1250);
  });

  it('runs timers in due order, ties in the order they were set', () => {
    const time = createManualTime();
    const order: string[] = [];
    time.setTimeout(() => order.push(`c@${time.now()}`), 30);
    time.setTimeout(() => order.push(`a@${time.now()}`), 10);
    time.setTimeout(() => order.push(`b1@${time.now()}`), 20);
    time.setTimeout(() => order.push(`b2@${time.now()}`), 20);
    time.setTimeout(() => order.push(`zero@${time.now()}`), 0);
    time.advance(25);
    expect(order).toEqual(['zero@0', 'a@10', 'b1@20', 'b2@20']);
    expect(time.now()).toBe(25);
    time.advance(5);
    expect(order.at(-1)).toBe('c@30');
  });

  it('runs a timer set during an advance in the same advance if it falls due', () => {
    const time = createManualTime();
    const order: string[] = [];
    time.setTimeout(() => {
      order.push('outer');
      time.setTimeout(() => order.push(`inner@${time.now()}`), 5);
      time.setTimeout(() => order.push('too-late'), 50);
    }, 10);
    time.advance(20);
    expect(order).toEqual(['outer', 'inner@15']);
    expect(time.pending).toBe(1);
  });

  it('repeats intervals and stops them on cancel, even from inside the callback', () => {
    const time = createManualTime();
    const ticks: number[] = [];
    const timer = time.setInterval(() => {
      ticks.push(time.now());
      if (ticks.length === 3) timer.cancel();
    }, 100);
    time.advance(1000);
    expect(ticks).toEqual([100, 200, 300]);
    expect(time.pending).toBe(0);
  });

  it('interleaves intervals and timeouts by due time', () => {
    const time = createManualTime();
    const order: string[] = [];
    const interval = time.setInterval(() => order.push(`i${time.now()}`), 10);
    time.setTimeout(() => order.push(`t${time.now()}`), 15);
    time.setTimeout(() => order.push(`t${time.now()}`), 20);
    time.advance(30);
    interval.cancel();
    // At 20 the timeout was set (at 0) before the interval re-armed itself (at 10): it runs first.
    expect(order).toEqual(['i10', 't15', 't20', 'i20', 'i30']);
  });

  it('does not run cancelled timers; cancel is idempotent', () => {
    const time = createManualTime();
    let ran = false;
    const timer = time.setTimeout(() => {
      ran = true;
    }, 5);
    timer.cancel();
    timer.cancel();
    time.advance(10);
    expect(ran).toBe(false);
  });

  it('runNext jumps to the next timer; runAll drains with a bound', () => {
    const time = createManualTime();
    const seen: number[] = [];
    time.setTimeout(() => seen.push(time.now()), 40);
    time.setTimeout(() => seen.push(time.now()), 70);
    expect(time.runNext()).toBe(true);
    expect(seen).toEqual([40]);
    expect(time.now()).toBe(40);
    expect(time.runAll()).toBe(1);
    expect(seen).toEqual([40, 70]);
    expect(time.runNext()).toBe(false);
    time.setInterval(() => {}, 1);
    expect(time.runAll(50)).toBe(50);
  });

  it('keeps order over many random timers (heap property)', () => {
    const time = createManualTime();
    const fired: number[] = [];
    let x = 12345;
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const delay = x % 1000;
      time.setTimeout(() => fired.push(delay), delay);
    }
    time.advance(1000);
    expect(fired.length).toBe(2000);
    for (let i = 1; i < fired.length; i++) expect(fired[i]!).toBeGreaterThanOrEqual(fired[i - 1]!);
  });

  it('rejects negative or non-finite delays with INVALID_ARGUMENT', () => {
    const time = createManualTime();
    expect(() => time.setTimeout(() => {}, -1)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => time.setTimeout(() => {}, Number.NaN)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => time.setInterval(() => {}, 0)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => time.advance(-5)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => time.advanceTo(Number.POSITIVE_INFINITY)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});

describe('manual time guards', () => {
  it('throws INTERNAL instead of hanging on a timer that re-arms itself with no delay', () => {
    const time = createManualTime();
    const rearm = () => time.setTimeout(rearm, 0);
    rearm();
    expect(() => time.advance(1)).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
  });
});

describe('system time', () => {
  it('chains timers longer than the host maximum instead of firing them at once', () => {
    const calls: number[] = [];
    const original = globalThis.setTimeout;
    const scheduled: { fn: () => void; ms: number }[] = [];
    globalThis.setTimeout = ((fn: () => void, ms: number) => {
      scheduled.push({ fn, ms });
      calls.push(ms);
      return 0 as unknown as ReturnType<typeof setTimeout>;
    }) as typeof setTimeout;
    try {
      createSystemTime().setTimeout(() => calls.push(-1), 2 ** 33);
      expect(scheduled[0]!.ms).toBe(MAX_HOST_TIMER_MS);
      scheduled[0]!.fn();
      expect(scheduled[1]!.ms).toBeLessThanOrEqual(MAX_HOST_TIMER_MS);
      expect(calls).not.toContain(-1);
    } finally {
      globalThis.setTimeout = original;
    }
    expect(() => createSystemTime().setInterval(() => {}, 2 ** 32)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('is monotonic and fires real timers', async () => {
    const a = systemTime.now();
    const fired = await new Promise<number>((resolve) => {
      systemTime.setTimeout(() => resolve(systemTime.now()), 5);
    });
    expect(fired).toBeGreaterThanOrEqual(a + 4);
  });

  it('runs and cancels intervals; unref timers do not hold the process', async () => {
    const time = createSystemTime({ unref: true });
    let count = 0;
    await new Promise<void>((resolve) => {
      const timer = time.setInterval(() => {
        count++;
        if (count === 3) {
          timer.cancel();
          resolve();
        }
      }, 1);
    });
    const cancelled = time.setTimeout(() => {
      count = 100;
    }, 1);
    cancelled.cancel();
    // Timers fire in due order: once a later one ran, the cancelled one would have run too.
    await new Promise<void>((resolve) => time.setTimeout(resolve, 5));
    expect(count).toBe(3);
    expect(() => time.setInterval(() => {}, -1)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});
