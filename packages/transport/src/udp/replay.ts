// Replay protection of encrypted packets (netcode.io's replay buffer): a nonce is accepted once,
// and only if it is within the window of the newest accepted one.

/** Nonces remembered behind the newest one. */
export const REPLAY_WINDOW = 256;

/** Rejects duplicated and too-old packet nonces (integers below 2^53). */
export class ReplayWindow {
  readonly #seen = new Float64Array(REPLAY_WINDOW).fill(-1);
  #newest = -1;

  /** True if `nonce` was already accepted or is older than the window: drop the packet. */
  isReplayed(nonce: number): boolean {
    if (nonce + REPLAY_WINDOW <= this.#newest) return true;
    return this.#seen[nonce % REPLAY_WINDOW] === nonce;
  }

  /** Marks `nonce` accepted; call only after the packet authenticated. */
  accept(nonce: number): void {
    this.#seen[nonce % REPLAY_WINDOW] = nonce;
    if (nonce > this.#newest) this.#newest = nonce;
  }

  /** The newest accepted nonce; -1 before any. */
  get newest(): number {
    return this.#newest;
  }
}
