import { Emitter, ErrorCode, type Subscribable, subscribable, TickwireError } from '@tickwire/core';

/** Visual smoothing of corrections: how a misprediction is hidden instead of drawn as a jump. */
export interface PredictionSmoothing<State> {
  /**
   * The coordinates to smooth (e.g. `[x, y]`); always the same count. Must not mutate `state`.
   * It may return the same array on every call: the coordinates are read before the next call.
   */
  position(state: State): readonly number[];
  /**
   * A copy of `state` moved by `offset` (one value per coordinate), to draw. Must not mutate
   * `state` nor keep `offset` (it is reused).
   */
  apply(state: State, offset: readonly number[]): State;
  /** Half-life of the visual error offset, ms: it halves every `decayMs` of rendered time. */
  decayMs: number;
  /** A visual offset longer than this is dropped: the drawn state jumps (teleport, respawn). */
  snapDistance: number;
  /** Most a correction moves the drawn position in one `render()` call, in position units. */
  maxCorrectionPerFrame: number;
}

/** Options of {@link createPrediction}. */
export interface PredictionOptions<State, Input> {
  /** The state before the first input (cloned). */
  initial: State;
  /**
   * The game's simulation step: the state `dt` ms after `state` under `input`. It must be pure
   * and deterministic (the server runs the same one) and return a new state, never mutate its
   * argument: reconciliation replays it from the authoritative state.
   */
  step(state: State, input: Input, dt: number): State;
  /**
   * Copies a state the prediction takes in (`initial`, each authoritative state), so a caller
   * reusing its objects cannot change the prediction behind its back. Give one for states
   * holding class instances or functions, which `structuredClone` does not copy faithfully.
   * @default structuredClone
   */
  clone?(state: State): State;
  /** The fixed step, ms (e.g. `1000 / 60`), passed to `step`. */
  dt: number;
  /**
   * Most inputs kept unacknowledged, at most 65536. Beyond it the oldest is dropped (counted in
   * `stats.dropped`): the game keeps running over a dead link, memory stays bounded, and a
   * dropped input the server never got is simply not replayed.
   * @default 256
   */
  maxPending?: number;
  /** Hide corrections behind a decaying visual offset; without it, `render()` draws the prediction. */
  smoothing?: PredictionSmoothing<State>;
}

/** An input waiting for the server's acknowledgement. */
export interface PendingInput<Input> {
  /** Its sequence number (1 for the first input, then +1 each). */
  readonly seq: number;
  readonly input: Input;
}

/** Counters of a {@link Prediction}. */
export interface PredictionStats {
  /** Inputs applied. */
  inputs: number;
  /** Authoritative updates reconciled. */
  reconciliations: number;
  /** Reconciliations that moved the predicted position (measured only with `smoothing`). */
  mispredictions: number;
  /** Largest misprediction distance, position units (0 if none). */
  maxError: number;
  /** Mean distance of the mispredictions, position units (0 if none). */
  meanError: number;
  /** Corrections drawn as a jump because the visual offset exceeded `snapDistance`. */
  snaps: number;
  /** Inputs dropped unacknowledged because `maxPending` was reached. */
  dropped: number;
}

/** A misprediction, as reported by the `misprediction` event. */
export interface MispredictionEvent {
  /** Distance between the position predicted before and after the reconciliation. */
  errorDistance: number;
  /** The `lastProcessedSeq` of the authoritative update that revealed it. */
  seq: number;
  /** True if the correction is drawn as a jump (visual offset beyond `snapDistance`). */
  snapped: boolean;
}

/** Events of a {@link Prediction}. */
export interface PredictionEvents {
  [event: string]: unknown[];
  /** A reconciliation moved the predicted position (only measured with `smoothing`). */
  misprediction: [event: MispredictionEvent];
}

/** Client-side prediction of one player's state, reconciled with the server's. */
export interface Prediction<State, Input> extends Subscribable<PredictionEvents> {
  /**
   * Applies `input` to the predicted state now and keeps it until acknowledged. Send the input
   * with the returned sequence number; the server reports the last one it processed.
   */
  input(input: Input): { seq: number };
  /**
   * Takes an authoritative state that includes every input up to `lastProcessedSeq` (0: none):
   * drops those inputs, resets to `authoritative` and replays the pending ones. Throws
   * INVALID_ARGUMENT for a sequence number never issued and INVALID_STATE for one older than
   * an update already reconciled (drop stale updates before, e.g. by server tick); on any
   * throw the prediction is left as it was.
   */
  reconcile(authoritative: State, lastProcessedSeq: number): void;
  /**
   * The most recent `max` pending inputs (default all), oldest first: send them with every
   * packet so that a lost packet's inputs arrive with the next ones.
   */
  unacked(max?: number): PendingInput<Input>[];
  /**
   * The state to draw: the prediction moved by the visual offset, after decaying that offset
   * over `frameMs` (the time since the last frame). Without smoothing, the prediction itself.
   */
  render(frameMs: number): State;
  /** The predicted (simulation) state; do not mutate it. */
  readonly state: State;
  /** Inputs not yet acknowledged. */
  readonly pending: number;
  /** The last `lastProcessedSeq` reconciled (0 before any). */
  readonly acked: number;
  /** The visual offset `render()` adds now, one value per coordinate (empty until measured). */
  readonly offset: readonly number[];
  /** Counters since creation. */
  readonly stats: Readonly<PredictionStats>;
}

