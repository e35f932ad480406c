// Packet acknowledgement: which packets we received (ack + 32-bit bitfield, Gaffer-on-Games
// "reliability over UDP"), and which of ours the peer acknowledged or lost.
import { SEQUENCE_MASK, sequenceDiff } from './sequence.js';

/** Bits in the ack bitfield of every packet: bit i acknowledges sequence `ack - 1 - i`. */
export const ACK_BITS = 32;

/** Received sequences remembered for acks and duplicate detection. */
export const RECEIVED_WINDOW = 256;

/** Sent packets remembered until acknowledged or declared lost. */
export const SENT_WINDOW = 1024;

/**
 * Sequences a packet in flight keeps its record for while ack-only packets pass over its slot
 * (well inside the 32768 that 16-bit comparison can tell apart); a tracked packet always takes
 * its slot.
 */
export const MAX_TRACKED_AGE = 8 * SENT_WINDOW;

/** A packet this many sequences older than the newest acknowledged one is lost (RFC 9002). */
export const PACKET_REORDER_THRESHOLD = 3;

/** Outcome of {@link ReceivedPackets.check}. */
export const ReceiveStatus = {
  /** Never seen: process it. */
  New: 0,
  /** Seen before: drop it. */
  Duplicate: 1,
  /** Older than the duplicate window: drop it. */
  TooOld: 2,
} as const;

/** One of the {@link ReceiveStatus} values. */
export type ReceiveStatus = (typeof ReceiveStatus)[keyof typeof ReceiveStatus];

/** The peer's packet sequences we received: duplicate detection and the ack fields we send. */
export class ReceivedPackets {
  readonly #sequences = new Int32Array(RECEIVED_WINDOW).fill(-1);
  readonly #acked = new Uint8Array(RECEIVED_WINDOW);
  #latest = 0;
  #latestAcked = SEQUENCE_MASK;
  #hasAny = false;
  #anyAcked = false;
  #bits = 0;
  #bitsDirty = false;

