import { Emitter, ErrorCode, type Subscribable, subscribable, TickwireError } from '@tickwire/core';

/**
 * How inputs become bytes: fixed-size, as in GGPO. Inputs compare by their encoding (a
 * prediction is right when its bytes equal the confirmed input's) and travel in this form.
 */
export interface RollbackInputCodec<Input> {
  /** Size of one encoded input in bytes (1–1024). */
  readonly byteLength: number;
  /** Writes `input` into `target` at `offset` (exactly `byteLength` bytes). */
  write(input: Input, target: Uint8Array, offset: number): void;
  /** Reads an input from `byteLength` bytes of `source` at `offset`; may throw on bad bytes. */
  read(source: Uint8Array, offset: number): Input;
}

/** A codec of unsigned integer inputs (button bitmasks) of 1, 2 or 4 bytes, little-endian. */
export function createRollbackUintCodec(byteLength: 1 | 2 | 4 = 1): RollbackInputCodec<number> {
  if (byteLength !== 1 && byteLength !== 2 && byteLength !== 4) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `createRollbackUintCodec: byteLength must be 1, 2 or 4, got ${String(byteLength)}`,
    );
  }
  return {
    byteLength,
    write(input, target, offset) {
      for (let i = 0; i < byteLength; i++) target[offset + i] = (input >>> (8 * i)) & 0xff;
    },
    read(source, offset) {
      let value = 0;
      for (let i = 0; i < byteLength; i++) value += source[offset + i]! * 2 ** (8 * i);
      return value;
    },
  };
}

/** Options of {@link createRollback}. */
export interface RollbackOptions<State, Input> {
  /** Number of players, 1–255; players are numbered from 0. */
  players: number;
  /** The players whose inputs this peer adds with `addLocalInput` (at least one). */
  localPlayers: readonly number[];
  /**
   * Frames between `addLocalInput` and the frame the input applies to: hides that much latency
   * from the other peers' predictions.
   * @default 2
   */
  inputDelay?: number;
  /**
   * Most frames simulated past the last frame whose inputs are all confirmed (and so the deepest
   * rollback). `advanceFrame` refuses to go further: it waits for inputs instead.
   * @default 8
   */
  maxRollback?: number;
  /** Encodes inputs (for comparison and the wire). */
  inputCodec: RollbackInputCodec<Input>;
  /**
   * The input of a player before its first one (frames under the input delay).
   * @default inputCodec.read of zero bytes
   */
  neutralInput?: Input;
  /**
   * Guesses a player's input for a frame whose input has not arrived.
   * @default repeats `lastInput`, the player's last confirmed input
   */
  predictInput?: (lastInput: Input, player: number, frame: number) => Input;
  /** Snapshots the game state (a copy or a token that `load` restores). */
  save(): State;
  /** Restores a snapshot from `save`. */
  load(snapshot: State): void;
  /** Called when a snapshot leaves the ring, e.g. to return it to a pool. */
  discard?(snapshot: State): void;
  /**
   * Simulates one frame. Must be deterministic: depend only on the state and `inputs` (one per
   * player). `inputs` is reused: do not keep it.
   */
  advance(inputs: readonly Input[], frame: number): void;
  /** A 32-bit checksum of a snapshot; enables desync detection and the sync test. */
  checksum?(snapshot: State): number;
  /**
   * Frames between checksums of confirmed frames (frames `k × checksumInterval`).
   * @default 30
   */
  checksumInterval?: number;
  /**
   * Sync-test mode: after every frame, roll back `syncTestFrames` and resimulate, comparing
   * checksums; a mismatch (a simulation reading outside its state) is a `desync` event.
   * @default false
   */
  syncTest?: boolean;
  /**
   * Depth of the sync test's rollback.
   * @default maxRollback
   */
  syncTestFrames?: number;
}

/** A checksum mismatch: between this peer and another, or found by the sync test. */
export type RollbackDesync =
  | {
      readonly kind: 'peer';
      /** The frame whose start state was checksummed. */
      readonly frame: number;
      /** The remote player (peer) whose checksum differs. */
      readonly player: number;
      readonly localChecksum: number;
      readonly remoteChecksum: number;
    }
  | {
      readonly kind: 'sync-test';
      readonly frame: number;
      /** Checksum of the frame as first simulated. */
      readonly checksum: number;
      /** Checksum of the same frame after resimulation. */
      readonly resimulatedChecksum: number;
    };

