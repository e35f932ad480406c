import { ErrorCode, TickwireError } from '@tickwire/core';

/** One NTP-style exchange: t0/t3 on the local clock, t1/t2 on the server clock (ms). */
export interface TimeSample {
  /** Local time the request left. */
  t0: number;
  /** Server time the request arrived. */
  t1: number;
  /** Server time the response left. */
  t2: number;
  /** Local time the response arrived. */
  t3: number;
}

/** What the estimator concludes from a window of samples. */
export interface Estimate {
  /** Server minus local time at local time `referenceMs`. */
  offsetMs: number;
  /** Local time the offset refers to (the newest sample's receive time). */
  referenceMs: number;
  /** Rate of change of the offset per local ms (−50e-6 when the local clock runs 50 ppm fast). */
  slope: number;
  /** Half-width of the interval every sample allows for the offset: the hard bound. */
  confidenceMs: number;
  /** Weight of the midrange (0: lower edges only, 1: full midrange) the shape test chose. */
  midrangeWeight: number;
}

/** Tuning of {@link estimate}. */
export interface EstimatorOptions {
  /** Largest drift searched, as a fraction (500e-6 = 500 ppm). */
  maxSlope: number;
  /** Drift is fitted only over a window spanning at least this many local ms. */
  minDriftSpanMs: number;
  /** Slope to use when the window is too short to fit one. */
  fallbackSlope: number;
  /** A slope fitted elsewhere (over a longer history); skips the fit over this window. */
  slope?: number;
}

// Lower-edge vs midrange choice: ratio of the k widest top spacings to the k bottom ones.
const SHAPE_SPACINGS = 3;
const SHAPE_UNIFORM_BELOW = 1.5;
const SHAPE_SKEWED_ABOVE = 2.5;

/** A one-way difference (`v`) at a local time (`t`). */
export interface Point {
  t: number;
  v: number;
}

const cross = (o: Point, a: Point, b: Point): number =>
  (a.t - o.t) * (b.v - o.v) - (a.v - o.v) * (b.t - o.t);

/** Andrew's monotone chain: the lower hull (`lower`) or upper hull of points sorted by t. */
export function hull(points: readonly Point[], lower: boolean): Point[] {
  const out: Point[] = [];
  for (const p of points) {
    while (out.length >= 2) {
      const turn = cross(out[out.length - 2]!, out[out.length - 1]!, p);
      if (lower ? turn <= 0 : turn >= 0) out.pop();
      else break;
    }
    out.push(p);
  }
  return out;
}

/**
 * Drift fit: the slope r maximising [min(a − r·t) − max(b − r·t)] − w·[max(a − r·t) − min(b − r·t)].
 * With w = 0 it is the max-margin fit (the linear-programming skew estimate of Moon, Skelly
 * and Towsley): the widest band separating the upward one-way differences (`up`, a) from the
 * downward ones (`down`, b), which trusts only the fastest packets (queueing delay). With
 * w = 1 it minimises the summed ranges of both directions (a Chebyshev fit of all four edges,
 * the efficient fit for delays bounded both sides). Concave and piecewise linear, so its
 * maximum is at a hull edge slope or a bound of the search range.
 */
export function fitSlope(
  up: readonly Point[],
  down: readonly Point[],
  maxSlope: number,
  weight = 0,
): number {
  const hulls = [hull(up, true), hull(down, false)];
  if (weight > 0) hulls.push(hull(up, false), hull(down, true));
  const extreme = (h: Point[], r: number, sign: number): number => {
    let out = Number.NEGATIVE_INFINITY;
    for (const p of h) out = Math.max(out, sign * (p.v - r * p.t));
    return out;
  };
  // min a − max b − w·(max a − min b), each extreme taken over its hull.
  const score = (r: number): number =>
    -extreme(hulls[0]!, r, -1) -
    extreme(hulls[1]!, r, 1) -
    (weight > 0 ? weight * (extreme(hulls[2]!, r, 1) + extreme(hulls[3]!, r, -1)) : 0);
  const candidates = [-maxSlope, maxSlope, 0];
  for (const h of hulls) {
    for (let i = 1; i < h.length; i++) {
      const r = (h[i]!.v - h[i - 1]!.v) / (h[i]!.t - h[i - 1]!.t);
      if (r > -maxSlope && r < maxSlope) candidates.push(r);
    }
  }
  let best = 0;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (const r of candidates) {
    const w = score(r);
    // Ties (a flat top) go to the slope nearest zero: no evidence, no drift.
    if (
      w > bestScore + 1e-12 ||
      (Math.abs(w - bestScore) <= 1e-12 && Math.abs(r) < Math.abs(best))
    ) {
      best = r;
      bestScore = w;
    }
  }
  return best;
}