/** The largest `maxPending` (its ring is allocated up front): 18 minutes of 60 Hz inputs. */
const MAX_PENDING_LIMIT = 65_536;

/** Offsets shorter than this are floating-point residue, not something to draw. */
const SETTLED_DISTANCE = 1e-6;

function invalid(message: string, details?: Record<string, unknown>): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, `prediction: ${message}`, { details });
}

function checkFunction(value: unknown, name: string): void {
  if (typeof value !== 'function') throw invalid(`${name} must be a function, got ${typeof value}`);
}

function checkPositive(value: number, name: string): void {
  // Infinity allowed: no snap, no per-frame cap.
  if (!(typeof value === 'number' && value > 0)) {
    throw invalid(`${name} must be a number > 0, got ${value}`);
  }
}

function checkOptions<State, Input>(options: PredictionOptions<State, Input>): void {
  checkFunction(options.step, 'step');
  if (options.clone !== undefined) checkFunction(options.clone, 'clone');
  if (!(typeof options.dt === 'number' && Number.isFinite(options.dt) && options.dt > 0)) {
    throw invalid(`dt must be a finite number of ms > 0, got ${options.dt}`);
  }
  const maxPending = options.maxPending;
  if (
    maxPending !== undefined &&
    !(Number.isInteger(maxPending) && maxPending >= 1 && maxPending <= MAX_PENDING_LIMIT)
  ) {
    throw invalid(`maxPending must be an integer in [1, ${MAX_PENDING_LIMIT}], got ${maxPending}`);
  }
  const smoothing = options.smoothing;
  if (smoothing !== undefined) {
    checkFunction(smoothing.position, 'smoothing.position');
    checkFunction(smoothing.apply, 'smoothing.apply');
    if (!(Number.isFinite(smoothing.decayMs) && smoothing.decayMs > 0)) {
      throw invalid(`smoothing.decayMs must be a finite number > 0, got ${smoothing.decayMs}`);
    }
    checkPositive(smoothing.snapDistance, 'smoothing.snapDistance');
    checkPositive(smoothing.maxCorrectionPerFrame, 'smoothing.maxCorrectionPerFrame');
  }
}

/**
 * Creates a client-side prediction (Gambetta's "client-side prediction and server
 * reconciliation"): inputs apply at once, and each authoritative update is replayed forward
 * with the inputs the server has not processed yet. Corrections can be hidden behind a visual
 * offset that decays exponentially, capped per frame, and snaps beyond a distance.
 */
