import { ErrorCode, type Random, TickwireError } from '@tickwire/core';

/** How reconnection attempts are spaced. */
export interface BackoffOptions {
  /** Delay before the first attempt, in ms. @default 250 */
  initialDelayMs?: number;
  /** Largest delay, in ms. @default 5000 */
  maxDelayMs?: number;
  /** Each attempt's base delay is the previous one's times this. @default 2 */
  multiplier?: number;
  /**
   * Fraction of each delay that is random: the delay is `base × (1 − jitter × r)` with r
   * uniform in [0, 1), so clients cut off together do not come back together.
   * @default 0.5
   */
  jitter?: number;
}

/** A backoff schedule: `delayMs(attempt)` for attempt 0, 1, 2… */
export interface Backoff {
  delayMs(attempt: number): number;
}

function check(name: string, value: number, min: number, max = Number.POSITIVE_INFINITY): number {
  if (!Number.isFinite(value) || value < min || value > max)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `reconnect.${name} must be a number in [${min}, ${max}], got ${value}`,
    );
  return value;
}

/** Exponential backoff with jitter, drawing from `random` (seed it in tests). */
export function createBackoff(options: BackoffOptions, random: Random): Backoff {
  const initial = check('initialDelayMs', options.initialDelayMs ?? 250, 0);
  const max = check('maxDelayMs', options.maxDelayMs ?? 5000, initial);
  const multiplier = check('multiplier', options.multiplier ?? 2, 1);
  const jitter = check('jitter', options.jitter ?? 0.5, 0, 1);
  return {
    delayMs(attempt) {
      // || 0: a zero initial delay times an overflowing power is NaN.
      const base = Math.min(max, initial * multiplier ** Math.min(attempt, 64)) || 0;
      return Math.round(base * (1 - jitter * random.next()));
    },
  };
}
