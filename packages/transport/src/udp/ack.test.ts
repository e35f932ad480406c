import { describe, expect, it } from 'vitest';
import {
  type LossTiming,
  RECEIVED_WINDOW,
  ReceivedPackets,
  ReceiveStatus,
  SENT_WINDOW,
  type SentPacket,
  type SentPacketListener,
  SentPackets,
  SentState,
} from './ack.js';

class Recorder implements SentPacketListener<string> {
  acked: number[] = [];
  lost: number[] = [];
  newest: number[] = [];
  onPacketAcked(
    packet: SentPacket<string>,
    _nowMs: number,
    isNewest: boolean,
    _wasLost: boolean,
  ): void {
    this.acked.push(packet.sequence);
    if (isNewest) this.newest.push(packet.sequence);
  }
  onPacketLost(packet: SentPacket<string>): void {
    this.lost.push(packet.sequence);
  }
}

const timing: LossTiming = { reorderMs: 0, timeoutMs: 1_000 };

describe('ReceivedPackets (ack + 32-bit bitfield)', () => {
  it('acks the newest sequence and sets bit i for sequence ack - 1 - i', () => {
    const received = new ReceivedPackets();
    for (const sequence of [0, 1, 2, 4, 7, 10]) received.record(sequence, true);
    expect(received.ack).toBe(10);
    const bits = received.ackBits();
    // 9 and 8 missing (bits 0, 1), 7 present (bit 2), 4 (bit 5), 2 (bit 7), 1 (bit 8), 0 (bit 9).
    expect(bits).toBe((1 << 2) | (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9));
  });

  it('keeps working across the 16-bit wrap', () => {
    const received = new ReceivedPackets();
    for (const sequence of [65_533, 65_534, 65_535, 0, 1]) received.record(sequence, true);
    expect(received.ack).toBe(1);
    expect(received.ackBits() & 0b1111).toBe(0b1111);
    expect(received.check(65_535)).toBe(ReceiveStatus.Duplicate);
    expect(received.check(2)).toBe(ReceiveStatus.New);
  });

  it('reports duplicates and sequences too old to tell', () => {
    const received = new ReceivedPackets();
    expect(received.check(100)).toBe(ReceiveStatus.New);
    received.record(100, true);
    expect(received.check(100)).toBe(ReceiveStatus.Duplicate);
    expect(received.check(99)).toBe(ReceiveStatus.New);
    expect(received.check(100 - RECEIVED_WINDOW)).toBe(ReceiveStatus.TooOld);
  });

  it('keeps refused packets out of the acks but still detects their duplicates', () => {
    const received = new ReceivedPackets();
    received.record(1, true);
    received.record(2, false);
    expect(received.ack).toBe(1);
    expect(received.check(2)).toBe(ReceiveStatus.Duplicate);
    received.record(3, true);
    expect(received.ack).toBe(3);
    expect(received.ackBits() & 0b11).toBe(0b10);
  });
});

describe('SentPackets', () => {
  it('acks through the ack field and bitfield, once each, and samples RTT on the newest', () => {
    const sent = new SentPackets<string>();
    const recorder = new Recorder();
    for (let i = 0; i < 5; i++) sent.add(i * 10, 100, true, recorder);
    sent.acknowledge(4, 0b0101, 100, timing, recorder); // 4, 3 and 1
    expect(recorder.acked.sort()).toEqual([1, 3, 4]);
    expect(recorder.newest).toEqual([4]);
    sent.acknowledge(4, 0b1111, 100, timing, recorder); // 2 and 0 new
    expect(recorder.acked.sort()).toEqual([0, 1, 2, 3, 4]);
    expect(recorder.newest).toEqual([4]);
  });

  it('declares lost a packet overtaken by three acked ones', () => {
    const sent = new SentPackets<string>();
    const recorder = new Recorder();
    for (let i = 0; i < 6; i++) sent.add(0, 100, true, recorder);
    sent.acknowledge(3, 0b011, 10, timing, recorder); // 3, 2, 1 acked; 0 is 3 behind
    expect(recorder.lost).toEqual([0]);
    expect(sent.get(0)?.state).toBe(SentState.Lost);
    // A late ack of a packet declared lost still counts.
    sent.acknowledge(5, 0b11111, 20, timing, recorder);
    expect(recorder.acked).toContain(0);
  });

  it('declares lost what is unacknowledged past the timeout', () => {
    const sent = new SentPackets<string>();
    const recorder = new Recorder();
    sent.add(0, 100, true, recorder);
    sent.add(0, 100, false, recorder);
    sent.detectLosses(999, timing, recorder);
    expect(recorder.lost).toEqual([]);
    sent.detectLosses(1_000, timing, recorder);
    expect(recorder.lost).toEqual([0]);
  });

  it('ignores acks of sequences never sent', () => {
    const sent = new SentPackets<string>();
    const recorder = new Recorder();
    sent.add(0, 100, true, recorder);
    sent.acknowledge(500, 0xffff_ffff, 1, timing, recorder);
    expect(recorder.acked).toEqual([]);
    expect(sent.largestAcked).toBe(-1);
  });

  it('wraps sequences and reports a slot reused while in flight as lost', () => {
    const sent = new SentPackets<string>();
    const recorder = new Recorder();
    for (let i = 0; i < 70_000; i++) {
      const packet = sent.add(i, 10, true, recorder);
      sent.acknowledge(packet.sequence, 0, i, timing, recorder);
    }
    expect(sent.nextSequence).toBe(70_000 & 0xffff);
    expect(recorder.acked.length).toBe(70_000);
    expect(recorder.lost.length).toBe(0);
    const lonely = new SentPackets<string>();
    const lonelyRecorder = new Recorder();
    for (let i = 0; i < 1_100; i++) lonely.add(0, 10, true, lonelyRecorder);
    expect(lonelyRecorder.lost.length).toBe(1_100 - 1_024);
  });

  it('never reports a packet lost because ack-only packets passed over its slot', () => {
    const sent = new SentPackets<string>();
    const recorder = new Recorder();
    const data = sent.add(0, 100, true, recorder);
    data.items.push('message');
    // 2048 ack-only packets go round the ring twice while the data packet is in flight.
    for (let i = 0; i < 2 * SENT_WINDOW; i++) sent.add(0, 20, false, recorder);
    expect(recorder.lost).toEqual([]);
    expect(sent.inFlight).toBe(1);
    expect(sent.get(0)?.items).toEqual(['message']);
    sent.acknowledge(0, 0, 10, timing, recorder);
    expect(recorder.acked).toEqual([0]);
    expect(recorder.lost).toEqual([]);
    expect(sent.inFlight).toBe(0);
  });

  it('still declares lost by time a packet that ack-only packets passed over', () => {
    const sent = new SentPackets<string>();
    const recorder = new Recorder();
    sent.add(0, 100, true, recorder);
    for (let i = 0; i < 3 * SENT_WINDOW; i++) sent.add(0, 20, false, recorder);
    const later = sent.add(500, 100, true, recorder);
    sent.detectLosses(999, timing, recorder);
    expect(recorder.lost).toEqual([]);
    sent.detectLosses(1_000, timing, recorder);
    expect(recorder.lost).toEqual([0]);
    sent.detectLosses(1_500, timing, recorder);
    expect(recorder.lost).toEqual([0, later.sequence]);
    expect(sent.inFlight).toBe(0);
  });
});
