// Your own avatar: client-side prediction with server reconciliation. Each client tick applies
// the input locally at once (no round trip before you move) and sends it; each snapshot resets
// to the server's position and replays the inputs it has not applied yet. Both sides run the
// same step (`stepMovement`, snapped with `quantizePosition`, on the same quantised input), so
// the replay lands exactly where the prediction was: corrections only come from inputs the
// server dropped or discarded (a full queue, your death) and from teleports (respawn).
import { createPrediction, type Prediction } from '@tickwire/client';
import {
  type Input,
  type Position,
  quantizePosition,
  stepMovement,
  TICK_MS,
  WEAPON,
} from '../shared/game.js';
import type { Command } from './input.js';

/** What one tick produced. */
export interface TickResult {
  /** The `input` message to send (its `seq` is the prediction's). */
  input: Input;
  /**
   * True when the local cooldown says this tick's trigger fires a shot: draw the muzzle flash
   * now, without waiting for the server's `shot` message.
   */
  shot: boolean;
}

/** The predicted avatar of the local player. */
export interface LocalPlayer {
  /** Runs one client tick: predicts `command` and returns the message to send. */
  tick(command: Command, viewTime: number, alive: boolean): TickResult;
  /**
   * Takes the server's state of the avatar: its position after the inputs up to `lastInput`.
   * Stale or unknown sequence numbers are ignored.
   */
  reconcile(authoritative: Position, lastInput: number): void;
  /**
   * Where to draw the avatar: the prediction with its correction smoothing, blended `alpha`
   * (in [0, 1)) of the way from the previous tick to the current one.
   */
  render(frameMs: number, alpha: number): Position;
  /** The predicted simulation position (not smoothed). */
  readonly position: Position;
  /** Aim of the last tick, radians. */
  readonly angle: number;
  /** Inputs sent and not acknowledged yet. */
  readonly pending: number;
  /** Corrections of the prediction, teleports (respawns) left out. */
  readonly corrections: Readonly<Corrections>;
  readonly prediction: Prediction<Position, MoveInput>;
}

/** How wrong the prediction was, in world units. */
export interface Corrections {
  count: number;
  meanDistance: number;
  maxDistance: number;
  lastDistance: number;
  /** performance.now() of the last one (0: none yet). */
  lastAt: number;
}

/** What the prediction replays: only what moves the avatar. */
export interface MoveInput {
  dx: number;
  dy: number;
}

// The server receives dx/dy quantised to 1/64 (`t.quantized(-1, 1, 1/64)`): predict with the
// very values it will decode, or every analog input would be a small misprediction.
const AXIS_STEP = 1 / 64;
const quantizeAxis = (value: number): number =>
  -1 + Math.round((value + 1) / AXIS_STEP) * AXIS_STEP;

// The local cooldown, in ticks, only decides when to draw the muzzle flash; `fire` is sent on
// every tick the trigger is pulled and the server, the authority, decides which ones shoot.
const COOLDOWN_TICKS = Math.ceil(WEAPON.cooldownMs / TICK_MS);

/** Creates the prediction of the avatar, starting at its first authoritative position. */
export function createLocalPlayer(start: Position): LocalPlayer {
  const prediction = createPrediction<Position, MoveInput>({
    initial: { x: start.x, y: start.y },
    // The server stores positions snapped to 1/32 unit after every step: so does the replay.
    step: (state, input, dt) => quantizePosition(stepMovement(state, input.dx, input.dy, dt)),
    dt: TICK_MS,
    clone: (state) => ({ x: state.x, y: state.y }),
    // 5 s of inputs: beyond that the link is dead and old inputs are worthless anyway.
    maxPending: 150,
    smoothing: {
      position: (state) => [state.x, state.y],
      apply: (state, offset) => ({ x: state.x + offset[0]!, y: state.y + offset[1]! }),
      // Corrections fade with a 60 ms half-life, at most 10 units a frame; farther than 120
      // units is a teleport (respawn), drawn as a jump.
      decayMs: 60,
      maxCorrectionPerFrame: 10,
      snapDistance: 120,
    },
  });
  let angle = 0;
  let lastSeq = 0;
  let ticksSinceShot = COOLDOWN_TICKS;
  // The last tick's movement, to draw between ticks (the render rate is not the tick rate).
  let stepX = 0;
  let stepY = 0;
  const corrections: Corrections = {
    count: 0,
    meanDistance: 0,
    maxDistance: 0,
    lastDistance: 0,
    lastAt: 0,
  };
  prediction.on('misprediction', (event) => {
    // A jump past snapDistance is the server moving the avatar (respawn), not a misprediction.
    if (event.snapped) return;
    corrections.count++;
    corrections.meanDistance +=
      (event.errorDistance - corrections.meanDistance) / corrections.count;
    corrections.maxDistance = Math.max(corrections.maxDistance, event.errorDistance);
    corrections.lastDistance = event.errorDistance;
    corrections.lastAt = performance.now();
  });

  return {
    tick(command, viewTime, alive) {
      // A dead avatar does not move: sending zero keeps the prediction and the server agreed.
      const move: MoveInput = alive
        ? { dx: quantizeAxis(command.dx), dy: quantizeAxis(command.dy) }
        : { dx: 0, dy: 0 };
      const before = prediction.state;
      const { seq } = prediction.input(move);
      lastSeq = seq;
      stepX = prediction.state.x - before.x;
      stepY = prediction.state.y - before.y;
      angle = Number.isFinite(command.angle) ? command.angle : angle;
      ticksSinceShot++;
      const shot = alive && command.fire && ticksSinceShot >= COOLDOWN_TICKS;
      if (shot) ticksSinceShot = 0;
      const fire = alive && command.fire;
      return { input: { seq, dx: move.dx, dy: move.dy, angle, fire, viewTime }, shot };
    },
    reconcile(authoritative, lastInput) {
      // An acknowledgement older than one reconciled already, or of an input never sent (a
      // server that restarted its count): nothing to learn from it. The same one again is
      // fine: the server can move the avatar without an input (a respawn).
      if (!Number.isInteger(lastInput) || lastInput < prediction.acked || lastInput > lastSeq)
        return;
      prediction.reconcile({ x: authoritative.x, y: authoritative.y }, lastInput);
    },
    render(frameMs, alpha) {
      const drawn = prediction.render(Math.max(0, frameMs));
      const behind = 1 - Math.max(0, Math.min(1, alpha));
      return { x: drawn.x - stepX * behind, y: drawn.y - stepY * behind };
    },
    get position() {
      return prediction.state;
    },
    get angle() {
      return angle;
    },
    get pending() {
      return prediction.pending;
    },
    corrections,
    prediction,
  };
}
