import {
  type Channel,
  type Clock,
  type CloseInfo,
  type Connection,
  Emitter,
  ErrorCode,
  type Logger,
  type Metrics,
  noopMetrics,
  Opcode,
  type Subscribable,
  silentLogger,
  subscribable,
  systemTime,
  TickwireError,
  toTickwireError,
} from '@tickwire/core';
import type { Rollback } from './rollback.js';

/** One remote peer of a {@link RollbackSession}: its connection and the players it runs. */
export interface RollbackPeer {
  readonly connection: Connection;
  /** Players whose inputs this peer sends (its local players). */
  readonly players: readonly number[];
}

/** Options of {@link createRollbackSession}. */
export interface RollbackSessionOptions<Input> {
  /** The rollback engine of this peer. */
  rollback: Rollback<Input>;
  /** Every other peer; together they must run every player not local to `rollback`. */
  peers: readonly RollbackPeer[];
  /**
   * Duration of one frame in ms, to turn the measured delay into frames for time sync.
   * @default 1000 / 60
   */
  frameDurationMs?: number;
  /**
   * Most frames of unacknowledged inputs one message carries (redundancy against loss).
   * @default 32
   */
  maxFramesPerMessage?: number;
  /** Clock of the RTT measurement. @default systemTime */
  time?: Clock;
  /** Where rejected messages are logged (rate-limited). @default silentLogger */
  logger?: Logger;
  /** Counters `tickwire_rollback_bad_messages_total{peer}` and messages sent / received. */
  metrics?: Metrics;
}

/** What a {@link RollbackSession} knows of one peer. */
export interface RollbackPeerState {
  /** Smoothed round-trip time in ms (RFC 6298 SRTT), 0 until measured. */
  readonly rttMs: number;
  /** The last frame of this peer's local inputs the peer acknowledged; -1 before any. */
  readonly ackedFrame: number;
  /** Messages from this peer rejected as malformed or breaking the protocol. */
  readonly badMessages: number;
  /** True once the connection closed. */
  readonly closed: boolean;
}

/** Counters of a {@link RollbackSession}. */
export interface RollbackSessionStats {
  messagesSent: number;
  messagesReceived: number;
  /** Unreliable sends the transport dropped under backpressure. */
  sendsDropped: number;
  /** Messages rejected (all peers). */
  badMessages: number;
  /** Remote inputs confirmed from messages (redundant copies excluded). */
  inputsReceived: number;
  checksumsSent: number;
  checksumsReceived: number;
}

/** Events of a {@link RollbackSession}. */
export interface RollbackSessionEvents {
  [event: string]: unknown[];
  /** A message from `peer` (its index in `peers`) was rejected; the session goes on. */
  error: [error: TickwireError, peer: number];
  /** The connection to `peer` closed. */
  disconnect: [peer: number, info: CloseInfo];
}

/** Rollback netcode over core connections: inputs, acks, time sync and checksums. */
export interface RollbackSession extends Subscribable<RollbackSessionEvents> {
  /**
   * Sends each peer its message: unacknowledged local inputs, the ack of its inputs, this
   * peer's frame and advantage; and new checksums. Call once per tick, advanced or not.
   */
  update(): void;
  /** Per peer, in the order of `peers`. */
  readonly peers: readonly RollbackPeerState[];
  readonly stats: Readonly<RollbackSessionStats>;
  /** Stops listening to the connections (does not close them). Idempotent. */
  close(): void;
}

/** Message kinds after the `[Opcode.Input][flags]` header. */
const Kind = { Inputs: 1, Checksums: 2 } as const;
/** Header of an inputs message, before the player ids and the inputs (see `encodeInputs`). */
const INPUTS_HEADER_BYTES = 29;
const CHECKSUMS_HEADER_BYTES = 4;
const CHECKSUM_ENTRY_BYTES = 8;
const MAX_CHECKSUMS_PER_MESSAGE = 255;
/** Advantage on the wire: int16 in 1/256 frames. */
const ADVANTAGE_SCALE = 256;
const NO_ECHO = 0xffff;
const RTT_GAIN = 0.125; // 1/8 as a literal: a computed value would stay in every bundle