/** Events of a {@link Rollback}. */
export interface RollbackEvents {
  [event: string]: unknown[];
  /** This peer's checksum of a confirmed frame, to send to the others. */
  checksum: [frame: number, checksum: number];
  /** Checksums differ: the simulation diverged. */
  desync: [desync: RollbackDesync];
  /** A misprediction was corrected: state loaded at `fromFrame`, `frames` frames resimulated. */
  rollback: [fromFrame: number, frames: number];
}

/** Counters of a {@link Rollback}. */
export interface RollbackStats {
  /** Frames advanced by `advanceFrame`. */
  framesAdvanced: number;
  /** `advanceFrame` calls refused while waiting for inputs. */
  stalls: number;
  /** Confirmed remote inputs that differed from the prediction used. */
  mispredictions: number;
  /** Rollbacks made (sync-test rollbacks excluded). */
  rollbacks: number;
  /** Frames resimulated by rollbacks and the sync test. */
  resimulatedFrames: number;
  /** Deepest rollback, in frames. */
  maxRollbackDepth: number;
  /** Checksums of confirmed frames computed. */
  checksums: number;
  /** Remote checksums compared with this peer's. */
  checksumsCompared: number;
  /** Remote checksums that could not be compared (too old, not a checksum frame, too many). */
  checksumsUnmatched: number;
  /** Desyncs detected (peer and sync test). */
  desyncs: number;
}

/** A GGPO-style rollback engine for one peer of a deterministic simulation. */
export interface Rollback<Input> extends Subscribable<RollbackEvents> {
  readonly players: number;
  readonly localPlayers: readonly number[];
  readonly inputDelay: number;
  readonly maxRollback: number;
  readonly inputCodec: RollbackInputCodec<Input>;
  /** The next frame to simulate (= frames simulated so far). */
  readonly currentFrame: number;
  /** The last frame whose inputs are all confirmed; -1 before any. */
  readonly confirmedFrame: number;
  /** True when `advanceFrame` would refuse: `maxRollback` frames past `confirmedFrame`. */
  readonly waitingForInputs: boolean;
  /**
   * How many frames this peer runs ahead of the furthest-behind peer, averaged over the last
   * 40 frames (GGPO time sync); negative when behind, 0 without reports.
   */
  readonly framesAhead: number;
  readonly stats: Readonly<RollbackStats>;
  /**
   * Schedules a local player's input at `currentFrame + inputDelay`. Returns false if that frame
   * already has one (a second call in one frame, or while waiting): the input is dropped.
   */
  addLocalInput(input: Input, player?: number): boolean;
  /**
   * Confirms a remote player's input. Frames must come in order: returns false for a frame
   * already confirmed, throws INVALID_ARGUMENT for a gap and LIMIT_EXCEEDED too far ahead.
   * A confirmed input that differs from its prediction rolls back at the next `advanceFrame`.
   */
  addRemoteInput(player: number, frame: number, input: Input): boolean;
  /**
   * Corrects mispredictions (load + resimulate), then simulates `currentFrame`. Returns false,
   * simulating nothing, while waiting for inputs (`maxRollback` frames past `confirmedFrame`).
   */
  advanceFrame(): boolean;
  /**
   * Applies pending corrections now (load + resimulate to `currentFrame`) without advancing, so
   * the live state reflects every input received; `advanceFrame` does this first anyway.
   */
  synchronize(): void;
  /** The last frame with a confirmed input of `player`; -1 before any. */
  lastInputFrame(player: number): number;
  /** Copies the encoded confirmed input of `player` at `frame` into `target`; false if not kept. */
  readInputBytes(player: number, frame: number, target: Uint8Array, offset: number): boolean;
  /**
   * Time sync: the frame a remote player is estimated to be at now (its reported frame plus the
   * one-way delay in frames) and its own advantage over this peer, as it reported it.
   */
  reportRemoteFrame(player: number, frame: number, remoteAdvantage: number): void;
  /** Latest estimate of (remote frame − local frame) for `player`, to report to it. */
  frameAdvantage(player: number): number;
  /**
   * Frames to wait (skip advancing) to let the peers behind catch up, like GGPO's timesync:
   * half the difference of both sides' averaged advantages; 0 unless at least 1 frame ahead.
   */
  recommendedWait(): number;
  /**
   * A remote peer's checksum of a confirmed frame; compared with this peer's own (at once, or
   * when this peer computes it). Throws LIMIT_EXCEEDED for a frame further ahead of
   * `currentFrame` than remote inputs may be (half the input window, at least 64 frames), which
   * no honest peer sends.
   */
  addRemoteChecksum(player: number, frame: number, checksum: number): void;
}

