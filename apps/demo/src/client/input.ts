// What the player wants, sampled once per client tick: keyboard and mouse, and the scripted
// commands of the test hooks, which go through the very same state (so a test drives the game
// exactly as a player does).
import type { Position } from '../shared/game.js';

/** One tick's command, before it becomes an `input` message. */
export interface Command {
  /** Movement, each axis in [-1, 1]. */
  dx: number;
  dy: number;
  /** Aim, radians. */
  angle: number;
  /** The trigger is pulled: held mouse button, or a queued `fire()`. */
  fire: boolean;
}

/** Where the aim points: the mouse (screen pixels) or a world point (the `aimAt` hook). */
type AimTarget =
  | { space: 'screen'; x: number; y: number }
  | { space: 'world'; x: number; y: number };

/** Keyboard, mouse and scripted input of the local player. */
export interface PlayerInput {
  /**
   * This tick's command. `me` is the predicted position (world) and `meOnScreen` where it is
   * drawn (CSS pixels): the aim angle is measured from it.
   */
  sample(me: Position, meOnScreen: Position): Command;
  /** Aims at a world point until the mouse moves. */
  aimAt(x: number, y: number): void;
  /** Pulls the trigger once: it stays pulled until a tick fires (the local cooldown allows). */
  fire(): void;
  /** Moves in direction (dx, dy) for `ms`, overriding the keyboard; resolves when it ends. */
  move(dx: number, dy: number, ms: number): Promise<void>;
  /** Drops the queued shot: it went off. */
  consumeQueuedShot(): void;
  dispose(): void;
}

const KEYS: Record<string, [axis: 'x' | 'y', sign: -1 | 1]> = {
  KeyW: ['y', -1],
  ArrowUp: ['y', -1],
  KeyS: ['y', 1],
  ArrowDown: ['y', 1],
  KeyA: ['x', -1],
  ArrowLeft: ['x', -1],
  KeyD: ['x', 1],
  ArrowRight: ['x', 1],
};

const clampUnit = (value: number): number =>
  Number.isFinite(value) ? Math.max(-1, Math.min(1, value)) : 0;

/** Listens to the keyboard on `window` and the mouse on `surface` (the game canvas). */
export function createPlayerInput(surface: HTMLElement): PlayerInput {
  const held = new Set<string>();
  let aim: AimTarget | null = null;
  let mouseDown = false;
  let shotQueued = false;
  let scripted: { dx: number; dy: number; until: number } | null = null;

  const isTyping = (event: Event): boolean =>
    event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
  const onKeyDown = (event: KeyboardEvent) => {
    if (isTyping(event) || !(event.code in KEYS)) return;
    held.add(event.code);
    event.preventDefault();
  };
  const onKeyUp = (event: KeyboardEvent) => held.delete(event.code);
  // A key released while the window is not focused never sends keyup: forget them all.
  const onBlur = () => {
    held.clear();
    mouseDown = false;
  };
  const onMouseMove = (event: MouseEvent) => {
    const rect = surface.getBoundingClientRect();
    aim = { space: 'screen', x: event.clientX - rect.left, y: event.clientY - rect.top };
  };
  const onMouseDown = (event: MouseEvent) => {
    if (event.button !== 0) return;
    onMouseMove(event);
    mouseDown = true;
    // A click shorter than a tick would otherwise never be sampled: it queues a shot too.
    shotQueued = true;
  };
  const onMouseUp = (event: MouseEvent) => {
    if (event.button === 0) mouseDown = false;
  };
  window.addEventListener('keydown', onKeyDown);
  window.addEventListener('keyup', onKeyUp);
  window.addEventListener('blur', onBlur);
  window.addEventListener('mouseup', onMouseUp);
  surface.addEventListener('mousemove', onMouseMove);
  surface.addEventListener('mousedown', onMouseDown);

  const keyboardAxis = (axis: 'x' | 'y'): number => {
    let value = 0;
    for (const code of held) {
      const [keyAxis, sign] = KEYS[code]!;
      if (keyAxis === axis) value += sign;
    }
    return clampUnit(value);
  };

  return {
    sample(me, meOnScreen) {
      let dx = keyboardAxis('x');
      let dy = keyboardAxis('y');
      if (scripted !== null) {
        if (performance.now() < scripted.until) {
          dx = scripted.dx;
          dy = scripted.dy;
        } else scripted = null;
      }
      const angle =
        aim === null
          ? 0
          : aim.space === 'world'
            ? Math.atan2(aim.y - me.y, aim.x - me.x)
            : Math.atan2(aim.y - meOnScreen.y, aim.x - meOnScreen.x);
      return { dx, dy, angle, fire: mouseDown || shotQueued };
    },
    aimAt(x, y) {
      aim = { space: 'world', x, y };
    },
    fire() {
      shotQueued = true;
    },
    move(dx, dy, ms) {
      const durationMs = Math.max(0, Number.isFinite(ms) ? ms : 0);
      scripted = { dx: clampUnit(dx), dy: clampUnit(dy), until: performance.now() + durationMs };
      return new Promise<void>((resolve) => setTimeout(resolve, durationMs));
    },
    consumeQueuedShot() {
      shotQueued = false;
    },
    dispose() {
      window.removeEventListener('keydown', onKeyDown);
      window.removeEventListener('keyup', onKeyUp);
      window.removeEventListener('blur', onBlur);
      window.removeEventListener('mouseup', onMouseUp);
      surface.removeEventListener('mousemove', onMouseMove);
      surface.removeEventListener('mousedown', onMouseDown);
      scripted = null;
    },
  };
}
