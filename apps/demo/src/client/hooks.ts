// `window.tickwireDemo`: what an end-to-end test needs to read the game and to play it. The
// commands go through the same input state as the keyboard and mouse.
import type { Arena } from './arena.js';
import type { PlayerInput } from './input.js';
import type { ArenaSession } from './net.js';
import { findPreset, NETWORK_PRESETS } from './network.js';

/** A snapshot of the game as the page sees it. */
export interface DemoState {
  /** In a room, with the session open. */
  connected: boolean;
  sessionId: string | null;
  roomId: string | null;
  /** Your avatar's entity id (0 until the server said). */
  myId: number;
  /** Your avatar: the predicted position, the server's hp, alive and score. */
  me: { x: number; y: number; hp: number; alive: boolean; score: number } | null;
  /** Everyone else in view, as drawn (the last interpolated frame). */
  others: {
    id: number;
    x: number;
    y: number;
    hp: number;
    alive: boolean;
    bot: boolean;
    name: string;
  }[];
  /** Round trip through the link conditioner, over the last seconds (see `network.rttMs()`). */
  rttMs: number;
  bytesIn: number;
  bytesOut: number;
  overlayVisible: boolean;
  /** The network preset in force (a key of the presets: lan, 100ms, 200ms, awful). */
  network: string;
  /** connecting, joining, connected, reconnecting or closed. */
  status: string;
  /**
   * Your shots: `sent` with the muzzle flash (the local cooldown allowed them), `fired` as the
   * server reported them (`shot` messages, reliable), and of those the `hits`.
   */
  shots: { sent: number; fired: number; hits: number };
}

export interface DemoHooks {
  state(): DemoState;
  /** Applies a network preset by key or label; throws on an unknown one. */
  setNetwork(preset: string): void;
  /** Aims at a world point (until the mouse moves). */
  aimAt(x: number, y: number): void;
  /** Pulls the trigger once. */
  fire(): void;
  /** Moves in direction (dx, dy) for `ms`; resolves when the movement is over. */
  move(dx: number, dy: number, ms: number): Promise<void>;
}

declare global {
  interface Window {
    tickwireDemo: DemoHooks;
  }
}

function stateOf(session: ArenaSession | null, overlayVisible: boolean): DemoState {
  const arena: Arena | null = session?.arena ?? null;
  const stats = session?.client.stats().connection;
  const rttMs = session?.network.rttMs() ?? Number.NaN;
  const values = arena?.mine();
  const position = arena?.player?.position;
  const others: DemoState['others'] = [];
  for (const [id, avatar] of arena?.lastFrame?.entities ?? []) {
    if (id === arena?.myId) continue;
    const { x, y, hp, alive, bot, name } = avatar;
    others.push({ id, x, y, hp, alive, bot, name });
  }
  return {
    connected: session?.status.state === 'connected' && arena !== null,
    sessionId: session?.client.session?.sessionId ?? null,
    roomId: arena?.room.id ?? null,
    myId: arena?.myId ?? 0,
    me:
      values === undefined || position === undefined
        ? null
        : {
            x: position.x,
            y: position.y,
            hp: values.hp,
            alive: values.alive,
            score: values.score,
          },
    others,
    rttMs: Number.isFinite(rttMs) ? rttMs : 0,
    bytesIn: stats?.bytesIn ?? 0,
    bytesOut: stats?.bytesOut ?? 0,
    overlayVisible,
    network: session?.network.preset ?? 'lan',
    status: session?.status.state ?? 'connecting',
    shots: {
      sent: arena?.shots.sent ?? 0,
      fired: arena?.shots.fired ?? 0,
      hits: arena?.shots.hits ?? 0,
    },
  };
}

export function installHooks(options: {
  session: () => ArenaSession | null;
  input: PlayerInput;
  overlayVisible: () => boolean;
  setNetwork(preset: keyof typeof NETWORK_PRESETS): void;
}): DemoHooks {
  const hooks: DemoHooks = {
    state: () => stateOf(options.session(), options.overlayVisible()),
    setNetwork(name) {
      const preset = findPreset(String(name));
      if (preset === undefined)
        throw new Error(
          `unknown network preset '${name}': use one of ${Object.keys(NETWORK_PRESETS).join(', ')}`,
        );
      options.setNetwork(preset);
    },
    aimAt: (x, y) => options.input.aimAt(x, y),
    fire: () => options.input.fire(),
    move: (dx, dy, ms) => options.input.move(dx, dy, ms),
  };
  window.tickwireDemo = hooks;
  return hooks;
}
