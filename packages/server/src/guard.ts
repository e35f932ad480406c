// The server's view of one transport connection: every frame passes the rate limiter before
// anyone sees it, and frames in and out are counted per opcode (flushed to the metrics in
// batches, so a message costs two array increments, not a labelled counter update).
import {
  type Channel,
  type Connection,
  type ConnectionEvents,
  Emitter,
  ListenerList,
  Opcode,
  subscribableWith,
} from '@tickwire/core';
import { type BatchEntry, decodeBatch } from '@tickwire/rooms/protocol';

/** Per-opcode frame and byte counts, indexed by opcode. */
export interface FrameCounts {
  readonly messagesIn: Float64Array;
  readonly bytesIn: Float64Array;
  readonly messagesOut: Float64Array;
  readonly bytesOut: Float64Array;
}

export function createFrameCounts(): FrameCounts {
  return {
    messagesIn: new Float64Array(256),
    bytesIn: new Float64Array(256),
    messagesOut: new Float64Array(256),
    bytesOut: new Float64Array(256),
  };
}

/** What the guard does with an incoming frame. */
export type Admission = 'deliver' | 'drop';

/** A transport connection seen through the guard. */
export interface GuardedConnection extends Connection {
  /** The transport connection underneath. */
  readonly inner: Connection;
  /** Stops listening to the inner connection. */
  release(): void;
}

/**
 * Wraps `inner`: each incoming frame is counted, then `admit` decides whether listeners see
 * it; each sent frame is counted. A Batch is taken apart here, so its frames are counted,
 * rate-limited and delivered one by one, each with the channel it was sent on (the Batch
 * itself is counted too, with its framing bytes); a malformed one goes up whole, to be refused
 * by the session link (or by the engine before the handshake ends).
 */
export function guardConnection(
  inner: Connection,
  counts: FrameCounts,
  admit: (data: Uint8Array, channel: Channel) => Admission,
): GuardedConnection {
  const emitter = new Emitter<ConnectionEvents>();
  // 'message' listeners are called here directly, not through the emitter (every frame).
  const listeners = new ListenerList<[data: Uint8Array, channel: Channel]>();
  const receive = (data: Uint8Array, channel: Channel): void => {
    const opcode = data.byteLength > 0 ? data[0]! : 0;
    counts.messagesIn[opcode]!++;
    counts.bytesIn[opcode]! += data.byteLength;
    if (admit(data, channel) !== 'deliver') return;
    const items = listeners.items;
    for (let i = 0; i < items.length; i++) {
      try {
        items[i]!(data, channel);
      } catch (error) {
        listeners.report(error);
      }
    }
  };
  const offMessage = inner.on('message', (data, channel) => {
    if (data[0] !== Opcode.Batch) {
      receive(data, channel);
      return;
    }
    let entries: BatchEntry[];
    try {
      entries = decodeBatch(data, channel);
    } catch {
      receive(data, channel);
      return;
    }
    let framing = data.byteLength;
    for (let i = 0; i < entries.length; i++) framing -= entries[i]!.frame.byteLength;
    counts.messagesIn[Opcode.Batch]!++;
    counts.bytesIn[Opcode.Batch]! += framing;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      receive(entry.frame, entry.reliable ? 'reliable' : 'unreliable');
    }
  });
  const offClose = inner.on('close', (info) => emitter.emit('close', info));
  const offError = inner.on('error', (error) => emitter.emit('error', error));
  return {
    ...subscribableWith(emitter, 'message', listeners),
    inner,
    get id() {
      return inner.id;
    },
    get remoteAddress() {
      return inner.remoteAddress;
    },
    get state() {
      return inner.state;
    },
    get bufferedAmount() {
      return inner.bufferedAmount;
    },
    get maxMessageBytes() {
      return inner.maxMessageBytes;
    },
    get stats() {
      return inner.stats;
    },
    send(data, channel) {
      const sent = inner.send(data, channel);
      if (sent) {
        const opcode = data[0] ?? 0;
        counts.messagesOut[opcode]!++;
        counts.bytesOut[opcode]! += data.byteLength;
      }
      return sent;
    },
    close(code, reason) {
      inner.close(code, reason);
    },
    release() {
      offMessage();
      offClose();
      offError();
    },
  };
}
