import {
  createLinkConditioner,
  createManualTime,
  createRandom,
  ErrorCode,
  isTickwireError,
  type LinkOptions,
} from '@tickwire/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createPrediction,
  type MispredictionEvent,
  type Prediction,
  type PredictionOptions,
  type PredictionSmoothing,
} from './client-prediction.js';

/** A 2D character with simple physics: acceleration from the stick, friction per step. */
interface Character {
  x: number;
  y: number;
  vx: number;
  vy: number;
}

/** Stick direction, each axis in [-1, 1]. */
interface Move {
  ax: number;
  ay: number;
}

const FRAME_MS = 1000 / 60;
/** Units/ms²: with the friction below, a top speed of 3 units/s. */
const ACCEL = 0.00002;
const FRICTION = 0.9;
const ORIGIN: Character = { x: 0, y: 0, vx: 0, vy: 0 };

function walk(state: Character, input: Move, dt: number): Character {
  const vx = (state.vx + input.ax * ACCEL * dt) * FRICTION;
  const vy = (state.vy + input.ay * ACCEL * dt) * FRICTION;
  return { x: state.x + vx * dt, y: state.y + vy * dt, vx, vy };
}

const fold = (from: Character, inputs: readonly Move[]): Character =>
  inputs.reduce((state, input) => walk(state, input, FRAME_MS), { ...from });

const smoothingOf = (
  settings: Pick<
    PredictionSmoothing<Character>,
    'decayMs' | 'snapDistance' | 'maxCorrectionPerFrame'
  >,
): PredictionSmoothing<Character> => ({
  position: (state) => [state.x, state.y],
  apply: (state, offset) => ({ ...state, x: state.x + offset[0]!, y: state.y + offset[1]! }),
  ...settings,
});

const distance = (a: readonly number[], b: readonly number[]): number =>
  Math.hypot(...a.map((value, i) => value - b[i]!));

const drawnPosition = (prediction: Prediction<Character, Move>): number[] => {
  const offset = prediction.offset;
  return [prediction.state.x + (offset[0] ?? 0), prediction.state.y + (offset[1] ?? 0)];
};

const RIGHT: Move = { ax: 1, ay: 0 };
const LEFT: Move = { ax: -1, ay: 0 };
const IDLE: Move = { ax: 0, ay: 0 };

function expectError(fn: () => unknown, code: ErrorCode, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isTickwireError(caught, code), String(caught)).toBe(true);
  expect((caught as Error).message).toMatch(pattern);
}

