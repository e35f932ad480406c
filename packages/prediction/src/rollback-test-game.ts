/** Test support, not part of the package. */

// A small deterministic game: per player x, y, vx, vy in integer math, plus an xorshift32 PRNG
// kept in the state (a random gust each frame). Input bits: 1 left, 2 right, 4 up, 8 down, 16 boost.
const FIELDS = 4;
export const WORLD = 4096;

export interface Game {
  state: Int32Array;
  save(): Int32Array;
  load(snapshot: Int32Array): void;
  advance(inputs: readonly number[], frame: number): void;
  checksum(snapshot: Int32Array): number;
}

export function createGame(players: number, seed = 12345): Game {
  const state = new Int32Array(1 + FIELDS * players);
  state[0] = seed;
  for (let p = 0; p < players; p++) {
    state[1 + FIELDS * p] = 100 + 700 * p;
    state[2 + FIELDS * p] = 2000 - 300 * p;
  }
  return {
    state,
    save: () => state.slice(),
    load: (snapshot) => state.set(snapshot),
    advance(inputs) {
      for (let p = 0; p < players; p++) {
        const input = inputs[p]!;
        const base = 1 + FIELDS * p;
        const boost = input & 16 ? 2 : 1;
        const ax = ((input & 2 ? 1 : 0) - (input & 1 ? 1 : 0)) * boost;
        const ay = ((input & 8 ? 1 : 0) - (input & 4 ? 1 : 0)) * boost;
        const vx = Math.max(-12, Math.min(12, state[base + 2]! + ax - (state[base + 2]! >> 3)));
        const vy = Math.max(-12, Math.min(12, state[base + 3]! + ay - (state[base + 3]! >> 3)));
        state[base + 2] = vx;
        state[base + 3] = vy;
        state[base] = (((state[base]! + vx) % WORLD) + WORLD) % WORLD;
        state[base + 1] = (((state[base + 1]! + vy) % WORLD) + WORLD) % WORLD;
      }
      let r = state[0]!;
      r ^= r << 13;
      r ^= r >>> 17;
      r ^= r << 5;
      state[0] = r;
      const gusted = 1 + FIELDS * ((r >>> 0) % players) + 2;
      state[gusted] = state[gusted]! + (((r >>> 8) & 3) - 1);
    },
    checksum(snapshot) {
      // FNV-1a over the words.
      let hash = 0x811c9dc5;
      for (let i = 0; i < snapshot.length; i++) {
        hash = Math.imul(hash ^ snapshot[i]!, 0x01000193);
      }
      return hash >>> 0;
    },
  };
}

/** Deterministic inputs that hold for a few frames, then change. */
export function inputFor(player: number, frame: number): number {
  let h = Math.imul((player + 1) * 0x9e3779b1, Math.floor(frame / (5 + player)) + 1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) & 31;
}
