import { describe, expect, it } from 'vitest';
import { REPLAY_WINDOW, ReplayWindow } from './replay.js';

describe('ReplayWindow', () => {
  it('accepts each nonce once, in any order inside the window', () => {
    const window = new ReplayWindow();
    for (const nonce of [5, 1, 3, 2, 4]) {
      expect(window.isReplayed(nonce)).toBe(false);
      window.accept(nonce);
      expect(window.isReplayed(nonce)).toBe(true);
    }
    expect(window.newest).toBe(5);
  });

  it('rejects nonces that fell out of the 256-entry window', () => {
    const window = new ReplayWindow();
    window.accept(1_000);
    expect(window.isReplayed(1_000 - REPLAY_WINDOW)).toBe(true);
    expect(window.isReplayed(1_000 - REPLAY_WINDOW + 1)).toBe(false);
    expect(window.isReplayed(0)).toBe(true);
  });

  it('does not confuse nonces that share a slot', () => {
    const window = new ReplayWindow();
    window.accept(7);
    expect(window.isReplayed(7 + REPLAY_WINDOW)).toBe(false);
    window.accept(7 + REPLAY_WINDOW);
    expect(window.isReplayed(7 + REPLAY_WINDOW)).toBe(true);
    expect(window.isReplayed(7)).toBe(true);
  });

  it('handles nonces beyond 2^32', () => {
    const window = new ReplayWindow();
    const big = 2 ** 40 + 3;
    expect(window.isReplayed(big)).toBe(false);
    window.accept(big);
    expect(window.isReplayed(big)).toBe(true);
    expect(window.isReplayed(big + 1)).toBe(false);
  });
});