describe('createPrediction', () => {
  it('applies an input at once, numbers inputs from 1 and never mutates the given states', () => {
    const initial = { ...ORIGIN };
    const prediction = createPrediction({ initial, step: walk, dt: FRAME_MS });
    expect(prediction.state).toEqual(ORIGIN);
    expect(prediction.state).not.toBe(initial);
    expect(prediction.input(RIGHT)).toEqual({ seq: 1 });
    expect(prediction.input(RIGHT)).toEqual({ seq: 2 });
    expect(prediction.state).toEqual(fold(ORIGIN, [RIGHT, RIGHT]));
    expect(prediction.state.x).toBeGreaterThan(0);
    expect(initial).toEqual(ORIGIN);
    expect(prediction.pending).toBe(2);
    expect(prediction.acked).toBe(0);
    expect(prediction.render(FRAME_MS)).toBe(prediction.state);
    expect(prediction.offset).toEqual([]);
    expect(prediction.stats).toEqual({
      inputs: 2,
      reconciliations: 0,
      mispredictions: 0,
      maxError: 0,
      meanError: 0,
      snaps: 0,
      dropped: 0,
    });
  });

  it('reconcile drops acknowledged inputs and replays the others from the server state', () => {
    const prediction = createPrediction({ initial: ORIGIN, step: walk, dt: FRAME_MS });
    const moves = [RIGHT, RIGHT, LEFT, IDLE, RIGHT];
    for (const move of moves) prediction.input(move);
    const server = { x: 10, y: -2, vx: 0, vy: 0 };
    prediction.reconcile(server, 2);
    expect(prediction.pending).toBe(3);
    expect(prediction.acked).toBe(2);
    expect(prediction.state).toEqual(fold(server, moves.slice(2)));
    expect(prediction.unacked().map((pending) => pending.seq)).toEqual([3, 4, 5]);
    // The same acknowledgement again (a server that got no new input) is fine.
    prediction.reconcile(server, 2);
    expect(prediction.state).toEqual(fold(server, moves.slice(2)));
    prediction.reconcile({ ...server, x: 11 }, 5);
    expect(prediction.pending).toBe(0);
    expect(prediction.state).toEqual({ ...server, x: 11 });
    expect(prediction.stats.reconciliations).toBe(3);
    // Without smoothing, no position to measure a misprediction on.
    expect(prediction.stats.mispredictions).toBe(0);
  });

  it('copies the authoritative state, so a caller reusing it cannot change the prediction', () => {
    let clones = 0;
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      clone: (state) => {
        clones++;
        return { ...state };
      },
    });
    const decoded = { x: 1, y: 1, vx: 0, vy: 0 };
    prediction.reconcile(decoded, 0);
    decoded.x = 99;
    expect(prediction.state.x).toBe(1);
    expect(clones).toBe(2);
  });

  it('unacked(max) gives the most recent pending inputs, oldest first', () => {
    const prediction = createPrediction<number, number>({
      initial: 0,
      step: (state, input) => state + input,
      dt: 10,
    });
    for (let i = 1; i <= 6; i++) prediction.input(i * 10);
    expect(prediction.unacked(3)).toEqual([
      { seq: 4, input: 40 },
      { seq: 5, input: 50 },
      { seq: 6, input: 60 },
    ]);
    expect(prediction.unacked(100)).toHaveLength(6);
    expect(prediction.unacked(0)).toEqual([]);
    prediction.reconcile(100, 5);
    expect(prediction.unacked()).toEqual([{ seq: 6, input: 60 }]);
    expect(prediction.state).toBe(160);
  });

  it('bounds the buffer with maxPending: the oldest input is dropped and counted', () => {
    const prediction = createPrediction<number, number>({
      initial: 0,
      step: (state, input) => state * 2 + input,
      dt: 10,
      maxPending: 4,
    });
    for (let i = 1; i <= 10; i++) prediction.input(i);
    expect(prediction.pending).toBe(4);
    expect(prediction.stats.dropped).toBe(6);
    expect(prediction.unacked().map((pending) => pending.seq)).toEqual([7, 8, 9, 10]);
    // The server processed up to 3: inputs 4-6 are gone, only 7-10 can be replayed.
    prediction.reconcile(1000, 3);
    expect(prediction.state).toBe((((1000 * 2 + 7) * 2 + 8) * 2 + 9) * 2 + 10);
    expect(prediction.pending).toBe(4);
    prediction.reconcile(0, 8);
    expect(prediction.unacked()).toEqual([
      { seq: 9, input: 9 },
      { seq: 10, input: 10 },
    ]);
    expect(prediction.state).toBe(9 * 2 + 10);
  });

  it('rejects bad options with INVALID_ARGUMENT, naming the option', () => {
    const base: PredictionOptions<Character, Move> = { initial: ORIGIN, step: walk, dt: FRAME_MS };
    const bad = (options: object, pattern: RegExp) =>
      expectError(
        () => createPrediction({ ...base, ...options } as PredictionOptions<Character, Move>),
        ErrorCode.INVALID_ARGUMENT,
        pattern,
      );
    bad({ step: 'walk' }, /step must be a function, got string/);
    bad({ clone: 1 }, /clone must be a function/);
    bad({ dt: Number.NaN }, /dt must be a finite number of ms > 0, got NaN/);
    bad({ dt: 0 }, /dt must be/);
    bad({ dt: Number.POSITIVE_INFINITY }, /dt must be/);
    bad({ maxPending: 0 }, /maxPending must be an integer in \[1, 65536\], got 0/);
    bad({ maxPending: 65_537 }, /maxPending/);
    bad({ maxPending: 2.5 }, /maxPending/);
    const smoothing = smoothingOf({ decayMs: 100, snapDistance: 5, maxCorrectionPerFrame: 0.1 });
    bad({ smoothing: { ...smoothing, position: null } }, /smoothing.position must be a function/);
    bad({ smoothing: { ...smoothing, apply: undefined } }, /smoothing.apply must be a function/);
    bad({ smoothing: { ...smoothing, decayMs: 0 } }, /smoothing.decayMs must be/);
    bad({ smoothing: { ...smoothing, snapDistance: -1 } }, /smoothing.snapDistance must be/);
    bad(
      { smoothing: { ...smoothing, maxCorrectionPerFrame: Number.NaN } },
      /smoothing.maxCorrectionPerFrame must be a number > 0, got NaN/,
    );
    // Infinity is a valid "never snap" / "no per-frame cap".
    expect(() =>
      createPrediction({
        ...base,
        smoothing: {
          ...smoothing,
          snapDistance: Number.POSITIVE_INFINITY,
          maxCorrectionPerFrame: Number.POSITIVE_INFINITY,
        },
      }),
    ).not.toThrow();
  });

  it('rejects bad calls with a typed error and leaves the prediction untouched', () => {
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      smoothing: smoothingOf({ decayMs: 100, snapDistance: 5, maxCorrectionPerFrame: 0.1 }),
    });
    for (let i = 0; i < 5; i++) prediction.input(RIGHT);
    prediction.reconcile({ ...ORIGIN, x: 0.5 }, 3);
    const state = prediction.state;
    const offset = prediction.offset;
    const stats = prediction.stats;
    const untouched = () => {
      expect(prediction.state).toBe(state);
      expect(prediction.offset).toEqual(offset);
      expect(prediction.stats).toEqual(stats);
      expect(prediction.pending).toBe(2);
      expect(prediction.acked).toBe(3);
    };
    expectError(
      () => prediction.reconcile(ORIGIN, 6),
      ErrorCode.INVALID_ARGUMENT,
      /lastProcessedSeq 6 is after the last input issued \(5\)/,
    );
    expectError(
      () => prediction.reconcile(ORIGIN, 2),
      ErrorCode.INVALID_STATE,
      /lastProcessedSeq 2 is older than the 3 already reconciled/,
    );
    for (const seq of [Number.NaN, -1, 3.5]) {
      expectError(() => prediction.reconcile(ORIGIN, seq), ErrorCode.INVALID_ARGUMENT, /integer/);
    }
    expectError(
      () => prediction.reconcile(undefined as unknown as Character, 4),
      ErrorCode.INVALID_ARGUMENT,
      /authoritative state is undefined/,
    );
    expectError(() => prediction.render(Number.NaN), ErrorCode.INVALID_ARGUMENT, /frameMs/);
    expectError(() => prediction.render(-1), ErrorCode.INVALID_ARGUMENT, /frameMs/);
    expectError(() => prediction.unacked(-1), ErrorCode.INVALID_ARGUMENT, /max must be/);
    untouched();
  });

  it('a step that throws or returns nothing leaves the prediction as it was', () => {
    let failAt = Number.POSITIVE_INFINITY;
    let calls = 0;
    const prediction = createPrediction<number, number>({
      initial: 0,
      step: (state, input) => {
        if (++calls >= failAt) throw new Error('boom');
        return input === 0 ? (undefined as unknown as number) : state + input;
      },
      dt: 10,
    });
    for (let i = 1; i <= 4; i++) prediction.input(i);
    expectError(() => prediction.input(0), ErrorCode.INVALID_STATE, /step returned undefined/);
    expect(prediction.pending).toBe(4);
    expect(prediction.state).toBe(10);
    // Fails on the third of four replayed inputs.
    failAt = calls + 3;
    expect(() => prediction.reconcile(100, 0)).toThrow('boom');
    expect(prediction.state).toBe(10);
    expect(prediction.pending).toBe(4);
    expect(prediction.stats.reconciliations).toBe(0);
    failAt = Number.POSITIVE_INFINITY;
    expect(prediction.input(5)).toEqual({ seq: 5 });
  });

  it('a position hook returning a non-finite coordinate is an INVALID_STATE', () => {
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      smoothing: smoothingOf({ decayMs: 100, snapDistance: 5, maxCorrectionPerFrame: 1 }),
    });
    prediction.input(RIGHT);
    expectError(
      () => prediction.reconcile({ ...ORIGIN, y: Number.NaN }, 0),
      ErrorCode.INVALID_STATE,
      /smoothing.position returned a non-finite coordinate: \[/,
    );
    expect(prediction.offset).toEqual([]);
    expect(prediction.stats.reconciliations).toBe(0);
    expect(prediction.state).toEqual(fold(ORIGIN, [RIGHT]));
  });

  it('a position hook that changes its coordinate count is an INVALID_STATE', () => {
    let coordinates = 2;
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      smoothing: {
        ...smoothingOf({ decayMs: 100, snapDistance: 5, maxCorrectionPerFrame: 1 }),
        position: (state) => [state.x, state.y, 0].slice(0, coordinates),
      },
    });
    prediction.input(RIGHT);
    prediction.reconcile({ ...ORIGIN, x: 1 }, 0);
    coordinates = 3;
    expectError(
      () => prediction.reconcile(ORIGIN, 0),
      ErrorCode.INVALID_STATE,
      /smoothing.position returned 3 coordinates, expected 2/,
    );
  });
});