interface PeerState extends RollbackPeerState {
  rttMs: number;
  ackedFrame: number;
  badMessages: number;
  closed: boolean;
  /** Sender clock (ms mod 2^32) of the last message from this peer, and when it arrived here. */
  echoTimeMs: number;
  echoReceivedAtMs: number;
  hasEcho: boolean;
}

/**
 * Runs a {@link Rollback} over one {@link Connection} per remote peer (a full mesh).
 *
 * Wire format, little-endian, every message `[Opcode.Input u8][flags u8 = 0][kind u8]`:
 * - kind 1, inputs (unreliable channel): `playerCount u8, senderFrame i32, advantage i16`
 *   (1/256 frames), `ackFrame i32` (last frame of the receiver's inputs the sender has),
 *   `sendTimeMs u32, echoTimeMs u32, echoHoldMs u16` (RTT probe, 0xffff: no echo),
 *   `startFrame i32, frameCount u8`, player ids (u8 each), then `frameCount × playerCount`
 *   encoded inputs, frame-major. Every message repeats all unacknowledged inputs, so a lost one
 *   costs nothing once the next arrives.
 * - kind 2, checksums (reliable channel): `count u8`, then `count × (frame i32, checksum u32)`.
 */
export function createRollbackSession<Input>(
  options: RollbackSessionOptions<Input>,
): RollbackSession {
  const { rollback } = options;
  const codec = rollback.inputCodec;
  const inputBytes = codec.byteLength;
  const frameDurationMs = options.frameDurationMs ?? 1000 / 60;
  if (!(Number.isFinite(frameDurationMs) && frameDurationMs > 0)) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `createRollbackSession: frameDurationMs must be a finite number > 0, got ${frameDurationMs}`,
    );
  }
  const maxFrames = options.maxFramesPerMessage ?? 32;
  if (!Number.isInteger(maxFrames) || maxFrames < 1 || maxFrames > 255) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `createRollbackSession: maxFramesPerMessage must be an integer in [1, 255], got ${maxFrames}`,
    );
  }
  const time = options.time ?? systemTime;
  const logger = options.logger ?? silentLogger;
  const metrics = options.metrics ?? noopMetrics;
  const badMessagesCounter = metrics.counter('tickwire_rollback_bad_messages_total', {
    help: 'Rollback session messages rejected as malformed or breaking the protocol',
  });
  const sentCounter = metrics.counter('tickwire_rollback_messages_sent_total', {
    help: 'Rollback session messages sent',
  });
  const receivedCounter = metrics.counter('tickwire_rollback_messages_received_total', {
    help: 'Rollback session messages received',
  });

  const localPlayers = rollback.localPlayers;
  const owner = new Int32Array(rollback.players).fill(-1);
  for (const player of localPlayers) owner[player] = -2;
  options.peers.forEach((peer, index) => {
    if (peer.players.length === 0) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `createRollbackSession: peer ${index} runs no player`,
      );
    }
    for (const player of peer.players) {
      if (
        !Number.isInteger(player) ||
        player < 0 ||
        player >= rollback.players ||
        owner[player] !== -1
      ) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `createRollbackSession: peer ${index}: player ${player} is out of range, local, or run by another peer`,
        );
      }
      owner[player] = index;
    }
  });
  const unowned = [...owner.keys()].filter((player) => owner[player] === -1);
  if (unowned.length > 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `createRollbackSession: no peer runs player(s) ${unowned.join(', ')}`,
    );
  }

  const outgoingBytes = INPUTS_HEADER_BYTES + localPlayers.length * (1 + maxFrames * inputBytes);
  for (const [index, peer] of options.peers.entries()) {
    if (outgoingBytes > peer.connection.maxMessageBytes) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `createRollbackSession: an inputs message of ${outgoingBytes} bytes exceeds peer ${index}'s maxMessageBytes ${peer.connection.maxMessageBytes}; lower maxFramesPerMessage`,
      );
    }
  }
  const buffer = new Uint8Array(
    Math.max(
      outgoingBytes,
      CHECKSUMS_HEADER_BYTES + MAX_CHECKSUMS_PER_MESSAGE * CHECKSUM_ENTRY_BYTES,
    ),
  );
  const view = new DataView(buffer.buffer);

  const events = new Emitter<RollbackSessionEvents>();
  const stats: RollbackSessionStats = {
    messagesSent: 0,
    messagesReceived: 0,
    sendsDropped: 0,
    badMessages: 0,
    inputsReceived: 0,
    checksumsSent: 0,
    checksumsReceived: 0,
  };
  const peerStates: PeerState[] = options.peers.map(() => ({
    rttMs: 0,
    ackedFrame: -1,
    badMessages: 0,
    closed: false,
    echoTimeMs: 0,
    echoReceivedAtMs: 0,
    hasEcho: false,
  }));
  // Checksums computed since the last update, sent to every peer then.
  let checksumFrames: number[] = [];
  let checksumValues: number[] = [];
  const unsubscribers: (() => void)[] = [];
  let closed = false;

  unsubscribers.push(
    rollback.on('checksum', (frame, value) => {
      checksumFrames.push(frame);
      checksumValues.push(value);
    }),
  );

  const lastLocalFrame = (): number => {
    let min = Number.POSITIVE_INFINITY;
    for (const player of localPlayers) min = Math.min(min, rollback.lastInputFrame(player));
    return min;
  };
  const lastFrameOf = (peer: RollbackPeer): number => {
    let min = Number.POSITIVE_INFINITY;
    for (const player of peer.players) min = Math.min(min, rollback.lastInputFrame(player));
    return min;
  };

  const reject = (index: number, error: TickwireError): void => {
    const state = peerStates[index]!;
    state.badMessages++;
    stats.badMessages++;
    badMessagesCounter.inc(1, { peer: index });
    // Rate limit: log the 1st, 2nd, 4th, 8th… rejection of each peer.
    if ((state.badMessages & (state.badMessages - 1)) === 0) {
      logger.warn(
        { peer: index, code: error.code, count: state.badMessages },
        `rollback session: rejected message from peer ${index}: ${error.message}`,
      );
    }
    events.emit('error', error, index);
  };

  const fail = (code: ErrorCode, index: number, message: string): never => {
    throw new TickwireError(code, `rollback message from peer ${index}: ${message}`);
  };

  const receiveInputs = (index: number, data: Uint8Array, input: DataView): void => {
    const peer = options.peers[index]!;
    const state = peerStates[index]!;
    if (data.byteLength < INPUTS_HEADER_BYTES) {
      fail(
        ErrorCode.DECODE_FAILED,
        index,
        `inputs message of ${data.byteLength} bytes is shorter than its ${INPUTS_HEADER_BYTES}-byte header`,
      );
    }
    const playerCount = input.getUint8(3);
    const senderFrame = input.getInt32(4, true);
    const advantage = input.getInt16(8, true) / ADVANTAGE_SCALE;
    const ackFrame = input.getInt32(10, true);
    const sendTimeMs = input.getUint32(14, true);
    const echoTimeMs = input.getUint32(18, true);
    const echoHoldMs = input.getUint16(22, true);
    const startFrame = input.getInt32(24, true);
    const frameCount = input.getUint8(28);
    const expected = INPUTS_HEADER_BYTES + playerCount * (1 + frameCount * inputBytes);
    if (data.byteLength !== expected) {
      fail(
        ErrorCode.DECODE_FAILED,
        index,
        `inputs message is ${data.byteLength} bytes, its header says ${expected}`,
      );
    }
    if (playerCount !== peer.players.length) {
      fail(
        ErrorCode.PROTOCOL_ERROR,
        index,
        `carries ${playerCount} players, the peer runs ${peer.players.length}`,
      );
    }
    for (let i = 0; i < playerCount; i++) {
      if (data[INPUTS_HEADER_BYTES + i] !== peer.players[i]) {
        fail(
          ErrorCode.PROTOCOL_ERROR,
          index,
          `player ${data[INPUTS_HEADER_BYTES + i]} at position ${i} is not the peer's player ${peer.players[i]}`,
        );
      }
    }
    if (senderFrame < 0 || startFrame < 0 || ackFrame < -1) {
      fail(
        ErrorCode.PROTOCOL_ERROR,
        index,
        `negative frame (sender ${senderFrame}, start ${startFrame}, ack ${ackFrame})`,
      );
    }
    if (ackFrame > lastLocalFrame()) {
      fail(
        ErrorCode.PROTOCOL_ERROR,
        index,
        `acknowledges frame ${ackFrame}, never sent (last ${lastLocalFrame()})`,
      );
    }
    const have = lastFrameOf(peer);
    if (frameCount > 0 && startFrame > have + 1) {
      fail(
        ErrorCode.PROTOCOL_ERROR,
        index,
        `inputs start at frame ${startFrame}, frames ${have + 1}–${startFrame - 1} were never sent`,
      );
    }

    if (ackFrame > state.ackedFrame) state.ackedFrame = ackFrame;
    const nowMs = time.now();
    if (echoHoldMs !== NO_ECHO) {
      const sample = ((Math.floor(nowMs) >>> 0) - echoTimeMs - echoHoldMs) >>> 0;
      // A sample over a minute is a wrapped clock or garbage: ignore it.
      if (sample < 60_000) {
        state.rttMs = state.rttMs === 0 ? sample : state.rttMs + RTT_GAIN * (sample - state.rttMs);
      }
    }
    state.echoTimeMs = sendTimeMs;
    state.echoReceivedAtMs = nowMs;
    state.hasEcho = true;

    const payload = INPUTS_HEADER_BYTES + playerCount;
    for (let k = 0; k < frameCount; k++) {
      const frame = startFrame + k;
      for (let i = 0; i < playerCount; i++) {
        const player = peer.players[i]!;
        if (frame <= rollback.lastInputFrame(player)) continue;
        let value: Input;
        try {
          value = codec.read(data, payload + (k * playerCount + i) * inputBytes);
        } catch (error) {
          throw toTickwireError(
            error,
            ErrorCode.DECODE_FAILED,
            `rollback message from peer ${index}: input of player ${player} for frame ${frame} does not decode: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        if (rollback.addRemoteInput(player, frame, value)) stats.inputsReceived++;
      }
    }
    // GGPO estimates the remote frame from its report plus the one-way delay.
    const remoteFrame = senderFrame + state.rttMs / 2 / frameDurationMs;
    for (const player of peer.players) rollback.reportRemoteFrame(player, remoteFrame, advantage);
  };

  const receiveChecksums = (index: number, data: Uint8Array, input: DataView): void => {
    const peer = options.peers[index]!;
    if (data.byteLength < CHECKSUMS_HEADER_BYTES) {
      fail(
        ErrorCode.DECODE_FAILED,
        index,
        `checksums message of ${data.byteLength} bytes is shorter than its header`,
      );
    }
    const count = input.getUint8(3);
    const expected = CHECKSUMS_HEADER_BYTES + count * CHECKSUM_ENTRY_BYTES;
    if (data.byteLength !== expected) {
      fail(
        ErrorCode.DECODE_FAILED,
        index,
        `checksums message is ${data.byteLength} bytes, its header says ${expected}`,
      );
    }
    for (let i = 0; i < count; i++) {
      const offset = CHECKSUMS_HEADER_BYTES + i * CHECKSUM_ENTRY_BYTES;
      const frame = input.getInt32(offset, true);
      if (frame < 0) fail(ErrorCode.PROTOCOL_ERROR, index, `checksum of negative frame ${frame}`);
      stats.checksumsReceived++;
      rollback.addRemoteChecksum(peer.players[0]!, frame, input.getUint32(offset + 4, true));
    }
  };

  const receive = (index: number, data: Uint8Array, _channel: Channel): void => {
    if (closed) return;
    stats.messagesReceived++;
    receivedCounter.inc();
    try {
      if (data.byteLength < 3) {
        fail(
          ErrorCode.DECODE_FAILED,
          index,
          `message of ${data.byteLength} bytes is shorter than the 3-byte header`,
        );
      }
      if (data[0] !== Opcode.Input) {
        fail(
          ErrorCode.PROTOCOL_ERROR,
          index,
          `opcode 0x${data[0]!.toString(16)} is not Input (0x14)`,
        );
      }
      if (data[1] !== 0)
        fail(ErrorCode.PROTOCOL_ERROR, index, `unknown flags 0x${data[1]!.toString(16)}`);
      const input = new DataView(data.buffer, data.byteOffset, data.byteLength);
      if (data[2] === Kind.Inputs) receiveInputs(index, data, input);
      else if (data[2] === Kind.Checksums) receiveChecksums(index, data, input);
      else fail(ErrorCode.PROTOCOL_ERROR, index, `unknown message kind ${data[2]}`);
    } catch (error) {
      reject(index, toTickwireError(error, ErrorCode.PROTOCOL_ERROR));
    }
  };

  options.peers.forEach((peer, index) => {
    unsubscribers.push(
      peer.connection.on('message', (data, channel) => receive(index, data, channel)),
    );
    unsubscribers.push(
      peer.connection.on('close', (info) => {
        peerStates[index]!.closed = true;
        events.emit('disconnect', index, info);
      }),
    );
  });

  const send = (connection: Connection, length: number, channel: Channel): void => {
    stats.messagesSent++;
    sentCounter.inc();
    if (!connection.send(buffer.subarray(0, length), channel)) stats.sendsDropped++;
  };

  const sendInputs = (index: number): void => {
    const peer = options.peers[index]!;
    const state = peerStates[index]!;
    const nowMs = time.now();
    const last = lastLocalFrame();
    const startFrame = state.ackedFrame + 1;
    let frameCount = Math.max(0, Math.min(last - state.ackedFrame, maxFrames));
    const playerCount = localPlayers.length;
    const payload = INPUTS_HEADER_BYTES + playerCount;
    for (let k = 0; k < frameCount; k++) {
      let kept = true;
      for (let i = 0; i < playerCount && kept; i++) {
        const offset = payload + (k * playerCount + i) * inputBytes;
        kept = rollback.readInputBytes(localPlayers[i]!, startFrame + k, buffer, offset);
      }
      if (!kept) {
        frameCount = k;
        break;
      }
    }
    const advantage = Math.round(rollback.frameAdvantage(peer.players[0]!) * ADVANTAGE_SCALE);
    buffer[0] = Opcode.Input;
    buffer[1] = 0;
    buffer[2] = Kind.Inputs;
    buffer[3] = playerCount;
    view.setInt32(4, rollback.currentFrame, true);
    view.setInt16(8, Math.max(-32768, Math.min(32767, advantage)), true);
    view.setInt32(10, lastFrameOf(peer), true);
    view.setUint32(14, Math.floor(nowMs) >>> 0, true);
    view.setUint32(18, state.echoTimeMs, true);
    const holdMs = Math.floor(nowMs - state.echoReceivedAtMs);
    view.setUint16(22, state.hasEcho && holdMs < NO_ECHO ? holdMs : NO_ECHO, true);
    view.setInt32(24, startFrame, true);
    buffer[28] = frameCount;
    for (let i = 0; i < playerCount; i++) buffer[INPUTS_HEADER_BYTES + i] = localPlayers[i]!;
    send(peer.connection, payload + frameCount * playerCount * inputBytes, 'unreliable');
  };

  const sendChecksums = (connection: Connection): void => {
    for (let from = 0; from < checksumFrames.length; from += MAX_CHECKSUMS_PER_MESSAGE) {
      const count = Math.min(MAX_CHECKSUMS_PER_MESSAGE, checksumFrames.length - from);
      buffer[0] = Opcode.Input;
      buffer[1] = 0;
      buffer[2] = Kind.Checksums;
      buffer[3] = count;
      for (let i = 0; i < count; i++) {
        const offset = CHECKSUMS_HEADER_BYTES + i * CHECKSUM_ENTRY_BYTES;
        view.setInt32(offset, checksumFrames[from + i]!, true);
        view.setUint32(offset + 4, checksumValues[from + i]!, true);
      }
      stats.checksumsSent += count;
      send(connection, CHECKSUMS_HEADER_BYTES + count * CHECKSUM_ENTRY_BYTES, 'reliable');
    }
  };

  return {
    ...subscribable(events),
    peers: peerStates,
    stats,
    update() {
      if (closed) return;
      options.peers.forEach((peer, index) => {
        if (peer.connection.state !== 'open') return;
        sendInputs(index);
        if (checksumFrames.length > 0) sendChecksums(peer.connection);
      });
      if (checksumFrames.length > 0) {
        checksumFrames = [];
        checksumValues = [];
      }
    },
    close() {
      if (closed) return;
      closed = true;
      for (const unsubscribe of unsubscribers) unsubscribe();
    },
  };
}