/** Min, max and the sums of the `k` lowest and `k` highest spacings of `values`. */
function edges(values: readonly number[], k: number) {
  const sorted = values.slice().sort((x, y) => x - y);
  const n = sorted.length;
  const j = Math.min(k, Math.floor((n - 1) / 2));
  return {
    min: sorted[0]!,
    max: sorted[n - 1]!,
    bottom: j > 0 ? sorted[j]! - sorted[0]! : 0,
    top: j > 0 ? sorted[n - 1]! - sorted[n - 1 - j]! : 0,
  };
}

/**
 * Estimates the offset from a window of samples (oldest first, at least one; none, or a
 * non-finite timestamp, throws INVALID_ARGUMENT).
 *
 * Each sample bounds the offset: t2 − t3 ≤ offset ≤ t1 − t0 (each side differs from it by one
 * one-way delay). After removing the fitted drift, the offset is the mean of a location of
 * the upward delays and of the downward ones: the midrange of each direction when the
 * delays look uniform (bounded both sides: the efficient estimate there), the lower edge
 * (the fastest packet) when they look skewed like queueing delay, blended in between.
 *
 * Every sample must be possible: t2 ≥ t1 and t2 − t1 ≤ t3 − t0 (the client rejects others).
 * An impossible one makes the bounds cross: `confidenceMs` comes out negative.
 */
export function estimate(samples: readonly TimeSample[], options: EstimatorOptions): Estimate {
  if (!Array.isArray(samples) || samples.length === 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'timesync: estimate needs at least one sample',
    );
  }
  for (const [i, s] of samples.entries()) {
    if (
      !(
        Number.isFinite(s?.t0) &&
        Number.isFinite(s.t1) &&
        Number.isFinite(s.t2) &&
        Number.isFinite(s.t3)
      )
    ) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `timesync: estimate: sample ${i} must have finite t0, t1, t2 and t3`,
        { details: { index: i } },
      );
    }
  }
  const { up, down, referenceMs } = directions(samples);
  if (options.slope !== undefined) return locate(up, down, referenceMs, options.slope);
  const span = Math.max(up[up.length - 1]!.t - up[0]!.t, down[down.length - 1]!.t - down[0]!.t);
  const fitted = samples.length >= 4 && span >= options.minDriftSpanMs;
  const first = locate(
    up,
    down,
    referenceMs,
    fitted ? fitSlope(up, down, options.maxSlope) : options.fallbackSlope,
  );
  // Uniform-looking delays: refit the drift on all four edges, weighted like the offset.
  return fitted && first.midrangeWeight > 0
    ? locate(up, down, referenceMs, fitSlope(up, down, options.maxSlope, first.midrangeWeight))
    : first;
}

/**
 * {@link estimate} with a known drift `slope`: what the client computes at each sample (it fits
 * the drift on its own history), without the fitting code that bundles would otherwise keep.
 */
export function estimateWithSlope(samples: readonly TimeSample[], slope: number): Estimate {
  const { up, down, referenceMs } = directions(samples);
  return locate(up, down, referenceMs, slope);
}

/** Each sample's one-way differences up and down, by time relative to the newest sample. */
function directions(samples: readonly TimeSample[]): {
  up: Point[];
  down: Point[];
  referenceMs: number;
} {
  const referenceMs = samples[samples.length - 1]!.t3;
  const up: Point[] = samples.map((s) => ({ t: s.t0 - referenceMs, v: s.t1 - s.t0 }));
  const down: Point[] = samples.map((s) => ({ t: s.t3 - referenceMs, v: s.t2 - s.t3 }));
  down.sort((x, y) => x.t - y.t);
  up.sort((x, y) => x.t - y.t);
  return { up, down, referenceMs };
}

/** The offset of `up` / `down` (relative to `referenceMs`) after removing drift `slope`. */
function locate(up: Point[], down: Point[], referenceMs: number, slope: number): Estimate {
  // Delay-like values: upward a − offset = delay up; downward offset − b = delay down.
  const delayUp = edges(
    up.map((p) => p.v - slope * p.t),
    SHAPE_SPACINGS,
  );
  const delayDown = edges(
    down.map((p) => -(p.v - slope * p.t)),
    SHAPE_SPACINGS,
  );
  const bottom = delayUp.bottom + delayDown.bottom;
  const top = delayUp.top + delayDown.top;
  let weight = 0;
  if (bottom > 0) {
    const ratio = top / bottom;
    weight = Math.min(
      1,
      Math.max(
        0,
        Math.log(SHAPE_SKEWED_ABOVE / ratio) / Math.log(SHAPE_SKEWED_ABOVE / SHAPE_UNIFORM_BELOW),
      ),
    );
  }
  const locationUp = delayUp.min + (weight * (delayUp.max - delayUp.min)) / 2;
  const locationDown = delayDown.min + (weight * (delayDown.max - delayDown.min)) / 2;
  const upperBound = delayUp.min;
  const lowerBound = -delayDown.min;
  const offset = Math.min(upperBound, Math.max(lowerBound, (locationUp - locationDown) / 2));
  return {
    offsetMs: offset,
    referenceMs,
    slope,
    confidenceMs: (upperBound - lowerBound) / 2,
    midrangeWeight: weight,
  };
}