describe('smoothing', () => {
  const settings = { decayMs: 100, snapDistance: 5, maxCorrectionPerFrame: 10 };

  it('hides a correction behind an offset that halves every decayMs', () => {
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      smoothing: smoothingOf(settings),
    });
    const events: MispredictionEvent[] = [];
    prediction.on('misprediction', (event) => events.push(event));
    prediction.input(IDLE);
    prediction.input(IDLE);
    const drawnBefore = drawnPosition(prediction);
    prediction.reconcile({ ...ORIGIN, x: 3, y: 4 }, 1);
    // The simulation jumped by 5 units; the drawn position did not move.
    expect(prediction.state).toMatchObject({ x: 3, y: 4 });
    expect(drawnPosition(prediction)).toEqual(drawnBefore);
    expect(prediction.offset).toEqual([-3, -4]);
    expect(events).toEqual([{ errorDistance: 5, seq: 1, snapped: false }]);
    expect(prediction.render(100).x).toBeCloseTo(1.5, 12);
    expect(prediction.offset[1]).toBeCloseTo(-2, 12);
    expect(prediction.render(200).y).toBeCloseTo(3.5, 12);
    // A frame of 0 ms draws the same offset again.
    expect(prediction.render(0).y).toBeCloseTo(3.5, 12);
    // Decays to exactly nothing, then render returns the prediction itself.
    for (let i = 0; i < 30; i++) prediction.render(100);
    expect(prediction.offset).toEqual([0, 0]);
    expect(prediction.render(16)).toBe(prediction.state);
    expect(prediction.stats).toMatchObject({
      reconciliations: 1,
      mispredictions: 1,
      maxError: 5,
      meanError: 5,
      snaps: 0,
    });
  });

  it('moves the drawn position by at most maxCorrectionPerFrame per render', () => {
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      smoothing: smoothingOf({ ...settings, maxCorrectionPerFrame: 0.5 }),
    });
    prediction.input(IDLE);
    prediction.reconcile({ ...ORIGIN, x: 4 }, 0);
    expect(prediction.offset).toEqual([-4, 0]);
    // 2^(-1) would halve it to 2; the cap allows 0.5 per frame.
    const drawn = [4, 4.5, 5, 5.5].map(() => prediction.render(100).x);
    expect(drawn).toEqual([0.5, 1, 1.5, 2]);
    // Once the exponential step is under the cap, it decays exponentially again.
    prediction.render(100); // 1.5 left
    expect(prediction.offset[0]).toBeCloseTo(-1.5, 12);
    prediction.render(100);
    expect(prediction.offset[0]).toBeCloseTo(-1, 12);
    prediction.render(100);
    expect(prediction.offset[0]).toBeCloseTo(-0.5, 12);
    prediction.render(100);
    expect(prediction.offset[0]).toBeCloseTo(-0.25, 12);
  });

  it('corrections that add up keep the drawn position where it was', () => {
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      smoothing: smoothingOf(settings),
    });
    prediction.input(IDLE);
    prediction.reconcile({ ...ORIGIN, x: 1 }, 0);
    prediction.reconcile({ ...ORIGIN, x: 3 }, 0);
    expect(prediction.offset).toEqual([-3, 0]);
    // A correction back toward the drawn position shrinks the offset.
    prediction.reconcile({ ...ORIGIN, x: 0.5 }, 1);
    expect(prediction.offset).toEqual([-0.5, 0]);
    expect(drawnPosition(prediction)).toEqual([0, 0]);
    expect(prediction.stats).toMatchObject({ mispredictions: 3, maxError: 2.5 });
    expect(prediction.stats.meanError).toBeCloseTo((1 + 2 + 2.5) / 3, 12);
  });

  it('snaps when the offset would exceed snapDistance: the drawn state jumps', () => {
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      smoothing: smoothingOf(settings),
    });
    const events: MispredictionEvent[] = [];
    prediction.on('misprediction', (event) => events.push(event));
    prediction.input(IDLE);
    prediction.reconcile({ ...ORIGIN, x: 4 }, 0);
    expect(prediction.offset).toEqual([-4, 0]);
    // 4 + 2 = 6 > 5: the accumulated offset is dropped, not just this error.
    prediction.reconcile({ ...ORIGIN, x: 6 }, 0);
    expect(prediction.offset).toEqual([0, 0]);
    expect(prediction.render(FRAME_MS)).toBe(prediction.state);
    expect(events.map((event) => event.snapped)).toEqual([false, true]);
    expect(prediction.stats.snaps).toBe(1);
    // A correct prediction is no misprediction and emits nothing.
    prediction.reconcile({ ...ORIGIN, x: 6 }, 1);
    expect(events).toHaveLength(2);
    expect(prediction.stats).toMatchObject({ reconciliations: 3, mispredictions: 2 });
  });

  it('a position hook that returns the same array every call still measures the correction', () => {
    const reused = [0, 0];
    const prediction = createPrediction({
      initial: ORIGIN,
      step: walk,
      dt: FRAME_MS,
      smoothing: {
        ...smoothingOf(settings),
        position: (state) => {
          reused[0] = state.x;
          reused[1] = state.y;
          return reused;
        },
      },
    });
    const events: MispredictionEvent[] = [];
    prediction.on('misprediction', (event) => events.push(event));
    prediction.input(IDLE);
    prediction.input(IDLE);
    prediction.reconcile({ ...ORIGIN, x: 3, y: 4 }, 1);
    expect(prediction.offset).toEqual([-3, -4]);
    expect(drawnPosition(prediction)).toEqual([0, 0]);
    expect(events).toEqual([{ errorDistance: 5, seq: 1, snapped: false }]);
    prediction.reconcile({ ...ORIGIN, x: 2.5, y: 4 }, 2);
    expect(prediction.offset).toEqual([-2.5, -4]);
    expect(prediction.stats).toMatchObject({ mispredictions: 2, maxError: 5, meanError: 2.75 });
  });
});