export function createPrediction<State, Input>(
  options: PredictionOptions<State, Input>,
): Prediction<State, Input> {
  checkOptions(options);
  const { step, dt, smoothing } = options;
  const clone = options.clone ?? ((state: State) => structuredClone(state));
  const capacity = options.maxPending ?? 256;
  const emitter = new Emitter<PredictionEvents>();

  let state = clone(options.initial);
  // Pending inputs: a ring of `capacity` slots; their sequence numbers are consecutive.
  const ring: (Input | undefined)[] = new Array(capacity);
  let head = 0;
  let count = 0;
  let firstPendingSeq = 1;
  let lastIssuedSeq = 0;
  let ackedSeq = 0;
  // The visual offset, allocated at the first measured reconciliation.
  let offset: number[] = [];
  // The predicted position before a reconciliation, copied out of what `smoothing.position`
  // returned: a hook may return the same array on every call (sized once, then reused).
  const before: number[] = [];
  let offsetLength = 0;
  const stats: PredictionStats = {
    inputs: 0,
    reconciliations: 0,
    mispredictions: 0,
    maxError: 0,
    meanError: 0,
    snaps: 0,
    dropped: 0,
  };
  let errorSum = 0;

  const advance = (from: State, input: Input): State => {
    const next = step(from, input, dt);
    if (next === undefined) {
      throw new TickwireError(
        ErrorCode.INVALID_STATE,
        'prediction: step returned undefined; it must return the next state, not mutate its argument',
      );
    }
    return next;
  };

  const dropOldest = (n: number): void => {
    for (let i = 0; i < n; i++) {
      ring[head] = undefined;
      head = head + 1 === capacity ? 0 : head + 1;
    }
    count -= n;
    firstPendingSeq += n;
  };

  const positionOf = (of: State, expected: number): readonly number[] => {
    const coordinates = (smoothing as PredictionSmoothing<State>).position(of);
    if (expected >= 0 && coordinates.length !== expected) {
      throw new TickwireError(
        ErrorCode.INVALID_STATE,
        `prediction: smoothing.position returned ${coordinates.length} coordinates, expected ${expected}`,
      );
    }
    return coordinates;
  };

  return {
    ...subscribable(emitter),
    input(input) {
      const next = advance(state, input);
      state = next;
      if (count === capacity) {
        dropOldest(1);
        stats.dropped++;
      }
      let slot = head + count;
      if (slot >= capacity) slot -= capacity;
      ring[slot] = input;
      count++;
      stats.inputs++;
      return { seq: ++lastIssuedSeq };
    },
    reconcile(authoritative, lastProcessedSeq) {
      if (!(Number.isInteger(lastProcessedSeq) && lastProcessedSeq >= 0)) {
        throw invalid(`lastProcessedSeq must be an integer >= 0, got ${lastProcessedSeq}`);
      }
      if (lastProcessedSeq > lastIssuedSeq) {
        throw invalid(
          `lastProcessedSeq ${lastProcessedSeq} is after the last input issued (${lastIssuedSeq})`,
          { lastProcessedSeq, lastIssuedSeq },
        );
      }
      if (lastProcessedSeq < ackedSeq) {
        throw new TickwireError(
          ErrorCode.INVALID_STATE,
          `prediction: lastProcessedSeq ${lastProcessedSeq} is older than the ${ackedSeq} already reconciled; drop out-of-order updates first`,
          { details: { lastProcessedSeq, ackedSeq } },
        );
      }
      if (authoritative === undefined) throw invalid('authoritative state is undefined');
      // Everything is computed before anything changes, so a throwing hook leaves no trace.
      const acknowledged = Math.max(0, Math.min(count, lastProcessedSeq - firstPendingSeq + 1));
      let replayed = clone(authoritative);
      for (let i = acknowledged; i < count; i++) {
        let slot = head + i;
        if (slot >= capacity) slot -= capacity;
        replayed = advance(replayed, ring[slot] as Input);
      }
      let errorDistance = 0;
      let nextOffset = offset;
      let nextOffsetLength = offsetLength;
      if (smoothing) {
        const predicted = positionOf(state, offset.length > 0 ? offset.length : -1);
        before.length = predicted.length;
        for (let i = 0; i < predicted.length; i++) before[i] = predicted[i]!;
        const after = positionOf(replayed, before.length);
        // The offset absorbs the correction, so the drawn position does not move now.
        nextOffset = new Array(before.length);
        let errorSquared = 0;
        let offsetSquared = 0;
        for (let i = 0; i < before.length; i++) {
          const delta = before[i]! - after[i]!;
          const moved = (offset[i] ?? 0) + delta;
          nextOffset[i] = moved;
          errorSquared += delta * delta;
          offsetSquared += moved * moved;
        }
        errorDistance = Math.sqrt(errorSquared);
        nextOffsetLength = Math.sqrt(offsetSquared);
        if (!Number.isFinite(nextOffsetLength)) {
          throw new TickwireError(
            ErrorCode.INVALID_STATE,
            `prediction: smoothing.position returned a non-finite coordinate: [${before.join(', ')}] then [${after.join(', ')}]`,
          );
        }
      }

      state = replayed;
      dropOldest(acknowledged);
      ackedSeq = lastProcessedSeq;
      stats.reconciliations++;
      if (!smoothing) return;
      const snapped = nextOffsetLength > smoothing.snapDistance;
      if (snapped) {
        nextOffset.fill(0);
        nextOffsetLength = 0;
        stats.snaps++;
      }
      offset = nextOffset;
      offsetLength = nextOffsetLength;
      if (errorDistance > 0) {
        stats.mispredictions++;
        errorSum += errorDistance;
        stats.meanError = errorSum / stats.mispredictions;
        if (errorDistance > stats.maxError) stats.maxError = errorDistance;
        emitter.emit('misprediction', { errorDistance, seq: lastProcessedSeq, snapped });
      }
    },
    unacked(max = count) {
      if (!(Number.isInteger(max) && max >= 0)) {
        throw invalid(`max must be an integer >= 0, got ${max}`);
      }
      const n = Math.min(max, count);
      const result: PendingInput<Input>[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const index = count - n + i;
        let slot = head + index;
        if (slot >= capacity) slot -= capacity;
        result[i] = { seq: firstPendingSeq + index, input: ring[slot] as Input };
      }
      return result;
    },
    render(frameMs) {
      if (!(Number.isFinite(frameMs) && frameMs >= 0)) {
        throw invalid(`frameMs must be a finite number >= 0, got ${frameMs}`);
      }
      if (!smoothing || offsetLength === 0) return state;
      // Exponential decay with half-life decayMs, the step capped at maxCorrectionPerFrame.
      let target = offsetLength * 2 ** (-frameMs / smoothing.decayMs);
      if (offsetLength - target > smoothing.maxCorrectionPerFrame) {
        target = offsetLength - smoothing.maxCorrectionPerFrame;
      }
      if (target < SETTLED_DISTANCE) {
        offset.fill(0);
        offsetLength = 0;
        return state;
      }
      const scale = target / offsetLength;
      for (let i = 0; i < offset.length; i++) offset[i] = offset[i]! * scale;
      offsetLength = target;
      return smoothing.apply(state, offset);
    },
    get state() {
      return state;
    },
    get pending() {
      return count;
    },
    get acked() {
      return ackedSeq;
    },
    get offset() {
      return offset.slice();
    },
    get stats() {
      return { ...stats };
    },
  };
}