  /** Whether `sequence` is new, a duplicate or too old to tell. */
  check(sequence: number): ReceiveStatus {
    if (!this.#hasAny) return ReceiveStatus.New;
    if (sequenceDiff(sequence, this.#latest) <= -RECEIVED_WINDOW) return ReceiveStatus.TooOld;
    return this.#sequences[sequence & (RECEIVED_WINDOW - 1)] === sequence
      ? ReceiveStatus.Duplicate
      : ReceiveStatus.New;
  }

  /**
   * Records `sequence` as seen; `acknowledge` false keeps it out of our acks (its content was
   * refused, so the peer must resend it) while still detecting its duplicates.
   */
  record(sequence: number, acknowledge: boolean): void {
    const index = sequence & (RECEIVED_WINDOW - 1);
    this.#sequences[index] = sequence;
    this.#acked[index] = acknowledge ? 1 : 0;
    if (!this.#hasAny || sequenceDiff(sequence, this.#latest) > 0) this.#latest = sequence;
    this.#hasAny = true;
    if (acknowledge && (!this.#anyAcked || sequenceDiff(sequence, this.#latestAcked) > 0)) {
      this.#latestAcked = sequence;
      this.#anyAcked = true;
    }
    if (acknowledge) this.#bitsDirty = true;
  }

  /** The newest acknowledged sequence (the `ack` field); 65535 before any. */
  get ack(): number {
    return this.#latestAcked;
  }

  /** The ack bitfield: bit i set if sequence `ack - 1 - i` was received and acknowledged. */
  ackBits(): number {
    if (!this.#bitsDirty) return this.#bits;
    this.#bitsDirty = false;
    this.#bits = this.ackBitsFor(this.#latestAcked);
    return this.#bits;
  }

  /**
   * The bitfield relative to an older acknowledged sequence: a packet that arrived more than 32
   * behind the newest is acknowledged by a packet whose `ack` is that packet's own sequence.
   */
  ackBitsFor(ack: number): number {
    if (!this.#anyAcked) return 0;
    let bits = 0;
    for (let i = 0; i < ACK_BITS; i++) {
      const sequence = (ack - 1 - i) & SEQUENCE_MASK;
      const index = sequence & (RECEIVED_WINDOW - 1);
      if (this.#sequences[index] === sequence && this.#acked[index] === 1) bits |= 1 << i;
    }
    return bits >>> 0;
  }

  /** How far `sequence` is behind the newest acknowledged one (negative if newer). */
  behindNewest(sequence: number): number {
    return this.#anyAcked ? sequenceDiff(this.#latestAcked, sequence) : -1;
  }
}

/** State of a {@link SentPacket}. */
export const SentState = {
  /** Sent, waiting for an ack. */
  InFlight: 0,
  /** Acknowledged by the peer. */
  Acked: 1,
  /** Declared lost. */
  Lost: 2,
  /** Not tracked (an ack-only packet, or an empty slot). */
  Untracked: 3,
} as const;

/** One of the {@link SentState} values. */
export type SentState = (typeof SentState)[keyof typeof SentState];

/** A packet we sent, and what it carried that needs an ack. */
export interface SentPacket<T> {
  sequence: number;
  sentMs: number;
  bytes: number;
  state: SentState;
  /** Free for the listener: the endpoint stamps the loss-rate update that counted it lost. */
  lossMark: number;
  /** Reliable items in the packet (reused array). */
  items: T[];
}

/** Time thresholds of loss detection, in ms. */
export interface LossTiming {
  /** A packet overtaken by {@link PACKET_REORDER_THRESHOLD} acked ones is lost after this age. */
  reorderMs: number;
  /** A packet unacknowledged this long is lost. */
  timeoutMs: number;
}

/** What {@link SentPackets} reports while processing acks and losses. */
export interface SentPacketListener<T> {
  /** A packet was acknowledged for the first time (`wasLost`: after it was declared lost). */
  onPacketAcked(
    packet: SentPacket<T>,
    nowMs: number,
    isNewestAcked: boolean,
    wasLost: boolean,
  ): void;
  /** A packet was declared lost (it may still be acked later: then `onPacketAcked` runs). */
  onPacketLost(packet: SentPacket<T>): void;
}

/** A sent-ring slot that holds no packet. */
function emptySentPacket<T>(): SentPacket<T> {
  return { sequence: -1, sentMs: 0, bytes: 0, state: SentState.Untracked, lossMark: 0, items: [] };
}

/** Our sent packets, indexed by sequence: assigns sequences, applies acks, detects losses. */
export class SentPackets<T> {
  readonly #ring: SentPacket<T>[] = [];
  /** The record handed out for an ack-only packet that must leave its slot to a packet in flight. */
  readonly #unrecorded: SentPacket<T> = emptySentPacket();
  #nextSequence = 0;
  #oldestUnresolved = 0;
  #largestAcked = -1;
  #inFlight = 0;

  constructor() {
    for (let i = 0; i < SENT_WINDOW; i++) this.#ring.push(emptySentPacket());
  }

  /** The sequence the next packet gets. */
  get nextSequence(): number {
    return this.#nextSequence;
  }

  /** Tracked packets neither acknowledged nor declared lost. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The newest sequence the peer acknowledged; -1 before any. */
  get largestAcked(): number {
    return this.#largestAcked;
  }

  /**
   * Whether the next sequence's slot still holds a packet in flight: a tracked packet sent now
   * would have it declared lost (see {@link add}), so the sender waits for its ack or loss.
   */
  get nextSlotBusy(): boolean {
    return this.#ring[this.#nextSequence & (SENT_WINDOW - 1)]!.state === SentState.InFlight;
  }

  /**
   * Takes the next sequence for a packet and returns its record (items emptied). A tracked packet
   * still in flight in the reused slot is reported lost first; an ack-only (untracked) packet
   * leaves it there, unless it is {@link MAX_TRACKED_AGE} sequences old: nobody acks an ack-only
   * packet, so its record is not needed, while the packet in flight may still be acked.
   */
  add(
    sentMs: number,
    bytes: number,
    tracked: boolean,
    listener: SentPacketListener<T>,
  ): SentPacket<T> {
    const sequence = this.#nextSequence;
    const slot = this.#ring[sequence & (SENT_WINDOW - 1)]!;
    let packet = slot;
    if (slot.state === SentState.InFlight) {
      if (!tracked && sequenceDiff(sequence, slot.sequence) < MAX_TRACKED_AGE) {
        packet = this.#unrecorded;
      } else {
        slot.state = SentState.Lost;
        this.#inFlight--;
        listener.onPacketLost(slot);
      }
    }
    packet.sequence = sequence;
    packet.sentMs = sentMs;
    packet.bytes = bytes;
    packet.state = tracked ? SentState.InFlight : SentState.Untracked;
    if (tracked) this.#inFlight++;
    packet.items.length = 0;
    this.#nextSequence = (sequence + 1) & SEQUENCE_MASK;
    // Sequences a full ring behind are resolved or overwritten, except a packet still in flight
    // that ack-only packets passed over: loss detection must still reach it.
    for (
      let guard = 0;
      guard < MAX_TRACKED_AGE && sequenceDiff(sequence, this.#oldestUnresolved) >= SENT_WINDOW;
      guard++
    ) {
      const oldest = this.#oldestUnresolved;
      const record = this.#ring[oldest & (SENT_WINDOW - 1)]!;
      if (record.sequence === oldest && record.state === SentState.InFlight) break;
      this.#oldestUnresolved = (oldest + 1) & SEQUENCE_MASK;
    }
    return packet;
  }

  /** The record of `sequence` if it is still remembered. */
  get(sequence: number): SentPacket<T> | undefined {
    const packet = this.#ring[sequence & (SENT_WINDOW - 1)]!;
    return packet.sequence === sequence ? packet : undefined;
  }

  /** Applies the peer's `ack` and `ackBits`, then declares lost what they prove lost. */
  acknowledge(
    ack: number,
    ackBits: number,
    nowMs: number,
    loss: LossTiming,
    listener: SentPacketListener<T>,
  ): void {
    // Ignore acks of sequences we have not sent yet (a forged or confused peer).
    const ahead = sequenceDiff(ack, this.#nextSequence);
    if (ahead >= 0 || ahead < -MAX_TRACKED_AGE) return;
    const isNewest = this.#largestAcked < 0 || sequenceDiff(ack, this.#largestAcked) > 0;
    if (isNewest) this.#largestAcked = ack;
    this.#ackOne(ack, nowMs, isNewest, listener);
    let bits = ackBits >>> 0;
    for (let i = 0; bits !== 0 && i < ACK_BITS; i++, bits >>>= 1) {
      if (bits & 1) this.#ackOne((ack - 1 - i) & SEQUENCE_MASK, nowMs, false, listener);
    }
    this.detectLosses(nowMs, loss, listener);
  }

  /**
   * Declares lost every in-flight packet {@link PACKET_REORDER_THRESHOLD} or more older than the
   * newest acked one and sent `reorderMs` ago, or unacknowledged for `timeoutMs` (RFC 9002 packet
   * and time thresholds).
   */
  detectLosses(nowMs: number, loss: LossTiming, listener: SentPacketListener<T>): void {
    for (let guard = 0; guard < MAX_TRACKED_AGE + SENT_WINDOW; guard++) {
      const sequence = this.#oldestUnresolved;
      if (sequence === this.#nextSequence) return;
      const packet = this.#ring[sequence & (SENT_WINDOW - 1)]!;
      if (packet.sequence === sequence && packet.state === SentState.InFlight) {
        const age = nowMs - packet.sentMs;
        const behind = this.#largestAcked < 0 ? -1 : sequenceDiff(this.#largestAcked, sequence);
        const lost =
          (behind >= PACKET_REORDER_THRESHOLD && age >= loss.reorderMs) || age >= loss.timeoutMs;
        if (!lost) return;
        packet.state = SentState.Lost;
        this.#inFlight--;
        listener.onPacketLost(packet);
      }
      this.#oldestUnresolved = (sequence + 1) & SEQUENCE_MASK;
    }
  }

  #ackOne(
    sequence: number,
    nowMs: number,
    isNewest: boolean,
    listener: SentPacketListener<T>,
  ): void {
    const packet = this.#ring[sequence & (SENT_WINDOW - 1)]!;
    if (packet.sequence !== sequence) return;
    if (packet.state !== SentState.InFlight && packet.state !== SentState.Lost) return;
    const wasLost = packet.state === SentState.Lost;
    if (!wasLost) this.#inFlight--;
    packet.state = SentState.Acked;
    listener.onPacketAcked(packet, nowMs, isNewest, wasLost);
  }
}
