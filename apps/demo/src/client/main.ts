// The Tickwire demo's browser client: wires the session, the fixed-step input loop, the
// renderer, the HUD, the debug overlay and the test hooks.
//
// Two clocks run here. The simulation clock ticks at the server's rate (TICK_RATE_HZ): one
// input per tick, each predicted with exactly the step the server will take. The render clock
// is the display's (requestAnimationFrame): it draws whatever time it is, blending between
// ticks so that 30 Hz of simulation looks like 60+ Hz of motion.
import './style.css';
import { type Position, TICK_MS } from '../shared/game.js';
import type { ArenaView } from './arena.js';
import { createEffects } from './effects.js';
import { startFrameLoop } from './frame-loop.js';
import { installHooks } from './hooks.js';
import { createHud } from './hud.js';
import { createPlayerInput } from './input.js';
import { type ArenaSession, cleanName, pageServerUrl, startArenaSession } from './net.js';
import { findPreset, type NetworkPresetName } from './network.js';
import { createDebugOverlay } from './overlay.js';
import { createRenderer } from './render.js';

/** Frames longer than this (a background tab) are not caught up: the time is skipped. */
const MAX_FRAME_MS = 250;

const params = new URLSearchParams(location.search);
const randomName = () => `player-${Math.floor(Math.random() * 10_000)}`;
let name = cleanName(params.get('name') ?? '') || randomName();
let preset: NetworkPresetName = findPreset(params.get('net') ?? 'lan') ?? 'lan';

const element = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const canvas = element<HTMLCanvasElement>('game');
const nameField = element<HTMLInputElement>('name');
const renameForm = element<HTMLFormElement>('rename');
const retryButton = element<HTMLButtonElement>('retry');
const overlayButton = element<HTMLButtonElement>('overlay-toggle');

const renderer = createRenderer(canvas);
const input = createPlayerInput(canvas);
const hud = createHud();
let session: ArenaSession | null = null;

const overlay = createDebugOverlay({
  root: element('overlay'),
  toggleButton: overlayButton,
  session: () => session,
  onPreset: (next) => setNetwork(next),
});

function setNetwork(next: NetworkPresetName): void {
  preset = next;
  session?.network.setPreset(next);
  overlay.showPreset(next);
}

function start(): void {
  session?.close();
  retryButton.hidden = true;
  session = startArenaSession({
    url: pageServerUrl(),
    name,
    preset,
    onChange: (changed) => {
      if (changed !== session) return; // a session replaced by "play again"
      hud.status(changed.status, changed.lastError);
      retryButton.hidden = changed.status.state !== 'closed';
    },
  });
  hud.status(session.status, null);
}

// UI: name, retry, overlay toggle (button and backquote).
nameField.value = name;
renameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  name = cleanName(nameField.value) || name;
  nameField.value = name;
  session?.rename(name);
  nameField.blur();
});
retryButton.addEventListener('click', () => start());
overlayButton.addEventListener('click', () => overlay.toggle());
window.addEventListener('keydown', (event) => {
  if (event.code !== 'Backquote' || event.target instanceof HTMLInputElement) return;
  event.preventDefault();
  overlay.toggle();
});
overlay.showPreset(preset);
overlay.setVisible(params.get('overlay') === '1');

installHooks({
  session: () => session,
  input,
  overlayVisible: () => overlay.visible,
  setNetwork,
});

// The frame loop: a fixed-step accumulator (Fiedler, "Fix Your Timestep!") runs the client
// ticks the elapsed time owes, then the frame is drawn `alpha` of a tick past the last one.
const idleEffects = createEffects();
let lastFrameAt = performance.now();
let accumulatorMs = 0;
let drawnMe: Position | null = null;

function frame(now: number): void {
  const frameMs = Math.min(Math.max(0, now - lastFrameAt), MAX_FRAME_MS);
  lastFrameAt = now;
  accumulatorMs += frameMs;
  const arena = session?.arena ?? null;
  while (accumulatorMs >= TICK_MS) {
    accumulatorMs -= TICK_MS;
    const player = arena?.player;
    if (arena === null || player === undefined || player === null) continue;
    // Aim from where your avatar is drawn: that is what the mouse points relative to.
    const command = input.sample(player.position, renderer.toScreen(drawnMe ?? player.position));
    if (arena.tick(command)) input.consumeQueuedShot();
  }
  let view: ArenaView | null = null;
  if (arena !== null) {
    view = arena.sample(frameMs, accumulatorMs / TICK_MS);
    drawnMe = view.me;
  }
  renderer.draw(view, arena?.effects ?? idleEffects, now);
  hud.update(view, arena, now);
}

start();
// A frame that throws does not stop the game: the loop goes on and the error is reported once
// (as an uncaught error: the console shows it, and the end-to-end test fails on it).
startFrameLoop(frame, {
  requestFrame: (callback) => requestAnimationFrame(callback),
  onError: (error) => reportError(error),
});
