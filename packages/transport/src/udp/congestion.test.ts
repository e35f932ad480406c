import { describe, expect, it } from 'vitest';
import { CongestionController } from './congestion.js';
import { Pacer } from './pacer.js';

const settings = {
  initialRateBytesPerSec: 100_000,
  minRateBytesPerSec: 10_000,
  maxRateBytesPerSec: 10_000_000,
  packetBytes: 1_000,
};

/** Runs `epochs` epochs of 100 ms with `acked`/`lost` packets and `sentBytes` each. */
function runEpochs(
  cc: CongestionController,
  from: number,
  epochs: number,
  acked: number,
  lost: number,
  full = true,
): number {
  let now = from;
  for (let i = 0; i < epochs; i++) {
    for (let k = 0; k < acked; k++) cc.onAcked();
    for (let k = 0; k < lost; k++) cc.onLost();
    cc.onSent(full ? cc.rateBytesPerSec / 10 : 0);
    now += 100;
    cc.update(now, 100, 100);
  }
  return now;
}

describe('CongestionController (slow start, then AIMD)', () => {
  it('doubles per epoch in slow start while the sender uses its rate', () => {
    const cc = new CongestionController(settings);
    cc.update(0, 100, 100);
    runEpochs(cc, 0, 3, 20, 0);
    expect(cc.rateBytesPerSec).toBe(800_000);
    expect(cc.slowStart).toBe(true);
  });

  it('tolerates random loss below the threshold, cuts by 0.7 above it, then grows additively', () => {
    const cc = new CongestionController(settings);
    cc.update(0, 100, 100);
    let now = runEpochs(cc, 0, 1, 90, 10); // 10 % loss: not congestion
    expect(cc.rateBytesPerSec).toBe(200_000);
    now = runEpochs(cc, now, 1, 50, 50);
    expect(cc.rateBytesPerSec).toBeCloseTo(140_000);
    expect(cc.slowStart).toBe(false);
    expect(cc.decreases).toBe(1);
    runEpochs(cc, now, 1, 20, 0);
    expect(cc.rateBytesPerSec).toBeCloseTo(151_200); // + max(one packet per epoch, 8 %)
  });

  it('does not grow while the application sends less than its rate', () => {
    const cc = new CongestionController(settings);
    cc.update(0, 100, 100);
    runEpochs(cc, 0, 5, 20, 0, false);
    expect(cc.rateBytesPerSec).toBe(100_000);
  });

  it('cuts on queueing delay and stays within its bounds', () => {
    const cc = new CongestionController({ ...settings, maxRateBytesPerSec: 150_000 });
    cc.update(0, 100, 100);
    runEpochs(cc, 0, 3, 20, 0);
    expect(cc.rateBytesPerSec).toBe(150_000);
    for (let k = 0; k < 20; k++) cc.onAcked();
    cc.update(700, 300, 100);
    expect(cc.rateBytesPerSec).toBeCloseTo(105_000);
    for (let i = 0; i < 20; i++) runEpochs(cc, 1_000 + i * 1_000, 1, 0, 20);
    expect(cc.rateBytesPerSec).toBe(10_000);
  });
});

describe('Pacer (token bucket)', () => {
  it('lets a burst out, then one packet per rate interval', () => {
    const pacer = new Pacer({ rateBytesPerSec: 100_000, burstMs: 5, minBurstBytes: 2_000 });
    pacer.refill(0);
    let sent = 0;
    while (pacer.canSend() && sent < 100) {
      pacer.consume(1_000);
      sent++;
    }
    expect(sent).toBe(2);
    expect(pacer.delayMs()).toBeCloseTo(0.01, 1);
    pacer.refill(10);
    expect(pacer.tokens).toBeCloseTo(1_000);
    pacer.refill(1_000);
    expect(pacer.tokens).toBe(2_000);
    pacer.setRate(1_000_000);
    pacer.refill(1_010);
    expect(pacer.tokens).toBe(5_000);
  });
});
