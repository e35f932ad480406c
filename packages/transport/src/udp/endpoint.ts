// One end of a UDP connection as a state machine, independent of sockets and timers: the owner
// feeds it packets and the time, it hands back packets to send, messages to deliver and its close.
import {
  type Channel,
  CloseCode,
  type ConnectionStats,
  createConnectionStats,
} from '@tickwire/core';
import {
  ACK_BITS,
  type LossTiming,
  ReceivedPackets,
  ReceiveStatus,
  type SentPacket,
  SentPackets,
} from './ack.js';
import { CongestionController } from './congestion.js';
import { FragmentResult, Reassembler } from './fragment.js';
import { Pacer } from './pacer.js';
import {
  decodeError,
  MessageReader,
  messageHeaderBytes,
  PacketType,
  PLAIN_HEADER_BYTES,
  PLAIN_SEQUENCE_OFFSET,
  readDisconnect,
  readU16,
  readU32,
  SESSION_OFFSET,
  WireChannel,
  writeHeader,
  writeMessageHeader,
  writeU16,
  writeU32,
} from './packet.js';
import { ByteQueue, StampedQueue } from './queue.js';
import { RttEstimator } from './rtt.js';
import { SEQUENCE_MASK, sequenceDiff, sequenceGreaterThan } from './sequence.js';

/** Message ids in flight per reliable channel (the send and receive windows). */
export const RELIABLE_WINDOW = 1024;
/** An ack-only packet goes out at once after this many unacknowledged ack-eliciting packets. */
export const ACK_EVERY_PACKETS = 16;
/** Fragmented reliable messages in flight at once (the receiver holds twice as many). */
export const MAX_FRAGMENTED_IN_FLIGHT = 4;
/** Packets in flight at most (a window under the sent-packet ring, whose overflow means loss). */
export const MAX_IN_FLIGHT_PACKETS = 768;
/** Copies of a DISCONNECT packet sent when closing. */
export const DISCONNECT_COPIES = 3;
/** Packets one `poll` may send (the pacer normally stops it much earlier). */
const MAX_PACKETS_PER_POLL = 4096;
/** Packets the loss-rate EWMA spans: each resolved packet weighs 1/32. */
const LOSS_RATE_SPAN = 32;
/** Size of the slabs packets are written into. */
const SLAB_BYTES = 65_536;
/** Bytes of message header of a fragment. */
const FRAGMENT_HEADER_BYTES = messageHeaderBytes(0, true);

/** Live figures of a UDP connection: core's plus the reliability layer's. */
export interface UdpConnectionStats extends ConnectionStats {
  /** Reliable message parts sent again after a loss or timeout. */
  retransmissions: number;
  /** Packets dropped as duplicates or too old. */
  duplicatePackets: number;
  /** Packets that failed authentication or were replayed (encrypted connections). */
  rejectedPackets: number;
  /** Current paced send rate in bytes per second. */
  sendRateBytesPerSec: number;
  /** Current retransmission timeout in ms. */
  rtoMs: number;
}

/** Settings of an {@link Endpoint} (already validated). */
export interface EndpointConfig {
  protocolId: number;
  sessionId: number;
  /** Largest datagram in bytes. */
  mtuBytes: number;
  /** Bytes encryption adds to a packet (0 when plain). */
  sealOverheadBytes: number;
  /** Largest message accepted from the peer. */
  maxMessageBytes: number;
  timeoutMs: number;
  keepAliveIntervalMs: number;
  closeTimeoutMs: number;
  ackDelayMs: number;
  initialRtoMs: number;
  minRtoMs: number;
  maxRtoMs: number;
  initialSendBytesPerSec: number;
  minSendBytesPerSec: number;
  maxSendBytesPerSec: number;
  fragmentTimeoutMs: number;
  unreliableDropThresholdBytes: number;
}

/** What an {@link Endpoint} asks of its owner. */
export interface EndpointHost {
  /** Sends one packet in the plain format: `bytes[0, length)`, which the host may keep. */
  transmitPacket(bytes: Uint8Array, length: number): void;
  /** A message arrived; the bytes belong to the receiver. */
  deliverMessage(data: Uint8Array, channel: Channel): void;
  /** The endpoint closed (after its DISCONNECT packets, if any, were transmitted). */
  endpointClosed(code: number, reason: string, local: boolean): void;
}

/** What {@link Endpoint.receive} did with a packet that was not processed. */
export const EndpointDrop = {
  None: 0,
  Duplicate: 1,
  Closed: 2,
} as const;

/** One of the {@link EndpointDrop} values. */
export type EndpointDrop = (typeof EndpointDrop)[keyof typeof EndpointDrop];

/** A fragmented reliable message: done when all its parts are acked. */
interface FragmentedMessage {
  channel: number;
  id: number;
  remaining: number;
  /** Counted in the fragmented-in-flight limit. */
  counted: boolean;
}

/** One reliable message, or one fragment of one. */
class ReliableChunk {
  acked = false;
  sendCount = 0;
  lastSentMs = 0;
  lastPacketSequence = -1;
  retransmitQueued = false;
  constructor(
    readonly channel: number,
    readonly id: number,
    readonly fragmentIndex: number,
    readonly fragmentCount: number,
    readonly data: Uint8Array,
    readonly parent: FragmentedMessage | null,
  ) {}
}

/** Send window of one reliable channel: ids assigned and sent, and the oldest not acknowledged. */
class SendWindow {
  /** Id of the next message queued. */
  next = 0;
  /** Id after the newest message sent (ids are sent in order). */
  sentEnd = 0;
  /** Oldest sent message not acknowledged (== sentEnd when none). */
  oldest = 0;
  readonly #done = new Uint8Array(RELIABLE_WINDOW);

