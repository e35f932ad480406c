import { ErrorCode, TickwireError } from './errors.js';

/** A source of uniform random numbers in [0, 1). Packages take one so runs can repeat. */
export interface Random {
  /** A uniform float in [0, 1). */
  next(): number;
}

/** A seeded, repeatable generator with helpers. */
export interface SeededRandom extends Random {
  /** A uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
  /** A uniform float in [min, max). */
  range(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** An exponentially distributed float with the given mean. */
  exponential(mean: number): number;
  /** A normally distributed float (Box–Muller). */
  normal(mean: number, stdDev: number): number;
  /** An independent generator seeded from this one. */
  fork(): SeededRandom;
  /** The internal state, to save and restore a position in the sequence. */
  getState(): readonly [number, number, number, number];
  /** Restores a state returned by `getState`. */
  setState(state: readonly [number, number, number, number]): void;
}

// splitmix32 expands one seed into well-mixed state words.
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A seeded generator (sfc32, seeded through splitmix32): fast, 128-bit state, repeatable. */
export function createRandom(seed: number): SeededRandom {
  if (!Number.isFinite(seed)) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `seed must be a finite number, got ${seed}`,
    );
  }
  const mix = splitmix32(Math.trunc(seed));
  let a = mix();
  let b = mix();
  let c = mix();
  let d = mix();

  const nextUint32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  const next = (): number => nextUint32() / 4294967296;

  const rng: SeededRandom = {
    next,
    int(maxExclusive) {
      if (!Number.isInteger(maxExclusive) || maxExclusive <= 0) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `maxExclusive must be a positive integer, got ${maxExclusive}`,
        );
      }
      return Math.floor(next() * maxExclusive);
    },
    range: (min, max) => min + (max - min) * next(),
    chance: (p) => p > 0 && next() < p,
    exponential: (mean) => -mean * Math.log(1 - next()),
    normal(mean, stdDev) {
      const u = 1 - next();
      const v = next();
      return mean + stdDev * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    fork: () => createRandom(nextUint32()),
    getState: () => [a, b, c, d] as const,
    setState(state) {
      [a, b, c, d] = state.map((word) => word >>> 0) as [number, number, number, number];
    },
  };
  return rng;
}

/** `Math.random` as a {@link Random}: the default where repeatability is not needed. */
export const systemRandom: Random = { next: () => Math.random() };
