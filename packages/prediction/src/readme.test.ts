import { expect, it } from 'vitest';
import {
  createInterpolator,
  createLagCompensation,
  createPrediction,
  createRollback,
  createRollbackUintCodec,
} from './index.js';

// The README's examples, with assertions instead of drawing.
it('predicts the local player and reconciles with the server', () => {
  type State = { x: number };
  type Input = { right: boolean };
  const step = (state: State, input: Input, dt: number): State => ({
    x: state.x + (input.right ? 0.1 * dt : 0),
  });
  const prediction = createPrediction<State, Input>({ initial: { x: 0 }, step, dt: 16 });

  // every client tick: apply the input at once, send it (and the other unacked ones)
  const { seq } = prediction.input({ right: true });
  prediction.input({ right: true });
  expect(seq).toBe(1);
  expect(prediction.unacked().map((p) => p.seq)).toEqual([1, 2]);
  expect(prediction.state.x).toBeCloseTo(3.2);

  // the server processed input 1 and says x is 1.6: replay input 2 on top of it
  prediction.reconcile({ x: 1.6 }, 1);
  expect(prediction.pending).toBe(1);
  expect(prediction.state.x).toBeCloseTo(3.2);
});

it('interpolates remote entities behind an adaptive delay', () => {
  type Fields = { x: number; angle: number };
  const interpolator = createInterpolator<Fields>({ fields: { x: 'linear', angle: 'angle' } });
  // snapshots every 50 ms of server time, arriving 40 ms later
  for (let t = 0; t <= 1000; t += 50)
    interpolator.push(t, { ship: { x: t / 10, angle: 0 } }, t + 40);
  const frame = interpolator.sample(1040);
  expect(frame.mode).toBe('interpolated');
  const x = frame.entities.get('ship')!.x;
  expect(x).toBeCloseTo(frame.renderTime / 10);
  expect(1040 - frame.renderTime).toBe(interpolator.delayMs);
});

it('rewinds hitboxes to what the shooter saw', () => {
  const lag = createLagCompensation<string>({ dimensions: 2, tickMs: 1000 / 60 });
  for (let tick = 0; tick <= 60; tick++)
    lag.record(tick, (tick * 1000) / 60, [
      { id: 'target', shape: { kind: 'circle', x: tick * 10, y: 0, radius: 2 } },
    ]);
  // the shot left the client at server time 1000 with 200 ms RTT and 100 ms interpolation
  const shot = lag.shotTime({ serverTime: 1000, rttMs: 200, interpolationDelayMs: 100 });
  expect(shot.time).toBe(800);
  const hit = lag.raycast(shot.time, { origin: { x: 480, y: -50 }, direction: { x: 0, y: 1 } });
  expect(hit?.id).toBe('target');
});

it('rolls back a deterministic simulation', () => {
  let state = { a: 0, b: 0 };
  const rollback = createRollback<{ a: number; b: number }, number>({
    players: 2,
    localPlayers: [0],
    inputCodec: createRollbackUintCodec(1),
    save: () => ({ ...state }),
    load: (snapshot) => {
      state = { ...snapshot };
    },
    advance: ([a, b]) => {
      state = { a: state.a + a!, b: state.b + b! };
    },
  });
  for (let frame = 0; frame < 5; frame++) {
    rollback.addLocalInput(1);
    rollback.advanceFrame();
  }
  // player 1's inputs arrive late: the frames run on predictions, then are corrected
  for (let frame = 0; frame < 5; frame++) rollback.addRemoteInput(1, frame, 2);
  rollback.synchronize();
  expect(state.b).toBe(2 * rollback.currentFrame);
});