  canAdmit(id: number): boolean {
    const ahead = sequenceDiff(id, this.oldest);
    return ahead >= 0 && ahead < RELIABLE_WINDOW;
  }

  complete(id: number): void {
    this.#done[id & (RELIABLE_WINDOW - 1)] = 1;
    for (let guard = 0; guard < RELIABLE_WINDOW && this.oldest !== this.sentEnd; guard++) {
      const slot = this.oldest & (RELIABLE_WINDOW - 1);
      if (this.#done[slot] === 0) break;
      this.#done[slot] = 0;
      this.oldest = (this.oldest + 1) & SEQUENCE_MASK;
    }
  }

  get idle(): boolean {
    return this.oldest === this.sentEnd;
  }
}

type State = 'open' | 'closing' | 'closed';

const CORE_CHANNEL: readonly Channel[] = ['reliable', 'reliable', 'unreliable', 'unreliable'];

/**
 * Per-connection reliability, ordering, fragmentation, acks, RTT, congestion control, pacing,
 * keep-alive, timeout and disconnect. Every method takes the current time; nothing here touches a
 * socket or a timer, so it runs the same under a manual clock and a simulated link.
 */
export class Endpoint {
  /** Live figures, updated in place. */
  readonly stats: UdpConnectionStats;
  readonly #config: EndpointConfig;
  readonly #host: EndpointHost;
  #state: State = 'open';
  #closeCode: number = CloseCode.Normal;
  #closeReason = '';
  #closeDeadlineMs = 0;

  // Packet level.
  // Packets are written into consecutive slices of a slab and handed over, never reused: the
  // socket may still hold them (an EAGAIN send is queued by libuv), and no per-packet copy is made.
  #slab: Uint8Array;
  #slabOffset = 0;
  #scratch: Uint8Array;
  // Reliable messages that fit one packet are copied side by side here until acknowledged.
  #copySlab = new Uint8Array(SLAB_BYTES);
  #copyOffset = 0;
  readonly #payloadLimit: number;
  readonly #received = new ReceivedPackets();
  readonly #sent = new SentPackets<ReliableChunk>();
  readonly #rtt: RttEstimator;
  readonly #congestion: CongestionController;
  readonly #pacer: Pacer;
  readonly #loss: LossTiming = { reorderMs: 0, timeoutMs: 0 };
  readonly #items: ReliableChunk[] = [];
  /** Sequences received too far behind the newest for the ack bitfield: acked on their own. */
  readonly #lateAcks: number[] = [];
  #ackPending = 0;
  #ackPendingSinceMs = 0;
  #ackedSincePoll = false;
  #lastReceiveMs: number;
  #lastElicitingSendMs: number;
  #lastAckMs: number;
  /** Updates of stats.lossRate so far (a loss undone later is weighed by those since it). */
  #lossUpdates = 0;

  // Sending.
  readonly #windows = [new SendWindow(), new SendWindow()] as const;
  readonly #pending = new StampedQueue<ReliableChunk>();
  readonly #retransmit = new StampedQueue<ReliableChunk>();
  readonly #inFlight = new StampedQueue<ReliableChunk>();
  readonly #unreliable = new ByteQueue();
  #pendingBytes = 0;
  #unreliableBytes = 0;
  #fragmentedInFlight = 0;
  #sequencedNextId = 0;
  #unreliableNextId = 0;

  // Receiving.
  readonly #reader = new MessageReader();
  #orderedNext = 0;
  readonly #orderedSlots: (Uint8Array | undefined)[] = new Array(RELIABLE_WINDOW);
  readonly #orderedSlotIds = new Int32Array(RELIABLE_WINDOW).fill(-1);
  #orderedBytes = 0;
  #unorderedBase = 0;
  readonly #unorderedDelivered = new Uint8Array(RELIABLE_WINDOW);
  #sequencedLast = -1;
  readonly #reliableReassembly: Reassembler;
  readonly #unreliableReassembly: Reassembler;
  readonly #receiveBudgetBytes: number;
  #protocolError: string | null = null;
  #protocolErrorCode: number = CloseCode.ProtocolError;