/** Options of {@link playOnline}. */
interface OnlineGame {
  seed: number;
  durationMs: number;
  /** One-way conditions of both directions. */
  link: LinkOptions;
  smoothing: PredictionSmoothing<Character>;
  /** The client's stick at a time (ms). */
  stick(timeMs: number): Move;
  /** The server's step (defaults to the client's). */
  serverStep?: (state: Character, input: Move, dt: number) => Character;
  /** Server-side overrides the client cannot predict, run each server tick. */
  serverEvent?: (state: Character, timeMs: number) => Character;
}

/** Last pending inputs sent in every input packet. */
const REDUNDANCY = 32;
const SERVER_UPDATE_MS = 50;

/**
 * One client and a server on manual time, joined by two seeded link conditioners. The client
 * sends each frame's input with the unacked ones before it; the server applies new inputs in
 * order as they arrive and sends its state with the last processed seq at 20 Hz.
 */
function playOnline(game: OnlineGame) {
  const time = createManualTime();
  const up = createLinkConditioner({ ...game.link, time, seed: game.seed });
  const down = createLinkConditioner({ ...game.link, time, seed: game.seed + 7919 });
  const prediction = createPrediction({
    initial: ORIGIN,
    step: walk,
    dt: FRAME_MS,
    smoothing: game.smoothing,
  });
  const serverStep = game.serverStep ?? walk;
  const server = { state: { ...ORIGIN }, lastProcessedSeq: 0, tick: 0, skipped: 0 };
  const result = {
    frames: 0,
    updates: 0,
    staleUpdates: 0,
    /** Updates after which the prediction differed from the server state + pending inputs. */
    divergent: 0,
    maxPending: 0,
    /** Largest move of the drawn position by a correction in one render. */
    maxCorrectionPerFrame: 0,
    /** Renders whose correction was at least `cappedAt` (the cap binding). */
    cappedFrames: 0,
    /** Largest move of the drawn position by a reconcile that did not snap. */
    maxJumpWithoutSnap: 0,
    /** Smallest move of the drawn position by a reconcile that snapped. */
    minJumpOnSnap: Number.POSITIVE_INFINITY,
    snapEvents: 0,
  };
  prediction.on('misprediction', (event) => {
    if (event.snapped) result.snapEvents++;
  });

  const receiveInputs = (packet: { seq: number; input: Move }[]) => {
    for (const { seq, input } of packet) {
      if (seq <= server.lastProcessedSeq) continue;
      // Inputs older than the packet's redundancy are lost for good: the server skips them.
      server.skipped += seq - server.lastProcessedSeq - 1;
      server.state = serverStep(server.state, input, FRAME_MS);
      server.lastProcessedSeq = seq;
    }
  };

  let lastTick = 0;
  const receiveUpdate = (update: { tick: number; state: Character; lastProcessedSeq: number }) => {
    // Unreliable updates may arrive out of order: keep only the newest, by server tick.
    if (update.tick <= lastTick) {
      result.staleUpdates++;
      return;
    }
    lastTick = update.tick;
    const drawnBefore = drawnPosition(prediction);
    const snapsBefore = prediction.stats.snaps;
    prediction.reconcile(update.state, update.lastProcessedSeq);
    result.updates++;
    const expected = fold(
      update.state,
      prediction.unacked().map((pending) => pending.input),
    );
    const actual = prediction.state;
    if (
      actual.x !== expected.x ||
      actual.y !== expected.y ||
      actual.vx !== expected.vx ||
      actual.vy !== expected.vy
    ) {
      result.divergent++;
    }
    const jump = distance(drawnPosition(prediction), drawnBefore);
    if (prediction.stats.snaps === snapsBefore) {
      result.maxJumpWithoutSnap = Math.max(result.maxJumpWithoutSnap, jump);
    } else {
      result.minJumpOnSnap = Math.min(result.minJumpOnSnap, jump);
    }
  };

  const frames = time.setInterval(() => {
    result.frames++;
    prediction.input(game.stick(time.now()));
    const packet = prediction.unacked(REDUNDANCY);
    result.maxPending = Math.max(result.maxPending, prediction.pending);
    up.transmit(8 + 3 * packet.length, () => receiveInputs(packet));
    const offsetBefore = prediction.offset;
    const drawn = prediction.render(FRAME_MS);
    const offsetAfter = prediction.offset;
    // What render draws is the prediction moved by the offset.
    const drawnOffset = [drawn.x - prediction.state.x, drawn.y - prediction.state.y];
    expect(distance(drawnOffset, offsetAfter.length ? offsetAfter : [0, 0])).toBeLessThan(1e-12);
    const correction = offsetBefore.length ? distance(offsetAfter, offsetBefore) : 0;
    result.maxCorrectionPerFrame = Math.max(result.maxCorrectionPerFrame, correction);
    if (correction >= game.smoothing.maxCorrectionPerFrame - 1e-9) result.cappedFrames++;
  }, FRAME_MS);

  const updates = time.setInterval(() => {
    server.tick++;
    if (game.serverEvent) server.state = game.serverEvent(server.state, time.now());
    const update = {
      tick: server.tick,
      state: { ...server.state },
      lastProcessedSeq: server.lastProcessedSeq,
    };
    down.transmit(40, () => receiveUpdate(update));
  }, SERVER_UPDATE_MS);

  time.advance(game.durationMs);
  frames.cancel();
  // Let the last inputs and a few updates through, without new inputs.
  time.advance(1000);
  updates.cancel();
  time.runAll();
  return { result, prediction, server, up, down };
}

