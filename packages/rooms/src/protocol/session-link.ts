// A session's connection that outlives its transport connections. Every reliable frame sent
// through it is numbered implicitly (the reliable channel is ordered and lossless within one
// transport connection, so both sides can count) and kept until the peer says it arrived. When
// the transport connection drops, the link stays open; the next transport connection of the
// same session is attached with the peer's count, and the frames past it are sent again, in
// order: every reliable frame arrives exactly once across reconnections.
import {
  type Channel,
  CloseCode,
  type CloseInfo,
  type Connection,
  type ConnectionEvents,
  type ConnectionStats,
  checkCloseArgs,
  checkSend,
  createConnectionStats,
  Emitter,
  ErrorCode,
  FRAME_HEADER_BYTES,
  isTickwireError,
  Opcode,
  type Subscribable,
  subscribable,
  systemTime,
  TickwireError,
  type Timer,
  type TimeSource,
  toTickwireError,
} from '@tickwire/core';
import {
  type BatchEntry,
  CONTROL_OPCODES,
  decodeBatch,
  decodeReceived,
  encodeBatch,
  encodeReceived,
  UNBATCHABLE_OPCODES,
} from './frames.js';

export { CONTROL_OPCODES };

/** Options of {@link createSessionLink}. */
export interface SessionLinkOptions {
  /** The session id; also the link's connection id. */
  id: string;
  /** Which end: the client sends acknowledgements (Ping), the server answers them (Pong). */
  role: 'client' | 'server';
  /**
   * Largest message `send` accepts; it should not exceed the transports' limit.
   * @default 65536
   */
  maxMessageBytes?: number;
  /**
   * Bytes of sent reliable frames kept until the peer acknowledges them. Beyond it the link
   * closes with CloseCode.Backpressure: a peer that stays away too long or never acknowledges
   * cannot make the process buffer without bound.
   * @default 1048576
   */
  maxReplayBytes?: number;
  /**
   * Client role: an acknowledgement (Ping with the received count) is sent every this many ms
   * while a transport connection is attached; the server answers with its own count.
   * @default 1000
   */
  ackIntervalMs?: number;
  /**
   * Unreliable frames with these opcodes (a client's snapshot acks) wait up to `lazyDelayMs`
   * for another frame to ride with: both go out in one Batch message — one message for the
   * peer to read instead of two, as Quake's inputs carry the snapshot ack — or the waiting
   * frame goes alone when the time is up. A newer lazy frame of the same opcode replaces the
   * waiting one, so they must be cumulative, as acks are. @default none
   */
  lazyOpcodes?: readonly number[];
  /**
   * How long a lazy frame waits for company, ms, or a function asked each time a frame starts
   * waiting (0 or less: it goes at once). @default 25
   */
  lazyDelayMs?: number | (() => number);
  /** Clock and scheduler of the acknowledgement and lazy-frame timers. @default systemTime */
  time?: TimeSource;
}

/** Events of a {@link SessionLink}: a `Connection`'s, plus attach/detach and control frames. */
export interface SessionLinkEvents extends ConnectionEvents {
  /** A transport connection was attached; `replayed` frames were sent again. */
  attached: [connection: Connection, replayed: number];
  /** The transport connection closed; the link stays open for the next one. */
  detached: [info: CloseInfo];
  /** Hello, Welcome or Goodbye from the attached transport connection, left to the engine. */
  control: [frame: Uint8Array];
}

/** Live figures of the replay buffer. */
export interface SessionLinkCounters {
  /** Reliable frames sent through the link since it was created. */
  sent: number;
  /** Reliable frames received. */
  received: number;
  /** Frames sent again after a reattach. */
  replayed: number;
  /** Frames and bytes kept for replay, not yet acknowledged. */
  pending: number;
  pendingBytes: number;
  /** Transport connections attached so far. */
  attaches: number;
}