const NONE = -1;
/** Frames the time-sync averages cover (GGPO's FRAME_WINDOW_SIZE is 40). */
const TIME_SYNC_WINDOW = 40;
/** Local checksums kept for peers' late ones, in checksum frames. */
const CHECKSUMS_KEPT = 64;
/** Remote checksums waiting for this peer's, at most. */
const MAX_PENDING_CHECKSUMS = 4096;
const MAX_INPUT_BYTES = 1024;

function nextPowerOfTwo(value: number): number {
  let power = 1;
  while (power < value) power *= 2;
  return power;
}

function integerOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `createRollback: ${name} must be an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Creates a GGPO-style rollback engine: local inputs are delayed by `inputDelay` frames, remote
 * ones predicted until they arrive, and a wrong prediction is corrected by loading the snapshot
 * of its frame and resimulating. Transport-agnostic: see `createRollbackSession` for the wire.
 */
export function createRollback<State, Input>(
  options: RollbackOptions<State, Input>,
): Rollback<Input> {
  const players = integerOption('players', options.players, 1, 255);
  const inputDelay = integerOption('inputDelay', options.inputDelay ?? 2, 0, 64);
  const maxRollback = integerOption('maxRollback', options.maxRollback ?? 8, 1, 256);
  const checksumInterval = integerOption(
    'checksumInterval',
    options.checksumInterval ?? 30,
    1,
    2 ** 20,
  );
  const syncTest = options.syncTest === true;
  const syncTestFrames = integerOption(
    'syncTestFrames',
    options.syncTestFrames ?? maxRollback,
    1,
    256,
  );
  const codec = options.inputCodec;
  if (typeof codec !== 'object' || codec === null) {
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'createRollback: inputCodec is required');
  }
  const inputBytes = integerOption('inputCodec.byteLength', codec.byteLength, 1, MAX_INPUT_BYTES);
  const { save, load, advance, checksum, predictInput } = options;
  const discard = options.discard;
  if (syncTest && typeof checksum !== 'function') {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'createRollback: syncTest needs a checksum function to compare resimulated frames',
    );
  }
  const isLocal = new Uint8Array(players);
  const localPlayers = [...options.localPlayers];
  if (localPlayers.length === 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'createRollback: localPlayers must name at least one player',
    );
  }
  for (const player of localPlayers) {
    if (!Number.isInteger(player) || player < 0 || player >= players || isLocal[player]) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `createRollback: localPlayers must be distinct integers in [0, ${players - 1}], got [${localPlayers.join(', ')}]`,
      );
    }
    isLocal[player] = 1;
  }
  const remotePlayers: number[] = [];
  for (let player = 0; player < players; player++) if (!isLocal[player]) remotePlayers.push(player);

  // Inputs by frame in rings wide enough for the rollback window plus a remote peer running ahead.
  const windowSize = nextPowerOfTwo(
    Math.max(128, 4 * (Math.max(maxRollback, syncTest ? syncTestFrames : 0) + inputDelay + 2)),
  );
  const windowMask = windowSize - 1;
  const maxFramesAhead = windowSize / 2;
  const confirmedBytes = Array.from(
    { length: players },
    () => new Uint8Array(windowSize * inputBytes),
  );
  const predictedBytes = Array.from(
    { length: players },
    () => new Uint8Array(windowSize * inputBytes),
  );
  const confirmedInputs: Input[][] = Array.from({ length: players }, () => new Array(windowSize));
  const lastConfirmed = new Int32Array(players).fill(NONE);
  const neutralBytes = new Uint8Array(inputBytes);
  let neutralInput: Input;
  if (options.neutralInput !== undefined) {
    neutralInput = options.neutralInput;
    codec.write(neutralInput, neutralBytes, 0);
  } else {
    neutralInput = codec.read(neutralBytes, 0);
  }
  const frameInputs: Input[] = new Array(players).fill(neutralInput);

  // Snapshots of the state at the start of each recent frame.
  const snapshotSize = nextPowerOfTwo(Math.max(maxRollback, syncTest ? syncTestFrames : 0) + 2);
  const snapshotMask = snapshotSize - 1;
  const snapshots: (State | undefined)[] = new Array(snapshotSize);
  const snapshotFrames = new Int32Array(snapshotSize).fill(NONE);
  // Sync test: each frame's checksum as first simulated.
  const firstChecksums = new Float64Array(snapshotSize);

  let currentFrame = 0;
  let currentSaved = false;
  let firstIncorrectFrame = NONE;
  let nextChecksumFrame = checksumInterval;
  const localChecksums = new Map<number, number>();
  const pendingRemoteChecksums = new Map<number, number>();

  // Time sync: latest reports and per-frame samples of both sides' advantages.
  const remoteFrames = new Float64Array(players).fill(Number.NaN);
  const remoteAdvantages = new Float64Array(players);
  const localSamples = new Float64Array(players * TIME_SYNC_WINDOW);
  const remoteSamples = new Float64Array(players * TIME_SYNC_WINDOW);
  const sampleCounts = new Int32Array(players);
  const sampleCursors = new Int32Array(players);

  const stats: RollbackStats = {
    framesAdvanced: 0,
    stalls: 0,
    mispredictions: 0,
    rollbacks: 0,
    resimulatedFrames: 0,
    maxRollbackDepth: 0,
    checksums: 0,
    checksumsCompared: 0,
    checksumsUnmatched: 0,
    desyncs: 0,
  };
  const events = new Emitter<RollbackEvents>();

  const checkPlayer = (method: string, player: number): void => {
    if (!Number.isInteger(player) || player < 0 || player >= players) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `${method}: player must be an integer in [0, ${players - 1}], got ${String(player)}`,
      );
    }
  };
  const checkRemote = (method: string, player: number): void => {
    checkPlayer(method, player);
    if (isLocal[player]) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `${method}: player ${player} is local to this peer`,
      );
    }
  };
  const checkFrame = (method: string, frame: number): void => {
    if (!Number.isInteger(frame) || frame < 0) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `${method}: frame must be an integer >= 0, got ${String(frame)}`,
      );
    }
  };

  const confirmedFrame = (): number => {
    let min = Number.POSITIVE_INFINITY;
    for (let player = 0; player < players; player++) {
      const last = lastConfirmed[player]!;
      if (last < min) min = last;
    }
    return min;
  };

  const lastInputOf = (player: number): Input => {
    const last = lastConfirmed[player]!;
    return last === NONE ? neutralInput : confirmedInputs[player]![last & windowMask]!;
  };

  /** Confirms `frame` of a local player with the input of the frame before (a skipped frame). */
  const repeatLocalInput = (player: number, frame: number): void => {
    const slot = frame & windowMask;
    const last = lastConfirmed[player]!;
    const bytes = confirmedBytes[player]!;
    if (last === NONE) bytes.set(neutralBytes, slot * inputBytes);
    else
      bytes.copyWithin(
        slot * inputBytes,
        (last & windowMask) * inputBytes,
        ((last & windowMask) + 1) * inputBytes,
      );
    confirmedInputs[player]![slot] = lastInputOf(player);
    lastConfirmed[player] = frame;
  };

  const saveFrame = (frame: number, recordFirstChecksum: boolean): State => {
    const slot = frame & snapshotMask;
    const old = snapshots[slot];
    const snapshot = save();
    snapshots[slot] = snapshot;
    snapshotFrames[slot] = frame;
    if (discard && old !== undefined && old !== snapshot) discard(old);
    if (recordFirstChecksum && syncTest) firstChecksums[slot] = checksum!(snapshot) >>> 0;
    return snapshot;
  };

  const snapshotAt = (frame: number): State => {
    const slot = frame & snapshotMask;
    if (snapshotFrames[slot] !== frame) {
      throw new TickwireError(
        ErrorCode.INTERNAL,
        `rollback: no snapshot of frame ${frame} (current frame ${currentFrame})`,
      );
    }
    return snapshots[slot] as State;
  };

  /** Gathers the inputs of `frame` (confirmed or predicted) and simulates it. */
  const stepFrame = (frame: number): void => {
    const slot = frame & windowMask;
    const offset = slot * inputBytes;
    for (let player = 0; player < players; player++) {
      if (frame <= lastConfirmed[player]!) {
        frameInputs[player] = confirmedInputs[player]![slot]!;
        continue;
      }
      const last = lastInputOf(player);
      const predicted = predictedBytes[player]!;
      if (predictInput) {
        const guess = predictInput(last, player, frame);
        codec.write(guess, predicted, offset);
        frameInputs[player] = guess;
      } else {
        const lastFrame = lastConfirmed[player]!;
        if (lastFrame === NONE) predicted.set(neutralBytes, offset);
        else {
          const from = (lastFrame & windowMask) * inputBytes;
          predicted.set(confirmedBytes[player]!.subarray(from, from + inputBytes), offset);
        }
        frameInputs[player] = last;
      }
    }
    advance(frameInputs, frame);
  };

  const rollbackTo = (frame: number): void => {
    load(snapshotAt(frame));
    const depth = currentFrame - frame;
    for (let f = frame; f < currentFrame; f++) {
      if (f > frame) saveFrame(f, true);
      stepFrame(f);
    }
    currentSaved = false;
    firstIncorrectFrame = NONE;
    stats.rollbacks++;
    stats.resimulatedFrames += depth;
    if (depth > stats.maxRollbackDepth) stats.maxRollbackDepth = depth;
    events.emit('rollback', frame, depth);
  };

  const compareSyncTest = (frame: number, snapshot: State): void => {
    const value = checksum!(snapshot) >>> 0;
    const first = firstChecksums[frame & snapshotMask]!;
    if (value !== first) {
      stats.desyncs++;
      events.emit('desync', {
        kind: 'sync-test',
        frame,
        checksum: first,
        resimulatedChecksum: value,
      });
    }
  };

  /** GGPO's sync test: roll back `syncTestFrames`, resimulate, compare every frame's checksum. */
  const runSyncTest = (): void => {
    saveFrame(currentFrame, true);
    const distance = Math.min(syncTestFrames, currentFrame);
    const start = currentFrame - distance;
    load(snapshotAt(start));
    for (let f = start; f < currentFrame; f++) {
      if (f > start) compareSyncTest(f, saveFrame(f, false));
      stepFrame(f);
    }
    compareSyncTest(currentFrame, saveFrame(currentFrame, false));
    currentSaved = true;
    stats.resimulatedFrames += distance;
  };

  const compareChecksums = (frame: number, player: number, local: number, remote: number): void => {
    stats.checksumsCompared++;
    if (local === remote) return;
    stats.desyncs++;
    events.emit('desync', {
      kind: 'peer',
      frame,
      player,
      localChecksum: local,
      remoteChecksum: remote,
    });
  };

  /** Checksums every checksum frame now final: its inputs confirmed and its snapshot current. */
  const computeChecksums = (): void => {
    if (!checksum) return;
    const limit = Math.min(confirmedFrame() + 1, currentSaved ? currentFrame : currentFrame - 1);
    while (nextChecksumFrame <= limit) {
      const frame = nextChecksumFrame;
      nextChecksumFrame += checksumInterval;
      const slot = frame & snapshotMask;
      if (snapshotFrames[slot] !== frame) continue;
      const value = checksum(snapshots[slot] as State) >>> 0;
      stats.checksums++;
      localChecksums.set(frame, value);
      localChecksums.delete(frame - CHECKSUMS_KEPT * checksumInterval);
      events.emit('checksum', frame, value);
      if (pendingRemoteChecksums.size === 0) continue;
      for (const player of remotePlayers) {
        const key = frame * players + player;
        const remote = pendingRemoteChecksums.get(key);
        if (remote === undefined) continue;
        pendingRemoteChecksums.delete(key);
        compareChecksums(frame, player, value, remote);
      }
      // Remote checksums of frames this peer skipped can never be compared.
      for (const key of pendingRemoteChecksums.keys()) {
        if (Math.floor(key / players) < frame) {
          pendingRemoteChecksums.delete(key);
          stats.checksumsUnmatched++;
        }
      }
    }
  };

  const sampleTimeSync = (): void => {
    for (const player of remotePlayers) {
      const remoteFrame = remoteFrames[player]!;
      if (Number.isNaN(remoteFrame)) continue;
      const cursor = sampleCursors[player]!;
      sampleCursors[player] = (cursor + 1) % TIME_SYNC_WINDOW;
      const index = player * TIME_SYNC_WINDOW + cursor;
      localSamples[index] = remoteFrame - currentFrame;
      remoteSamples[index] = remoteAdvantages[player]!;
      if (sampleCounts[player]! < TIME_SYNC_WINDOW) sampleCounts[player]!++;
    }
  };

  const framesAhead = (): number => {
    let ahead = Number.NEGATIVE_INFINITY;
    for (const player of remotePlayers) {
      const count = sampleCounts[player]!;
      if (count === 0) continue;
      let local = 0;
      let remote = 0;
      // Each player's window fills from its slot 0, so its first `count` slots hold samples.
      const base = player * TIME_SYNC_WINDOW;
      for (let i = 0; i < count; i++) {
        local += localSamples[base + i]!;
        remote += remoteSamples[base + i]!;
      }
      // GGPO: split the difference of the two sides' views of who is ahead.
      const value = (remote - local) / count / 2;
      if (value > ahead) ahead = value;
    }
    return ahead === Number.NEGATIVE_INFINITY ? 0 : ahead;
  };

  const rollback: Rollback<Input> = {
    ...subscribable(events),
    players,
    localPlayers,
    inputDelay,
    maxRollback,
    inputCodec: codec,
    get currentFrame() {
      return currentFrame;
    },
    get confirmedFrame() {
      return confirmedFrame();
    },
    get waitingForInputs() {
      return currentFrame > confirmedFrame() + maxRollback;
    },
    get framesAhead() {
      return framesAhead();
    },
    stats,
    addLocalInput(input, player = localPlayers[0]!) {
      checkPlayer('addLocalInput', player);
      if (!isLocal[player]) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `addLocalInput: player ${player} is not local to this peer (local: ${localPlayers.join(', ')})`,
        );
      }
      const frame = currentFrame + inputDelay;
      if (lastConfirmed[player]! >= frame) return false;
      // Frames the caller skipped (and the first inputDelay frames) repeat the last input.
      for (let f = lastConfirmed[player]! + 1; f < frame; f++) repeatLocalInput(player, f);
      const slot = frame & windowMask;
      codec.write(input, confirmedBytes[player]!, slot * inputBytes);
      confirmedInputs[player]![slot] = input;
      lastConfirmed[player] = frame;
      return true;
    },
    addRemoteInput(player, frame, input) {
      checkRemote('addRemoteInput', player);
      checkFrame('addRemoteInput', frame);
      const last = lastConfirmed[player]!;
      if (frame <= last) return false;
      if (frame !== last + 1) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `addRemoteInput: input of player ${player} for frame ${frame} skips frames ${last + 1}–${frame - 1}; remote inputs must arrive in order`,
          { details: { player, frame, expected: last + 1 } },
        );
      }
      if (frame > currentFrame + maxFramesAhead) {
        throw new TickwireError(
          ErrorCode.LIMIT_EXCEEDED,
          `addRemoteInput: input of player ${player} for frame ${frame} is more than ${maxFramesAhead} frames ahead of frame ${currentFrame}`,
          { details: { player, frame, limit: currentFrame + maxFramesAhead } },
        );
      }
      const slot = frame & windowMask;
      const offset = slot * inputBytes;
      const bytes = confirmedBytes[player]!;
      codec.write(input, bytes, offset);
      confirmedInputs[player]![slot] = input;
      lastConfirmed[player] = frame;
      if (frame < currentFrame) {
        // Simulated with a prediction: a wrong one means rolling back to this frame.
        const predicted = predictedBytes[player]!;
        for (let i = 0; i < inputBytes; i++) {
          if (predicted[offset + i] !== bytes[offset + i]) {
            stats.mispredictions++;
            if (firstIncorrectFrame === NONE || frame < firstIncorrectFrame) {
              firstIncorrectFrame = frame;
            }
            break;
          }
        }
      }
      return true;
    },
    advanceFrame() {
      for (const player of localPlayers) {
        for (let f = lastConfirmed[player]! + 1; f <= currentFrame; f++)
          repeatLocalInput(player, f);
      }
      if (firstIncorrectFrame !== NONE) rollbackTo(firstIncorrectFrame);
      if (currentFrame > confirmedFrame() + maxRollback) {
        stats.stalls++;
        computeChecksums();
        return false;
      }
      if (!currentSaved) saveFrame(currentFrame, true);
      sampleTimeSync();
      stepFrame(currentFrame);
      currentFrame++;
      currentSaved = false;
      stats.framesAdvanced++;
      if (syncTest) runSyncTest();
      computeChecksums();
      return true;
    },
    synchronize() {
      if (firstIncorrectFrame !== NONE) rollbackTo(firstIncorrectFrame);
      computeChecksums();
    },
    lastInputFrame(player) {
      checkPlayer('lastInputFrame', player);
      return lastConfirmed[player]!;
    },
    readInputBytes(player, frame, target, offset) {
      checkPlayer('readInputBytes', player);
      const last = lastConfirmed[player]!;
      if (!Number.isInteger(frame) || frame < 0 || frame > last || frame <= last - windowSize) {
        return false;
      }
      const from = (frame & windowMask) * inputBytes;
      target.set(confirmedBytes[player]!.subarray(from, from + inputBytes), offset);
      return true;
    },
    reportRemoteFrame(player, frame, remoteAdvantage) {
      checkRemote('reportRemoteFrame', player);
      if (!Number.isFinite(frame) || !Number.isFinite(remoteAdvantage)) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `reportRemoteFrame: frame and remoteAdvantage must be finite, got ${frame} and ${remoteAdvantage}`,
        );
      }
      remoteFrames[player] = frame;
      remoteAdvantages[player] = remoteAdvantage;
    },
    frameAdvantage(player) {
      checkRemote('frameAdvantage', player);
      const remoteFrame = remoteFrames[player]!;
      return Number.isNaN(remoteFrame) ? 0 : remoteFrame - currentFrame;
    },
    recommendedWait() {
      const ahead = framesAhead();
      return ahead >= 1 ? Math.round(ahead) : 0;
    },
    addRemoteChecksum(player, frame, value) {
      checkRemote('addRemoteChecksum', player);
      checkFrame('addRemoteChecksum', frame);
      if (!Number.isFinite(value)) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `addRemoteChecksum: checksum must be a finite number, got ${value}`,
        );
      }
      // A peer checksums a frame only once it has this peer's inputs up to it, so an honest one
      // is at most inputDelay + 1 frames ahead. Far-future frames (a bug or a flood meant to fill
      // the waiting list) are refused like remote inputs beyond the same window.
      if (frame > currentFrame + maxFramesAhead) {
        throw new TickwireError(
          ErrorCode.LIMIT_EXCEEDED,
          `addRemoteChecksum: checksum of player ${player} for frame ${frame} is more than ${maxFramesAhead} frames ahead of frame ${currentFrame}`,
          { details: { player, frame, limit: currentFrame + maxFramesAhead } },
        );
      }
      const remote = value >>> 0;
      const local = localChecksums.get(frame);
      if (local !== undefined) compareChecksums(frame, player, local, remote);
      else if (
        frame < nextChecksumFrame ||
        frame % checksumInterval !== 0 ||
        pendingRemoteChecksums.size >= MAX_PENDING_CHECKSUMS
      ) {
        stats.checksumsUnmatched++;
      } else pendingRemoteChecksums.set(frame * players + player, remote);
    },
  };
  return rollback;
}
