import { describe, expect, it, vi } from 'vitest';
import { MAX_REPORTED_ERRORS, startFrameLoop } from './frame-loop.js';

/** A fake display: `step()` runs the frame requested last. */
function display() {
  let pending: ((now: number) => void) | null = null;
  let now = 0;
  return {
    requestFrame: (callback: (now: number) => void) => {
      pending = callback;
    },
    step() {
      const callback = pending;
      pending = null;
      now += 16;
      callback?.(now);
    },
    get armed() {
      return pending !== null;
    },
  };
}

describe('frame loop', () => {
  it('calls the frame on every display frame with its time', () => {
    const screen = display();
    const frame = vi.fn();
    startFrameLoop(frame, { requestFrame: screen.requestFrame, onError: () => {} });
    for (let i = 0; i < 3; i++) screen.step();
    expect(frame.mock.calls).toEqual([[16], [32], [48]]);
    expect(screen.armed).toBe(true);
  });

  it('survives a throwing frame and reports the error once, not every frame', () => {
    const screen = display();
    const onError = vi.fn();
    let calls = 0;
    startFrameLoop(
      () => {
        calls++;
        if (calls >= 2 && calls <= 5) throw new Error('broken frame');
      },
      { requestFrame: screen.requestFrame, onError },
    );
    for (let i = 0; i < 8; i++) screen.step();
    expect(calls).toBe(8);
    expect(screen.armed).toBe(true);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError).toHaveBeenCalledWith(new Error('broken frame'));
  });

  it('reports each distinct error once, and at most MAX_REPORTED_ERRORS of them', () => {
    const screen = display();
    const onError = vi.fn();
    let calls = 0;
    startFrameLoop(
      () => {
        calls++;
        throw new Error(`error ${calls % (MAX_REPORTED_ERRORS + 5)}`);
      },
      { requestFrame: screen.requestFrame, onError },
    );
    for (let i = 0; i < 100; i++) screen.step();
    expect(calls).toBe(100);
    expect(onError).toHaveBeenCalledTimes(MAX_REPORTED_ERRORS);
  });
});