/** A `Connection` that survives reconnection, see the module comment. */
export interface SessionLink
  extends Omit<Connection, 'on' | 'once' | 'off'>,
    Subscribable<SessionLinkEvents> {
  /** The attached transport connection, or null between two of them. */
  readonly transport: Connection | null;
  readonly counters: Readonly<SessionLinkCounters>;
  /**
   * Attaches a transport connection (replacing the current one, whose events are no longer
   * listened to: close it with CloseCode.Replaced) and sends again every reliable frame past
   * `peerReceived`, the count the peer reported in its Hello or Welcome. Throws
   * CONNECTION_CLOSED on a closed link, CONFLICT when frames the peer lacks were already
   * dropped (it acknowledged them before, so it is lying or from another session), and
   * PROTOCOL_ERROR when the peer claims more frames than were sent.
   */
  attach(connection: Connection, peerReceived: number): void;
  /** Stops listening to the transport connection (it is gone); the link stays open. */
  detach(info?: CloseInfo): void;
}

const ZERO_STATS: Readonly<ConnectionStats> = /* @__PURE__ */ Object.freeze(
  createConnectionStats(),
);

/** Creates the link of one session, on either end. */
export function createSessionLink(options: SessionLinkOptions): SessionLink {
  const maxMessageBytes = options.maxMessageBytes ?? 65_536;
  const maxReplayBytes = options.maxReplayBytes ?? 1_048_576;
  const ackIntervalMs = options.ackIntervalMs ?? 1000;
  const lazyDelay = options.lazyDelayMs ?? 25;
  const lazyOpcodes: ReadonlySet<number> = new Set(options.lazyOpcodes ?? []);
  for (const opcode of lazyOpcodes)
    if (!Number.isInteger(opcode) || opcode < 0 || opcode > 255 || UNBATCHABLE_OPCODES.has(opcode))
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `session link: lazyOpcodes must hold data opcodes, got ${opcode}`,
      );
  const time = options.time ?? systemTime;
  const limits: [string, number][] = [
    ['maxMessageBytes', maxMessageBytes],
    ['maxReplayBytes', maxReplayBytes],
    ['ackIntervalMs', ackIntervalMs],
  ];
  // A function is asked each time a frame starts waiting; whatever it says is used.
  if (typeof lazyDelay !== 'function') limits.push(['lazyDelayMs', lazyDelay]);
  for (const [name, value] of limits) {
    if (!Number.isInteger(value) || value <= 0)
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `session link: ${name} must be a positive integer, got ${value}`,
      );
  }

  const emitter = new Emitter<SessionLinkEvents>();
  // Frames sent and not yet acknowledged: pending[i] is frame number acked + i + 1.
  let pending: Uint8Array[] = [];
  let head = 0;
  let acked = 0;
  let sent = 0;
  let received = 0;
  let replayed = 0;
  let attaches = 0;
  let pendingBytes = 0;
  let state: Connection['state'] = 'open';
  let transport: Connection | null = null;
  let unsubscribe: (() => void) | null = null;
  let ackTimer: Timer | null = null;
  /** Lazy frames waiting for company, and the timer that sends them alone. */
  let held: Uint8Array[] = [];
  let lazyTimer: Timer | null = null;

  const pendingCount = (): number => pending.length - head;

  const acknowledge = (count: number): void => {
    // A count below what is acknowledged is stale (a reordered or duplicated ack): ignore it.
    if (count <= acked) return;
    if (count > sent)
      throw new TickwireError(
        ErrorCode.PROTOCOL_ERROR,
        `session ${options.id}: peer acknowledged ${count} frames, only ${sent} were sent`,
      );
    while (acked < count) {
      pendingBytes -= pending[head++]!.byteLength;
      acked++;
    }
    if (head > 1024 && head * 2 > pending.length) {
      pending = pending.slice(head);
      head = 0;
    }
  };

  const stopAckTimer = (): void => {
    ackTimer?.cancel();
    ackTimer = null;
  };

  const dropHeld = (): void => {
    lazyTimer?.cancel();
    lazyTimer = null;
    held = [];
  };

  /** The transport connection while it is open, else null. */
  const live = (): Connection | null => (transport?.state === 'open' ? transport : null);

  /**
   * Whether `frame` fits in one Batch with the waiting frames on `current` (3 bytes of length
   * prefix at most per frame).
   */
  const fits = (current: Connection, frame: Uint8Array): boolean =>
    held.reduce((sum, waiting) => sum + waiting.byteLength + 3, 5 + frame.byteLength) <=
    current.maxMessageBytes;

  /**
   * Sends on the transport, throwing what its send throws for `frame`. Waiting lazy frames ride
   * along in a Batch when it fits; else they go first on their own (unreliable: a failure to
   * send them is no error).
   */
  const sendNow = (current: Connection, frame: Uint8Array, channel: Channel): boolean => {
    if (held.length === 0) return current.send(frame, channel);
    if (fits(current, frame)) {
      const entries: BatchEntry[] = held.map((lazy) => ({ frame: lazy, reliable: false }));
      entries.push({ frame, reliable: channel === 'reliable' });
      dropHeld();
      return current.send(encodeBatch(entries), channel);
    }
    lazyTimer?.cancel();
    flushHeld();
    return current.send(frame, channel);
  };

  const flushHeld = (): void => {
    lazyTimer = null;
    const current = live();
    const frames = held;
    held = [];
    if (frames.length === 0 || current === null) return;
    try {
      current.send(
        frames.length === 1
          ? frames[0]!
          : encodeBatch(frames.map((frame) => ({ frame, reliable: false }))),
        'unreliable',
      );
    } catch {
      // Unreliable frames may be lost; a closing connection detaches itself.
    }
  };

  const hold = (current: Connection, frame: Uint8Array): void => {
    // A newer frame of the same opcode replaces the waiting one (acks are cumulative).
    const same = held.findIndex((waiting) => waiting[0] === frame[0]);
    if (same !== -1) held.splice(same, 1);
    if (held.length > 0 && !fits(current, frame)) {
      lazyTimer?.cancel();
      flushHeld();
    }
    held.push(frame.slice());
    if (lazyTimer !== null) return;
    const delay = typeof lazyDelay === 'function' ? lazyDelay() : lazyDelay;
    if (delay > 0) lazyTimer = time.setTimeout(flushHeld, delay);
    else flushHeld();
  };

  const sendAck = (): void => {
    ackTimer = null;
    const current = live();
    if (current === null) return;
    try {
      current.send(encodeReceived(Opcode.Ping, received), 'reliable');
    } catch {
      // The connection is going away; its close event detaches it.
    }
    ackTimer = time.setTimeout(sendAck, ackIntervalMs);
  };

  const onControl = (connection: Connection, frame: Uint8Array): void => {
    const opcode = frame[0];
    if (opcode === Opcode.Ping || opcode === Opcode.Pong) {
      try {
        acknowledge(decodeReceived(frame));
      } catch (error) {
        emitter.emit('error', toTickwireError(error, ErrorCode.PROTOCOL_ERROR));
        link.close(CloseCode.ProtocolError, 'bad acknowledgement');
        return;
      }
      if (opcode === Opcode.Ping && options.role === 'server' && connection.state === 'open') {
        try {
          connection.send(encodeReceived(Opcode.Pong, received), 'reliable');
        } catch {
          // The connection is going away.
        }
      }
      return;
    }
    emitter.emit('control', frame);
  };

  /** Lets go of the transport connection and of what waits to go on it. */
  const release = (): void => {
    unsubscribe?.();
    unsubscribe = null;
    transport = null;
    stopAckTimer();
    dropHeld();
  };

  const detachInternal = (info: CloseInfo): void => {
    if (transport === null) return;
    release();
    emitter.emit('detached', info);
  };

  const closeLink = (info: CloseInfo): void => {
    if (state === 'closed') return;
    state = 'closed';
    release();
    pending = [];
    head = 0;
    pendingBytes = 0;
    emitter.emit('close', info);
  };

  const link: SessionLink = {
    id: options.id,
    get remoteAddress() {
      return transport?.remoteAddress ?? 'detached';
    },
    get state() {
      return state;
    },
    get bufferedAmount() {
      return transport?.bufferedAmount ?? 0;
    },
    maxMessageBytes,
    get stats() {
      return transport?.stats ?? ZERO_STATS;
    },
    get transport() {
      return transport;
    },
    get counters() {
      return {
        sent,
        received,
        replayed,
        pending: pendingCount(),
        pendingBytes,
        attaches,
      };
    },
    ...subscribable(emitter),

    send(data: Uint8Array, channel: Channel = 'reliable'): boolean {
      checkSend(options.id, state, data, channel, maxMessageBytes);
      if (data.byteLength < FRAME_HEADER_BYTES)
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `session link ${options.id}: a frame is shorter than its ${FRAME_HEADER_BYTES}-byte header`,
        );
      if (CONTROL_OPCODES.has(data[0]!))
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `session link ${options.id}: control frames (opcode ${data[0]}) go on the transport`,
        );
      if (data[0] === Opcode.Batch)
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `session link ${options.id}: cannot send a Batch (see lazyOpcodes)`,
        );
      if (channel === 'unreliable') {
        const current = live();
        if (current === null) return false;
        if (lazyOpcodes.has(data[0]!)) {
          hold(current, data);
          return true;
        }
        try {
          return sendNow(current, data, channel);
        } catch (error) {
          if (isTickwireError(error, ErrorCode.CONNECTION_CLOSED)) return false;
          throw error;
        }
      }
      const frame = data.slice();
      pending.push(frame);
      pendingBytes += frame.byteLength;
      sent++;
      if (pendingBytes > maxReplayBytes) {
        link.close(CloseCode.Backpressure, 'replay buffer full');
        return false;
      }
      const current = live();
      if (current !== null) {
        try {
          sendNow(current, frame, 'reliable');
        } catch (error) {
          // Kept for replay: the next transport connection carries it.
          if (!isTickwireError(error, ErrorCode.CONNECTION_CLOSED)) throw error;
        }
      }
      return true;
    },

    close(code: number = CloseCode.Normal, reason = ''): void {
      checkCloseArgs(code, reason);
      if (state === 'closed') return;
      live()?.close(code, reason);
      closeLink({ code, reason, local: true });
    },

    attach(connection: Connection, peerReceived: number): void {
      if (state !== 'open')
        throw new TickwireError(
          ErrorCode.CONNECTION_CLOSED,
          `session link ${options.id} is closed`,
        );
      if (!Number.isSafeInteger(peerReceived) || peerReceived < 0 || peerReceived > sent)
        throw new TickwireError(
          ErrorCode.PROTOCOL_ERROR,
          `session ${options.id}: peer reports ${peerReceived} frames received, ${sent} were sent`,
          { details: { peerReceived, sent } },
        );
      if (peerReceived < acked)
        throw new TickwireError(
          ErrorCode.CONFLICT,
          `session ${options.id}: peer reports ${peerReceived} frames received, below the ${acked} it acknowledged`,
          { details: { peerReceived, acked } },
        );
      if (transport !== null) detachInternal({ code: CloseCode.Replaced, reason: '', local: true });
      acknowledge(peerReceived);
      transport = connection;
      attaches++;
      const offMessage = connection.on('message', (data, channel) => {
        if (transport !== connection || data.byteLength === 0) return;
        if (CONTROL_OPCODES.has(data[0]!)) {
          onControl(connection, data);
          return;
        }
        if (data[0] === Opcode.Batch) {
          let entries: BatchEntry[];
          try {
            entries = decodeBatch(data, channel);
          } catch (error) {
            // Reliable frames may be in it: the count both ends keep can no longer agree.
            emitter.emit('error', error as TickwireError);
            link.close(CloseCode.ProtocolError, 'malformed batch');
            return;
          }
          for (const entry of entries) {
            if (transport !== connection) return;
            if (entry.reliable) received++;
            emitter.emit('message', entry.frame, entry.reliable ? 'reliable' : 'unreliable');
          }
          return;
        }
        if (channel === 'reliable') received++;
        emitter.emit('message', data, channel);
      });
      const offClose = connection.on('close', (info) => {
        if (transport === connection) detachInternal(info);
      });
      const offError = connection.on('error', (error) => emitter.emit('error', error));
      unsubscribe = () => {
        offMessage();
        offClose();
        offError();
      };
      let count = 0;
      for (let i = head; i < pending.length && connection.state === 'open'; i++) {
        try {
          connection.send(pending[i]!, 'reliable');
          count++;
        } catch (error) {
          if (!isTickwireError(error, ErrorCode.CONNECTION_CLOSED)) throw error;
          break;
        }
      }
      replayed += count;
      if (options.role === 'client') {
        stopAckTimer();
        ackTimer = time.setTimeout(sendAck, ackIntervalMs);
      }
      emitter.emit('attached', connection, count);
      if (connection.state === 'closed' && transport === connection)
        detachInternal({
          code: CloseCode.GoingAway,
          reason: 'closed while attaching',
          local: false,
        });
    },

    detach(info: CloseInfo = { code: CloseCode.GoingAway, reason: '', local: true }): void {
      detachInternal(info);
    },
  };
  return link;
}