  constructor(config: EndpointConfig, host: EndpointHost, nowMs: number) {
    this.#config = config;
    this.#host = host;
    this.stats = {
      ...createConnectionStats(),
      retransmissions: 0,
      duplicatePackets: 0,
      rejectedPackets: 0,
      sendRateBytesPerSec: 0,
      rtoMs: config.initialRtoMs,
    };
    this.#slab = new Uint8Array(Math.max(SLAB_BYTES, config.mtuBytes));
    this.#scratch = this.#slab.subarray(0, config.mtuBytes);
    this.#payloadLimit = config.mtuBytes - config.sealOverheadBytes;
    this.#rtt = new RttEstimator({
      initialRtoMs: config.initialRtoMs,
      minRtoMs: config.minRtoMs,
      maxRtoMs: config.maxRtoMs,
    });
    const maxRate = config.maxSendBytesPerSec > 0 ? config.maxSendBytesPerSec : 1_000_000_000;
    this.#congestion = new CongestionController({
      initialRateBytesPerSec: Math.min(maxRate, config.initialSendBytesPerSec),
      minRateBytesPerSec: Math.min(maxRate, config.minSendBytesPerSec),
      maxRateBytesPerSec: maxRate,
      packetBytes: config.mtuBytes,
    });
    this.#pacer = new Pacer({
      rateBytesPerSec: this.#congestion.rateBytesPerSec,
      burstMs: 5,
      minBurstBytes: 16 * config.mtuBytes,
    });
    this.stats.sendRateBytesPerSec = this.#congestion.rateBytesPerSec;
    const maxFragments = Math.min(0xffff, Math.ceil(config.maxMessageBytes / 128) + 1);
    this.#reliableReassembly = new Reassembler({
      maxMessages: 2 * MAX_FRAGMENTED_IN_FLIGHT,
      maxBytes: 2 * MAX_FRAGMENTED_IN_FLIGHT * config.maxMessageBytes,
      maxMessageBytes: config.maxMessageBytes,
      maxFragments,
      timeoutMs: Number.POSITIVE_INFINITY,
      evictOldest: false,
    });
    this.#unreliableReassembly = new Reassembler({
      maxMessages: 4,
      maxBytes: 2 * config.maxMessageBytes,
      maxMessageBytes: config.maxMessageBytes,
      maxFragments,
      timeoutMs: config.fragmentTimeoutMs,
      evictOldest: true,
    });
    this.#receiveBudgetBytes = Math.max(
      4 * 1_048_576,
      (2 * MAX_FRAGMENTED_IN_FLIGHT + 1) * config.maxMessageBytes,
    );
    this.#lastReceiveMs = nowMs;
    this.#lastElicitingSendMs = nowMs;
    this.#lastAckMs = nowMs;
  }

  /** `'open'`, `'closing'` (flushing before DISCONNECT) or `'closed'`. */
  get state(): State {
    return this.#state;
  }

  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** Message bytes queued and not yet sent once. */
  get bufferedAmount(): number {
    return this.#pendingBytes + this.#unreliableBytes;
  }

  /** Most bytes of message (with its header) one packet carries. */
  get packetCapacity(): number {
    return this.#packetCapacity;
  }

  get #packetCapacity(): number {
    return this.#payloadLimit - PLAIN_HEADER_BYTES;
  }

  /** Queues a reliable message (channel 0 ordered, 1 unordered); copies `data`. */
  queueReliable(data: Uint8Array, channel: 0 | 1): void {
    const window = this.#windows[channel];
    const id = window.next;
    window.next = (id + 1) & SEQUENCE_MASK;
    const length = data.length;
    const capacity = this.#packetCapacity;
    if (messageHeaderBytes(channel, false) + length <= capacity) {
      this.#pending.push(new ReliableChunk(channel, id, 0, 0, this.#copySmall(data), null));
    } else {
      const copy = data.slice();
      const fragmentBytes = capacity - FRAGMENT_HEADER_BYTES;
      const count = Math.ceil(length / fragmentBytes);
      const parent: FragmentedMessage = { channel, id, remaining: count, counted: false };
      for (let index = 0; index < count; index++) {
        const start = index * fragmentBytes;
        const part = copy.subarray(start, Math.min(length, start + fragmentBytes));
        this.#pending.push(new ReliableChunk(channel, id, index, count, part, parent));
      }
    }
    this.#pendingBytes += length;
    this.stats.messagesOut++;
    this.stats.bytesOut += length;
  }

  /** Copies a message that fits one packet into the shared copy slab (no ArrayBuffer each). */
  #copySmall(data: Uint8Array): Uint8Array {
    const length = data.length;
    if (this.#copyOffset + length > this.#copySlab.length) {
      this.#copySlab = new Uint8Array(SLAB_BYTES);
      this.#copyOffset = 0;
    }
    const at = this.#copyOffset;
    copyBytes(data, 0, length, this.#copySlab, at);
    this.#copyOffset = at + length;
    return this.#copySlab.subarray(at, at + length);
  }

  /**
   * Queues an unreliable message (channel 2 sequenced, 3 plain); copies `data`. Returns false
   * (and counts it) if the send buffer is over its threshold.
   */
  queueUnreliable(data: Uint8Array, channel: 2 | 3): boolean {
    if (this.bufferedAmount > this.#config.unreliableDropThresholdBytes) {
      this.stats.unreliableDropped++;
      return false;
    }
    const length = data.length;
    const capacity = this.#packetCapacity;
    const queue = this.#unreliable;
    if (messageHeaderBytes(channel, false) + length <= capacity) {
      let id = 0;
      if (channel === WireChannel.UnreliableSequenced) {
        id = this.#sequencedNextId;
        this.#sequencedNextId = (id + 1) & SEQUENCE_MASK;
      }
      const at = queue.reserve(messageHeaderBytes(channel, false) + length);
      const dataAt = writeMessageHeader(queue.buffer, at, channel, id, 0, 0, length);
      copyBytes(data, 0, length, queue.buffer, dataAt);
      queue.commit(dataAt + length - at);
    } else {
      let id: number;
      if (channel === WireChannel.UnreliableSequenced) {
        id = this.#sequencedNextId;
        this.#sequencedNextId = (id + 1) & SEQUENCE_MASK;
      } else {
        id = this.#unreliableNextId;
        this.#unreliableNextId = (id + 1) & SEQUENCE_MASK;
      }
      const fragmentBytes = capacity - FRAGMENT_HEADER_BYTES;
      const count = Math.ceil(length / fragmentBytes);
      for (let index = 0; index < count; index++) {
        const start = index * fragmentBytes;
        const partLength = Math.min(length, start + fragmentBytes) - start;
        const at = queue.reserve(FRAGMENT_HEADER_BYTES + partLength);
        const dataAt = writeMessageHeader(queue.buffer, at, channel, id, index, count, partLength);
        copyBytes(data, start, partLength, queue.buffer, dataAt);
        queue.commit(FRAGMENT_HEADER_BYTES + partLength);
      }
    }
    this.#unreliableBytes += length;
    this.stats.messagesOut++;
    this.stats.bytesOut += length;
    return true;
  }

  /** Starts a graceful close: queued reliable data is flushed (up to closeTimeoutMs), then DISCONNECT. */
  close(code: number, reason: string, nowMs: number): void {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    this.#closeCode = code;
    this.#closeReason = reason;
    this.#closeDeadlineMs = nowMs + this.#config.closeTimeoutMs;
  }

  /** Closes now, without flushing: DISCONNECT packets are sent, then the close is reported. */
  abort(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#finish(code, reason, true, true);
  }

  /**
   * Processes one packet of `type` whose `[sequence][ack][ackBits]` fields start at `offset`
   * (the session was checked by the owner). Throws TickwireError DECODE_FAILED on a malformed one,
   * before changing any state.
   */
  receive(type: number, bytes: Uint8Array, offset: number, nowMs: number): EndpointDrop {
    if (this.#state === 'closed') return EndpointDrop.Closed;
    const end = bytes.length;
    const bodyStart = offset + 8;
    if (end < bodyStart) throw decodeError('short', 'truncated packet header');
    // Validate the whole packet first: a malformed packet changes nothing.
    switch (type) {
      case PacketType.Data: {
        const reader = this.#reader;
        reader.reset(bytes, bodyStart, end);
        for (let guard = 0; guard < end && reader.next(); guard++) {}
        break;
      }
      case PacketType.Disconnect:
        readDisconnect(bytes, bodyStart, end);
        break;
      case PacketType.Ack:
      case PacketType.KeepAlive:
        if (end !== bodyStart) throw decodeError('malformed', 'trailing bytes');
        break;
      default:
        throw decodeError('type', `packet type ${type} on a connection`);
    }
    const sequence = readU16(bytes, offset);
    const status = this.#received.check(sequence);
    if (status !== ReceiveStatus.New) {
      this.stats.duplicatePackets++;
      return EndpointDrop.Duplicate;
    }
    this.#lastReceiveMs = nowMs;
    this.stats.packetsIn++;
    this.#ackedSincePoll = false;
    this.#updateLossTiming();
    this.#sent.acknowledge(
      readU16(bytes, offset + 2),
      readU32(bytes, offset + 4),
      nowMs,
      this.#loss,
      this,
    );
    switch (type) {
      case PacketType.Data: {
        const accepted = this.#receiveMessages(bytes, bodyStart, end, nowMs);
        this.#received.record(sequence, accepted);
        this.#noteAckEliciting(nowMs, sequence, accepted);
        if (this.#protocolError !== null && !this.#isClosed()) {
          this.#finish(this.#protocolErrorCode, this.#protocolError, true, true);
        }
        break;
      }
      case PacketType.KeepAlive:
        this.#received.record(sequence, true);
        this.#noteAckEliciting(nowMs, sequence, true);
        break;
      case PacketType.Ack:
        this.#received.record(sequence, true);
        break;
      default: {
        this.#received.record(sequence, true);
        const { code, reason } = readDisconnect(bytes, bodyStart, end);
        this.#finish(code, reason, false, false);
      }
    }
    return EndpointDrop.None;
  }

  /**
   * True if a `poll` has work right after the last `receive`: an ack is due now, or an ack freed
   * room for queued data, or the state changed. Otherwise {@link ackDeadlineMs} says when.
   */
  get pollWanted(): boolean {
    return (
      this.#state !== 'open' ||
      this.#ackPending >= ACK_EVERY_PACKETS ||
      (this.#ackedSincePoll && this.#hasSendable())
    );
  }

  /** When a pending ack must leave (ms); Infinity if none is pending. */
  get ackDeadlineMs(): number {
    return this.#ackPending > 0
      ? this.#ackPendingSinceMs + this.#config.ackDelayMs
      : Number.POSITIVE_INFINITY;
  }

  /**
   * Sends what is due (retransmissions, queued messages, acks, keep-alive) as far as the pacer
   * allows, handles timeouts and the closing handshake. Returns when it next needs a poll (ms on
   * the same clock; Infinity once closed).
   */
  poll(nowMs: number): number {
    if (this.#state === 'closed') return Number.POSITIVE_INFINITY;
    const config = this.#config;
    if (nowMs - this.#lastReceiveMs >= config.timeoutMs) {
      this.#finish(
        CloseCode.Timeout,
        `no packet from the peer for ${config.timeoutMs} ms`,
        true,
        true,
      );
      return Number.POSITIVE_INFINITY;
    }
    this.#updateLossTiming();
    this.#sent.detectLosses(nowMs, this.#loss, this);
    this.#scanTimeouts(nowMs);
    if (this.#unreliableReassembly.size > 0) this.#unreliableReassembly.expire(nowMs);
    const rtt = this.#rtt;
    if (this.#congestion.update(nowMs, rtt.srttMs, rtt.minRttMs)) {
      this.#pacer.setRate(this.#congestion.rateBytesPerSec);
      this.stats.sendRateBytesPerSec = this.#congestion.rateBytesPerSec;
    }
    this.flush(nowMs);
    if (this.#state === 'closing' && (nowMs >= this.#closeDeadlineMs || this.#reliableDrained())) {
      this.#finish(this.#closeCode, this.#closeReason, true, true);
      return Number.POSITIVE_INFINITY;
    }
    return this.#nextWakeMs(nowMs);
  }

  /**
   * Sends what the pacer and the window allow, plus a due ack or keep-alive; nothing else (no
   * timeout or close handling): safe to call from inside `send()`.
   */
  flush(nowMs: number): void {
    if (this.#state === 'closed') return;
    const config = this.#config;
    this.#pacer.refill(nowMs);
    for (let sent = 0; sent < MAX_PACKETS_PER_POLL; sent++) {
      const ackDue =
        this.#ackPending >= ACK_EVERY_PACKETS ||
        (this.#ackPending > 0 && nowMs - this.#ackPendingSinceMs >= config.ackDelayMs);
      // A tracked packet waits while its slot in the sent ring holds one in flight (ack-only
      // packets went round the ring): taking the slot would count that one lost.
      const slotFree = !this.#sent.nextSlotBusy;
      const keepAliveDue =
        slotFree &&
        this.#state === 'open' &&
        nowMs - this.#lastElicitingSendMs >= config.keepAliveIntervalMs;
      const canSendData =
        slotFree &&
        this.#pacer.canSend() &&
        this.#sent.inFlight < MAX_IN_FLIGHT_PACKETS &&
        this.#hasSendable();
      if (!canSendData && !ackDue && !keepAliveDue) break;
      if (!this.#sendPacket(nowMs, canSendData, keepAliveDue)) break;
    }
  }

  // ---- SentPacketListener (called by SentPackets) ----

  /** @internal A packet we sent was acknowledged. */
  onPacketAcked(
    packet: SentPacket<ReliableChunk>,
    nowMs: number,
    isNewestAcked: boolean,
    wasLost: boolean,
  ): void {
    this.#lastAckMs = nowMs;
    this.#ackedSincePoll = true;
    if (wasLost) {
      // Declared lost too early (reordered or late): it was not lost after all.
      this.stats.packetsLost--;
      // Take back exactly what that loss still weighs in the EWMA: (1/32)(31/32)^(updates since).
      const weight =
        (1 / LOSS_RATE_SPAN) * (1 - 1 / LOSS_RATE_SPAN) ** (this.#lossUpdates - packet.lossMark);
      this.stats.lossRate = Math.min(1, Math.max(0, this.stats.lossRate - weight));
      this.#congestion.onLossUndone();
      this.#rtt.observeLate(nowMs - packet.sentMs);
    } else {
      this.#congestion.onAcked();
      this.#noteResolved(false);
    }
    if (isNewestAcked) {
      this.#rtt.update(nowMs - packet.sentMs);
      this.stats.rttMs = this.#rtt.srttMs;
      this.stats.rtoMs = this.#rtt.rtoMs;
    }
    const items = packet.items;
    for (let i = 0; i < items.length; i++) {
      const chunk = items[i]!;
      if (chunk.acked) continue;
      chunk.acked = true;
      const parent = chunk.parent;
      if (parent === null) {
        this.#windows[chunk.channel as 0 | 1].complete(chunk.id);
      } else if (--parent.remaining === 0) {
        if (parent.counted) this.#fragmentedInFlight--;
        this.#windows[parent.channel as 0 | 1].complete(parent.id);
      }
    }
  }

  /** @internal A packet we sent was declared lost. */
  onPacketLost(packet: SentPacket<ReliableChunk>): void {
    this.stats.packetsLost++;
    this.#congestion.onLost();
    this.#noteResolved(true);
    packet.lossMark = this.#lossUpdates;
    const items = packet.items;
    for (let i = 0; i < items.length; i++) {
      const chunk = items[i]!;
      if (chunk.acked || chunk.retransmitQueued) continue;
      if (chunk.lastPacketSequence !== packet.sequence) continue;
      chunk.retransmitQueued = true;
      this.#retransmit.push(chunk);
    }
  }

  // ---- private ----

  #noteResolved(lost: boolean): void {
    // Exponentially weighted loss rate over roughly the last 32 packets.
    this.stats.lossRate += ((lost ? 1 : 0) - this.stats.lossRate) / LOSS_RATE_SPAN;
    this.#lossUpdates++;
  }

  #noteAckEliciting(nowMs: number, sequence: number, acknowledged: boolean): void {
    if (this.#ackPending === 0) this.#ackPendingSinceMs = nowMs;
    this.#ackPending++;
    // Reordered past the bitfield: its ack must name it (a few are kept; more are resent). A
    // refused packet is never named: the peer must resend what it carried.
    if (
      acknowledged &&
      this.#received.behindNewest(sequence) > ACK_BITS - 8 &&
      this.#lateAcks.length < 16
    ) {
      this.#lateAcks.push(sequence);
      this.#ackPending = Math.max(this.#ackPending, ACK_EVERY_PACKETS);
    }
  }

  #updateLossTiming(): void {
    const rtt = this.#rtt;
    // RFC 9002's 9/8 × RTT, widened to the largest recent RTT: jitter reorders packets, and a
    // packet declared lost too early is resent for nothing and taken for congestion.
    this.#loss.reorderMs =
      rtt.samples > 0
        ? Math.max(1, 1.125 * Math.max(rtt.srttMs, rtt.latestRttMs), rtt.maxRecentRttMs + 1)
        : rtt.rtoMs / 2;
    // A packet is declared lost by time only after two RTOs: its parts were resent at one RTO
    // already, and a late ack must not count as a loss (it would feed congestion control).
    this.#loss.timeoutMs = 2 * rtt.rtoMs;
  }

  /** Moves chunks unacknowledged for an RTO to the retransmission queue (RFC 6298 timer). */
  #scanTimeouts(nowMs: number): void {
    // The RTO, but never before packet loss detection could have spoken.
    const rto = Math.max(this.#rtt.rtoMs, this.#loss.reorderMs);
    const inFlight = this.#inFlight;
    let fired = false;
    for (let guard = inFlight.size; guard > 0; guard--) {
      const chunk = inFlight.peek()!;
      if (chunk.acked || chunk.retransmitQueued || inFlight.peekStamp() !== chunk.sendCount) {
        inFlight.shift();
        continue;
      }
      if (nowMs - chunk.lastSentMs < rto) break;
      inFlight.shift();
      chunk.retransmitQueued = true;
      this.#retransmit.push(chunk);
      fired = true;
    }
    // Back off only while the peer acknowledges nothing (RFC 6298 5.5).
    if (fired && nowMs - this.#lastAckMs >= rto) {
      this.#rtt.backoff();
      this.stats.rtoMs = this.#rtt.rtoMs;
    }
  }

  #hasSendable(): boolean {
    const retransmit = this.#retransmit;
    while (retransmit.size > 0 && retransmit.peek()!.acked) {
      retransmit.shift()!.retransmitQueued = false;
    }
    if (retransmit.size > 0 || this.#unreliable.length > 0) return true;
    const head = this.#pending.peek();
    return head !== undefined && this.#admissible(head);
  }

  #admissible(chunk: ReliableChunk): boolean {
    if (!this.#windows[chunk.channel as 0 | 1].canAdmit(chunk.id)) return false;
    const parent = chunk.parent;
    return parent === null || parent.counted || this.#fragmentedInFlight < MAX_FRAGMENTED_IN_FLIGHT;
  }

  #reliableDrained(): boolean {
    return (
      this.#pending.size === 0 &&
      this.#windows[0].idle &&
      this.#windows[1].idle &&
      this.#unreliable.length === 0
    );
  }

  /** Builds and transmits one packet; false if there was nothing to put in it. */
  #sendPacket(nowMs: number, withData: boolean, keepAliveDue: boolean): boolean {
    const bytes = this.#scratch;
    const limit = this.#payloadLimit;
    const items = this.#items;
    items.length = 0;
    let at = PLAIN_HEADER_BYTES;
    if (withData) {
      const retransmit = this.#retransmit;
      while (retransmit.size > 0) {
        const chunk = retransmit.peek()!;
        if (chunk.acked) {
          retransmit.shift();
          chunk.retransmitQueued = false;
          continue;
        }
        if (at + chunkBytes(chunk) > limit) break;
        retransmit.shift();
        chunk.retransmitQueued = false;
        at = writeChunk(bytes, at, chunk);
        items.push(chunk);
        this.stats.retransmissions++;
      }
      const pending = this.#pending;
      while (pending.size > 0) {
        const chunk = pending.peek()!;
        if (!this.#admissible(chunk) || at + chunkBytes(chunk) > limit) break;
        pending.shift();
        const parent = chunk.parent;
        if (parent !== null && !parent.counted) {
          parent.counted = true;
          this.#fragmentedInFlight++;
        }
        if (chunk.fragmentIndex === 0) {
          this.#windows[chunk.channel as 0 | 1].sentEnd = (chunk.id + 1) & SEQUENCE_MASK;
        }
        this.#pendingBytes -= chunk.data.length;
        at = writeChunk(bytes, at, chunk);
        items.push(chunk);
      }
      const queue = this.#unreliable;
      while (queue.length > 0) {
        const source = queue.buffer;
        const read = queue.readOffset;
        const flags = source[read]!;
        const headerBytes = messageHeaderBytes(flags & 3, (flags & 4) !== 0);
        const length = readU16(source, read + headerBytes - 2);
        const total = headerBytes + length;
        if (at + total > limit) break;
        copyBytes(source, read, total, bytes, at);
        at += total;
        queue.consume(total);
        this.#unreliableBytes -= length;
      }
    }
    const hasMessages = at > PLAIN_HEADER_BYTES;
    if (!hasMessages && this.#ackPending === 0 && !keepAliveDue) return false;
    const type = hasMessages
      ? PacketType.Data
      : keepAliveDue
        ? PacketType.KeepAlive
        : PacketType.Ack;
    const tracked = type !== PacketType.Ack;
    const sequence = this.#sent.nextSequence;
    writeHeader(bytes, this.#config.protocolId, type);
    writeU32(bytes, SESSION_OFFSET, this.#config.sessionId);
    writeU16(bytes, PLAIN_SEQUENCE_OFFSET, sequence);
    const late = this.#lateAcks.pop();
    if (late === undefined) {
      writeU16(bytes, PLAIN_SEQUENCE_OFFSET + 2, this.#received.ack);
      writeU32(bytes, PLAIN_SEQUENCE_OFFSET + 4, this.#received.ackBits());
    } else {
      writeU16(bytes, PLAIN_SEQUENCE_OFFSET + 2, late);
      writeU32(bytes, PLAIN_SEQUENCE_OFFSET + 4, this.#received.ackBitsFor(late));
    }
    const wireBytes = at + this.#config.sealOverheadBytes;
    const record = this.#sent.add(nowMs, wireBytes, tracked, this);
    for (let i = 0; i < items.length; i++) {
      const chunk = items[i]!;
      chunk.sendCount++;
      chunk.lastSentMs = nowMs;
      chunk.lastPacketSequence = sequence;
      this.#inFlight.push(chunk, chunk.sendCount);
      record.items.push(chunk);
    }
    items.length = 0;
    this.#ackPending = this.#lateAcks.length > 0 ? ACK_EVERY_PACKETS : 0;
    if (tracked) this.#lastElicitingSendMs = nowMs;
    this.#pacer.consume(wireBytes);
    this.#congestion.onSent(wireBytes);
    this.stats.packetsOut++;
    this.#host.transmitPacket(bytes, at);
    this.#nextScratch(at);
    return true;
  }

  /** Moves the packet buffer past `used` bytes handed to the host. */
  #nextScratch(used: number): void {
    const mtu = this.#config.mtuBytes;
    this.#slabOffset += (used + 7) & ~7;
    if (this.#slabOffset + mtu > this.#slab.length) {
      this.#slab = new Uint8Array(this.#slab.length);
      this.#slabOffset = 0;
    }
    this.#scratch = this.#slab.subarray(this.#slabOffset, this.#slabOffset + mtu);
  }

  #nextWakeMs(nowMs: number): number {
    const config = this.#config;
    let wake = this.#lastReceiveMs + config.timeoutMs;
    const slotBusy = this.#sent.nextSlotBusy;
    if (this.#state === 'open') {
      if (!slotBusy) wake = Math.min(wake, this.#lastElicitingSendMs + config.keepAliveIntervalMs);
    } else {
      wake = Math.min(wake, this.#closeDeadlineMs);
    }
    if (this.#ackPending > 0) wake = Math.min(wake, this.#ackPendingSinceMs + config.ackDelayMs);
    const oldest = this.#inFlight.peek();
    if (oldest !== undefined) {
      wake = Math.min(wake, oldest.lastSentMs + Math.max(this.#rtt.rtoMs, this.#loss.reorderMs));
    }
    if (this.#sent.inFlight >= MAX_IN_FLIGHT_PACKETS || slotBusy) {
      // Window full: acks reopen it; if none come, time-based loss detection does.
      wake = Math.min(wake, nowMs + this.#loss.timeoutMs);
    } else if (this.#hasSendable()) {
      wake = Math.min(wake, nowMs + this.#pacer.delayMs());
    }
    if (this.#unreliableReassembly.size > 0) {
      wake = Math.min(wake, nowMs + config.fragmentTimeoutMs);
    }
    return wake;
  }

  #finish(code: number, reason: string, local: boolean, sendDisconnect: boolean): void {
    if (this.#state === 'closed') return;
    if (sendDisconnect) this.#sendDisconnect(code, reason);
    this.#state = 'closed';
    this.#pending.clear();
    this.#retransmit.clear();
    this.#inFlight.clear();
    this.#unreliable.clear();
    this.#pendingBytes = 0;
    this.#unreliableBytes = 0;
    this.#orderedSlots.fill(undefined);
    this.#reliableReassembly.clear();
    this.#unreliableReassembly.clear();
    this.#host.endpointClosed(code, reason, local);
  }

  #sendDisconnect(code: number, reason: string): void {
    const bytes = this.#scratch;
    writeHeader(bytes, this.#config.protocolId, PacketType.Disconnect);
    writeU32(bytes, SESSION_OFFSET, this.#config.sessionId);
    writeU16(bytes, PLAIN_SEQUENCE_OFFSET, this.#sent.nextSequence);
    writeU16(bytes, PLAIN_SEQUENCE_OFFSET + 2, this.#received.ack);
    writeU32(bytes, PLAIN_SEQUENCE_OFFSET + 4, this.#received.ackBits());
    this.#sent.add(0, 0, false, this);
    writeU16(bytes, PLAIN_HEADER_BYTES, code);
    const encoded = textEncoder.encode(reason).subarray(0, 123);
    bytes[PLAIN_HEADER_BYTES + 2] = encoded.length;
    bytes.set(encoded, PLAIN_HEADER_BYTES + 3);
    const length = PLAIN_HEADER_BYTES + 3 + encoded.length;
    for (let copy = 0; copy < DISCONNECT_COPIES; copy++) {
      this.stats.packetsOut++;
      this.#host.transmitPacket(bytes, length);
    }
    this.#nextScratch(length);
  }

  /** Processes the messages of a validated DATA packet; false if one had to be refused. */
  #receiveMessages(bytes: Uint8Array, start: number, end: number, nowMs: number): boolean {
    const reader = this.#reader;
    reader.reset(bytes, start, end);
    let accepted = true;
    for (let guard = 0; guard < end && reader.next(); guard++) {
      switch (reader.channel) {
        case WireChannel.ReliableOrdered:
          if (!this.#receiveOrdered(bytes, reader, nowMs)) accepted = false;
          break;
        case WireChannel.ReliableUnordered:
          if (!this.#receiveUnordered(bytes, reader, nowMs)) accepted = false;
          break;
        default:
          this.#receiveUnreliable(bytes, reader, nowMs);
      }
      if (this.#state === 'closed' || this.#protocolError !== null) return accepted;
    }
    return accepted;
  }

  #receiveOrdered(bytes: Uint8Array, reader: MessageReader, nowMs: number): boolean {
    const id = reader.id;
    const ahead = sequenceDiff(id, this.#orderedNext);
    if (ahead < 0) return true; // Delivered already.
    if (ahead >= RELIABLE_WINDOW) return false;
    const slot = id & (RELIABLE_WINDOW - 1);
    if (this.#orderedSlotIds[slot] === id) return true; // Buffered already.
    const isNext = ahead === 0;
    const length = reader.length;
    if (reader.fragmentCount === 0 && length > this.#config.maxMessageBytes) {
      return this.#checkFragment(FragmentResult.TooLarge, id);
    }
    if (
      !isNext &&
      this.#orderedBytes + this.#reliableReassembly.bytes + length > this.#receiveBudgetBytes
    ) {
      return false;
    }
    let message: Uint8Array;
    if (reader.fragmentCount > 0) {
      const result = this.#reliableReassembly.add(
        id,
        reader.fragmentIndex,
        reader.fragmentCount,
        bytes.subarray(reader.offset, reader.offset + length),
        nowMs,
        isNext,
      );
      if (result === FragmentResult.Refused) return false;
      if (result !== FragmentResult.Complete) return this.#checkFragment(result, id);
      message = this.#reliableReassembly.message;
    } else if (isNext) {
      message = bytes.subarray(reader.offset, reader.offset + length);
    } else {
      // Held until its turn: a copy, not a view pinning the whole datagram.
      message = bytes.slice(reader.offset, reader.offset + length);
    }
    if (!isNext) {
      this.#orderedSlots[slot] = message;
      this.#orderedSlotIds[slot] = id;
      this.#orderedBytes += message.length;
      return true;
    }
    this.#orderedNext = (id + 1) & SEQUENCE_MASK;
    this.#deliver(message, 0);
    for (let guard = 0; guard < RELIABLE_WINDOW && this.#state !== 'closed'; guard++) {
      const next = this.#orderedNext;
      const nextSlot = next & (RELIABLE_WINDOW - 1);
      if (this.#orderedSlotIds[nextSlot] !== next) break;
      const buffered = this.#orderedSlots[nextSlot]!;
      this.#orderedSlots[nextSlot] = undefined;
      this.#orderedSlotIds[nextSlot] = -1;
      this.#orderedBytes -= buffered.length;
      this.#orderedNext = (next + 1) & SEQUENCE_MASK;
      this.#deliver(buffered, 0);
    }
    return true;
  }

  #receiveUnordered(bytes: Uint8Array, reader: MessageReader, nowMs: number): boolean {
    const id = reader.id;
    const ahead = sequenceDiff(id, this.#unorderedBase);
    if (ahead < 0) return true;
    if (ahead >= RELIABLE_WINDOW) return false;
    const slot = id & (RELIABLE_WINDOW - 1);
    if (this.#unorderedDelivered[slot] === 1) return true;
    if (reader.fragmentCount === 0 && reader.length > this.#config.maxMessageBytes) {
      return this.#checkFragment(FragmentResult.TooLarge, id);
    }
    let message: Uint8Array;
    if (reader.fragmentCount > 0) {
      const result = this.#reliableReassembly.add(
        0x1_0000 + id,
        reader.fragmentIndex,
        reader.fragmentCount,
        bytes.subarray(reader.offset, reader.offset + reader.length),
        nowMs,
      );
      if (result === FragmentResult.Refused) return false;
      if (result !== FragmentResult.Complete) return this.#checkFragment(result, id);
      message = this.#reliableReassembly.message;
    } else {
      message = bytes.subarray(reader.offset, reader.offset + reader.length);
    }
    this.#unorderedDelivered[slot] = 1;
    for (let guard = 0; guard < RELIABLE_WINDOW; guard++) {
      const baseSlot = this.#unorderedBase & (RELIABLE_WINDOW - 1);
      if (this.#unorderedDelivered[baseSlot] === 0) break;
      this.#unorderedDelivered[baseSlot] = 0;
      this.#unorderedBase = (this.#unorderedBase + 1) & SEQUENCE_MASK;
    }
    this.#deliver(message, 1);
    return true;
  }

  /** Records a protocol error for an invalid or too large message; true otherwise. */
  #checkFragment(result: FragmentResult, id: number, kind = 'reliable'): boolean {
    if (result === FragmentResult.Invalid) {
      this.#protocolError = `${kind} message ${id} has inconsistent fragments`;
      this.#protocolErrorCode = CloseCode.ProtocolError;
    } else if (result === FragmentResult.TooLarge) {
      this.#protocolError = `${kind} message ${id} exceeds maxMessageBytes ${this.#config.maxMessageBytes}`;
      this.#protocolErrorCode = CloseCode.MessageTooLarge;
    }
    return true;
  }

  #receiveUnreliable(bytes: Uint8Array, reader: MessageReader, nowMs: number): void {
    const channel = reader.channel;
    const id = reader.id;
    const sequenced = channel === WireChannel.UnreliableSequenced;
    if (sequenced && this.#sequencedLast >= 0 && !sequenceGreaterThan(id, this.#sequencedLast)) {
      return; // Older than one delivered: sequenced drops it.
    }
    let message: Uint8Array;
    if (reader.fragmentCount > 0) {
      const result = this.#unreliableReassembly.add(
        (channel === WireChannel.UnreliableSequenced ? 0x2_0000 : 0x3_0000) + id,
        reader.fragmentIndex,
        reader.fragmentCount,
        bytes.subarray(reader.offset, reader.offset + reader.length),
        nowMs,
      );
      if (result === FragmentResult.TooLarge) this.#checkFragment(result, id, 'unreliable');
      if (result !== FragmentResult.Complete) return;
      message = this.#unreliableReassembly.message;
    } else if (reader.length > this.#config.maxMessageBytes) {
      this.#checkFragment(FragmentResult.TooLarge, id, 'unreliable');
      return;
    } else {
      message = bytes.subarray(reader.offset, reader.offset + reader.length);
    }
    if (sequenced) this.#sequencedLast = id;
    this.#deliver(message, channel);
  }

  #deliver(message: Uint8Array, channel: number): void {
    this.stats.messagesIn++;
    this.stats.bytesIn += message.length;
    this.#host.deliverMessage(message, CORE_CHANNEL[channel]!);
  }
}

const textEncoder = new TextEncoder();

function chunkBytes(chunk: ReliableChunk): number {
  return messageHeaderBytes(chunk.channel, chunk.fragmentCount > 0) + chunk.data.length;
}

function writeChunk(bytes: Uint8Array, at: number, chunk: ReliableChunk): number {
  const data = chunk.data;
  const dataAt = writeMessageHeader(
    bytes,
    at,
    chunk.channel,
    chunk.id,
    chunk.fragmentIndex,
    chunk.fragmentCount,
    data.length,
  );
  copyBytes(data, 0, data.length, bytes, dataAt);
  return dataAt + data.length;
}

/** Copies `length` bytes; a loop for short runs (no subarray view), `set` for long ones. */
function copyBytes(
  source: Uint8Array,
  sourceStart: number,
  length: number,
  target: Uint8Array,
  targetStart: number,
): void {
  if (length <= 64) {
    for (let i = 0; i < length; i++) target[targetStart + i] = source[sourceStart + i]!;
  } else if (sourceStart === 0 && length === source.length) {
    target.set(source, targetStart);
  } else {
    target.set(source.subarray(sourceStart, sourceStart + length), targetStart);
  }
}
