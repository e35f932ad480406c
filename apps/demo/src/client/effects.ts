// Short-lived things to draw, fed by the room's `shot` and `kill` messages and by local shots.
// Nothing here is state of the game: it only fades out.

/** How long a tracer stays visible, ms. */
export const TRACER_MS = 150;
/** How long a hit avatar flashes, ms. */
export const HIT_FLASH_MS = 180;
/** How long the muzzle flash of a local shot shows, ms. */
export const MUZZLE_MS = 70;
/** How long a kill stays in the feed, ms. */
export const KILL_FEED_MS = 6000;
const KILL_FEED_LENGTH = 5;

export interface Tracer {
  fromX: number;
  fromY: number;
  toX: number;
  toY: number;
  /** Drawn for the local player's own shot (predicted) rather than from the server. */
  own: boolean;
  at: number;
}

export interface KillEntry {
  killer: string;
  victim: string;
  /** The local player is the killer or the victim. */
  mine: boolean;
  at: number;
}

/** The effects alive now; `prune` drops the expired ones. */
export interface Effects {
  readonly tracers: readonly Tracer[];
  /** Entity id → when it was last hit. */
  readonly hits: ReadonlyMap<number, number>;
  readonly kills: readonly KillEntry[];
  /** When the local player last fired (muzzle flash) and was last hit (screen flash). */
  readonly lastMuzzleAt: number;
  readonly lastHurtAt: number;
  tracer(tracer: Omit<Tracer, 'at'>, now: number): void;
  hit(entityId: number, isMe: boolean, now: number): void;
  muzzle(now: number): void;
  kill(entry: Omit<KillEntry, 'at'>, now: number): void;
  prune(now: number): void;
}

export function createEffects(): Effects {
  let tracers: Tracer[] = [];
  const hits = new Map<number, number>();
  let kills: KillEntry[] = [];
  let lastMuzzleAt = Number.NEGATIVE_INFINITY;
  let lastHurtAt = Number.NEGATIVE_INFINITY;
  return {
    get tracers() {
      return tracers;
    },
    hits,
    get kills() {
      return kills;
    },
    get lastMuzzleAt() {
      return lastMuzzleAt;
    },
    get lastHurtAt() {
      return lastHurtAt;
    },
    tracer(tracer, now) {
      tracers.push({ ...tracer, at: now });
    },
    hit(entityId, isMe, now) {
      hits.set(entityId, now);
      if (isMe) lastHurtAt = now;
    },
    muzzle(now) {
      lastMuzzleAt = now;
    },
    kill(entry, now) {
      kills.push({ ...entry, at: now });
      if (kills.length > KILL_FEED_LENGTH) kills = kills.slice(-KILL_FEED_LENGTH);
    },
    prune(now) {
      if (tracers.length > 0) tracers = tracers.filter((t) => now - t.at < TRACER_MS);
      for (const [id, at] of hits) if (now - at >= HIT_FLASH_MS) hits.delete(id);
      if (kills.length > 0 && now - kills[0]!.at >= KILL_FEED_MS)
        kills = kills.filter((k) => now - k.at < KILL_FEED_MS);
    },
  };
}