/** A stick that changes direction every 0.3 to 1 s, from a seeded generator. */
function randomStick(seed: number): (timeMs: number) => Move {
  const random = createRandom(seed);
  let changeAt = 0;
  let move = IDLE;
  return (timeMs) => {
    if (timeMs >= changeAt) {
      move = { ax: random.int(3) - 1, ay: random.int(3) - 1 };
      changeAt = timeMs + random.range(300, 1000);
    }
    return move;
  };
}

// 150 ms RTT: 75 ms ± 5 ms each way, 5 % loss each way.
const ACCEPTANCE_LINK: LinkOptions = { latencyMs: 75, jitterMs: 5, lossRate: 0.05 };
const GENTLE = smoothingOf({ decayMs: 100, snapDistance: 2, maxCorrectionPerFrame: 0.05 });
/** A cap below the rate the wall's corrections come in, so that it binds. */
const TIGHT = smoothingOf({ decayMs: 100, snapDistance: 2, maxCorrectionPerFrame: 0.02 });

describe('prediction over a simulated link', () => {
  it('150 ms RTT, 5 % loss, 60 Hz inputs for 60 s: every update replays exactly, no misprediction', () => {
    const { result, prediction, server, up, down } = playOnline({
      seed: 11,
      durationMs: 60_000,
      link: ACCEPTANCE_LINK,
      smoothing: GENTLE,
      stick: randomStick(5),
    });
    expect(result.frames).toBe(3600);
    // The conditioner did lose packets both ways.
    expect(up.stats.lost).toBeGreaterThan(150);
    expect(down.stats.lost).toBeGreaterThan(40);
    // 20 Hz for 61 s, less 5 % lost, less the few that arrived after a newer one.
    expect(result.updates).toBeGreaterThan(1100);
    expect(result.updates + result.staleUpdates + down.stats.lost).toBe(1220);
    expect(result.divergent).toBe(0);
    // Redundant sending: no input was lost for good, so the server saw exactly what the client did.
    expect(server.skipped).toBe(0);
    expect(server.lastProcessedSeq).toBe(3600);
    expect(prediction.stats).toMatchObject({
      inputs: 3600,
      mispredictions: 0,
      maxError: 0,
      snaps: 0,
      dropped: 0,
    });
    expect(prediction.state).toEqual(server.state);
    expect(prediction.pending).toBe(0);
    // ~9 frames of RTT plus up to 3 between updates, and a few more after a lost update.
    expect(result.maxPending).toBeGreaterThanOrEqual(12);
    expect(result.maxPending).toBeLessThan(REDUNDANCY);
    expect(result.maxCorrectionPerFrame).toBe(0);
    expect(result.maxJumpWithoutSnap).toBe(0);
  });

  it('a wall only the server knows: corrections stay within maxCorrectionPerFrame, a respawn snaps', () => {
    const WALL_X = 1;
    const RESPAWN_MS = 7000;
    let respawned = false;
    const { result, prediction, server } = playOnline({
      seed: 3,
      durationMs: 10_000,
      link: ACCEPTANCE_LINK,
      smoothing: TIGHT,
      // Run right into the wall, rest, run left, rest, run right again, rest from 8 s.
      stick: (timeMs) => {
        if (timeMs >= 8000) return IDLE;
        const phase = Math.floor(timeMs / 1000) % 4;
        return phase === 0 || phase === 1 ? RIGHT : phase === 2 ? IDLE : LEFT;
      },
      serverStep: (state, input, dt) => {
        const next = walk(state, input, dt);
        return next.x > WALL_X ? { ...next, x: WALL_X, vx: 0 } : next;
      },
      serverEvent: (state, timeMs) => {
        if (respawned || timeMs < RESPAWN_MS) return state;
        respawned = true;
        return { x: -20, y: 5, vx: 0, vy: 0 };
      },
    });
    const stats = prediction.stats;
    expect(result.divergent).toBe(0);
    // Pushing into the wall mispredicts at nearly every update (two pushes of about 1.5 s).
    expect(stats.mispredictions).toBeGreaterThan(40);
    // The respawn is the largest error (about 21.6 units); the wall's are about 0.1.
    expect(stats.maxError).toBeGreaterThan(20);
    expect(stats.meanError).toBeGreaterThan(0.05);
    expect(stats.meanError).toBeLessThan(1);
    // Every correction drawn moved the character by at most the configured amount per frame,
    // and the cap did bind…
    expect(result.maxCorrectionPerFrame).toBeLessThanOrEqual(0.02 + 1e-12);
    expect(result.maxCorrectionPerFrame).toBeCloseTo(0.02, 12);
    expect(result.cappedFrames).toBeGreaterThan(100);
    // …reconciliations never moved it, except the respawn, which snapped beyond snapDistance.
    expect(result.maxJumpWithoutSnap).toBeLessThan(1e-9);
    expect(stats.snaps).toBe(1);
    expect(result.snapEvents).toBe(1);
    expect(result.minJumpOnSnap).toBeGreaterThan(20);
    // At rest the offset has decayed away and the drawn state is the server's.
    expect(prediction.offset).toEqual([0, 0]);
    expect(prediction.render(FRAME_MS)).toEqual(server.state);
    expect(server.state.x).toBeLessThanOrEqual(WALL_X);
  });
});

describe('property: reconcile = fold(step) over the pending inputs from the authoritative state', () => {
  interface Hashed {
    sum: number;
    hash: number;
  }
  // Order-sensitive, so a replay in the wrong order or of the wrong inputs shows.
  const mix = (state: Hashed, input: number): Hashed => ({
    sum: state.sum + input,
    hash: (Math.imul(state.hash, 31) + input) | 0,
  });
  const command = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('input' as const), value: fc.integer() }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('ack' as const),
        fraction: fc.double({ min: 0, max: 1, noNaN: true }),
        sum: fc.integer(),
        hash: fc.integer(),
      }),
    },
  );

  it('holds for any input sequence, ack pattern and buffer bound', () => {
    fc.assert(
      fc.property(
        fc.array(command, { maxLength: 80 }),
        fc.constantFrom(1, 3, 8, 256),
        fc.nat(40),
        (commands, maxPending, window) => {
          const prediction = createPrediction<Hashed, number>({
            initial: { sum: 0, hash: 0 },
            step: mix,
            dt: 1,
            maxPending,
          });
          const issued: number[] = [];
          let acked = 0;
          let base: Hashed = { sum: 0, hash: 0 };
          for (const next of commands) {
            if (next.kind === 'input') {
              const before = prediction.state;
              expect(prediction.input(next.value).seq).toBe(issued.length + 1);
              issued.push(next.value);
              expect(prediction.state).toEqual(mix(before, next.value));
            } else {
              acked += Math.floor(next.fraction * (issued.length - acked));
              base = { sum: next.sum, hash: next.hash };
              prediction.reconcile(base, acked);
            }
            // Pending: seqs after the ack, and only the newest maxPending issued.
            const first = Math.max(acked, issued.length - maxPending) + 1;
            const pending = issued.slice(first - 1);
            expect(prediction.pending).toBe(pending.length);
            expect(prediction.unacked(window)).toEqual(
              pending.slice(-window || pending.length).map((input, i, shown) => ({
                seq: issued.length - shown.length + i + 1,
                input,
              })),
            );
            if (next.kind === 'ack') expect(prediction.state).toEqual(pending.reduce(mix, base));
          }
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });
});
