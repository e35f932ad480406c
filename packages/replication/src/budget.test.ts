import { type ConnectionStats, createConnectionStats, ErrorCode } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { createBandwidthBudget, MIN_SNAPSHOT_BUDGET_BYTES } from './budget.js';

const codeOf = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return (error as { code?: unknown }).code;
  }
  throw new Error('expected a throw');
};

/** Stats with some fields overridden. */
const stats = (fields: Partial<ConnectionStats> = {}): ConnectionStats => ({
  ...createConnectionStats(),
  ...fields,
});

describe('createBandwidthBudget', () => {
  it('starts at the initial rate and converges up to the maximum on a clean link', () => {
    const budget = createBandwidthBudget({
      initialBytesPerSecond: 10_000,
      maxBytesPerSecond: 50_000,
    });
    expect(budget.bytesPerSecond).toBe(10_000);
    // The first update only records the figures.
    expect(budget.update(stats(), 0)).toBe(500);
    expect(budget.bytesPerSecond).toBe(10_000);
    const budgets: number[] = [];
    for (let i = 0; i < 20; i++) budgets.push(budget.update(stats({ rttMs: 100 }), 0));
    // +16 kB/s per second at 20 snapshots per second: +800 B/s, +40 bytes per snapshot.
    expect(budgets.slice(0, 3)).toEqual([540, 580, 620]);
    for (let i = 1; i < budgets.length; i++) expect(budgets[i]).toBeGreaterThan(budgets[i - 1]!);
    for (let i = 0; i < 200; i++) budget.update(stats(), 0);
    expect(budget.bytesPerSecond).toBe(50_000);
    expect(budget.update(stats(), 0)).toBe(2_500);
  });

  it('backs off by 0.7 on new local drops, then grows again', () => {
    const budget = createBandwidthBudget({ initialBytesPerSecond: 100_000 });
    budget.update(stats(), 0);
    expect(budget.update(stats({ unreliableDropped: 3 }), 0)).toBe(3_500);
    expect(budget.bytesPerSecond).toBeCloseTo(70_000);
    // The same count is no new drop: the link is clean again.
    expect(budget.update(stats({ unreliableDropped: 3 }), 0)).toBe(3_540);
    // A counter that went backwards (a new connection's stats) is no drop either.
    expect(budget.update(stats({ unreliableDropped: 0 }), 0)).toBe(3_580);
  });

  it('backs off when the send buffer grows past one snapshot, holds while it stays full', () => {
    const budget = createBandwidthBudget(); // 64 kB/s: 3200 bytes per snapshot
    budget.update(stats(), 0);
    // Some bytes waiting, less than a snapshot: still clean.
    expect(budget.update(stats(), 1_000)).toBe(3_240);
    expect(budget.update(stats(), 5_000)).toBe(2_268); // 64800 × 0.7 / 20
    // Not growing, but more than a snapshot waits: hold.
    expect(budget.update(stats(), 5_000)).toBe(2_268);
    expect(budget.update(stats(), 4_000)).toBe(2_268);
    expect(budget.update(stats(), 4_500)).toBe(1_587);
    // Drained: grow.
    expect(budget.update(stats(), 0)).toBe(1_627);
  });

  it('backs off on rising loss, holds under steady loss, grows when loss is low', () => {
    const budget = createBandwidthBudget({ initialBytesPerSecond: 40_000 });
    budget.update(stats(), 0);
    // Up to 2 % is a clean link.
    expect(budget.update(stats({ lossRate: 0.02 }), 0)).toBe(2_040);
    expect(budget.update(stats({ lossRate: 0.1 }), 0)).toBe(1_428);
    // Steady (or slowly wandering) loss: hold.
    expect(budget.update(stats({ lossRate: 0.1 }), 0)).toBe(1_428);
    expect(budget.update(stats({ lossRate: 0.105 }), 0)).toBe(1_428);
    expect(budget.update(stats({ lossRate: 0.09 }), 0)).toBe(1_428);
    // A rise of more than a point above the lowest loss since the decrease.
    expect(budget.update(stats({ lossRate: 0.101 }), 0)).toBe(999);
    expect(budget.update(stats({ lossRate: 0.01 }), 0)).toBe(1_039);
  });

  it('decreases at most once per round trip', () => {
    const budget = createBandwidthBudget({ initialBytesPerSecond: 100_000 });
    budget.update(stats(), 0);
    const rates: number[] = [];
    // 200 ms at 20 snapshots per second: 4 updates between decreases.
    for (let i = 1; i <= 9; i++) {
      budget.update(stats({ rttMs: 200, unreliableDropped: i }), 0);
      rates.push(Math.round(budget.bytesPerSecond));
    }
    expect(rates).toEqual([70_000, 70_000, 70_000, 70_000, 49_000, 49_000, 49_000, 49_000, 34_300]);
    // An unknown round trip (NaN) means no wait: after the current one, every update decreases.
    for (let i = 10; i <= 15; i++)
      budget.update(stats({ rttMs: Number.NaN, unreliableDropped: i }), 0);
    expect(Math.round(budget.bytesPerSecond)).toBe(11_765);
  });

  it('stays within its bounds and never returns less than a header', () => {
    const budget = createBandwidthBudget({
      initialBytesPerSecond: 500,
      minBytesPerSecond: 100,
      maxBytesPerSecond: 1_000,
      snapshotsPerSecond: 60,
    });
    budget.update(stats(), 0);
    for (let i = 1; i <= 50; i++) {
      expect(budget.update(stats({ unreliableDropped: i }), 0)).toBe(MIN_SNAPSHOT_BUDGET_BYTES);
      expect(budget.bytesPerSecond).toBeGreaterThanOrEqual(100);
    }
    expect(budget.bytesPerSecond).toBe(100);
    for (let i = 0; i < 100; i++) budget.update(stats({ unreliableDropped: 50 }), 0);
    expect(budget.bytesPerSecond).toBe(1_000);
    expect(budget.update(stats({ unreliableDropped: 50 }), 0)).toBe(16);
  });

  it('validates its options and inputs', () => {
    expect(codeOf(() => createBandwidthBudget(null as never))).toBe(ErrorCode.INVALID_ARGUMENT);
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5' as never])
      for (const name of [
        'initialBytesPerSecond',
        'minBytesPerSecond',
        'maxBytesPerSecond',
        'snapshotsPerSecond',
      ])
        expect(codeOf(() => createBandwidthBudget({ [name]: bad }))).toBe(
          ErrorCode.INVALID_ARGUMENT,
        );
    expect(codeOf(() => createBandwidthBudget({ initialBytesPerSecond: 1_000 }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(
      codeOf(() => createBandwidthBudget({ minBytesPerSecond: 9_000, maxBytesPerSecond: 8_000 })),
    ).toBe(ErrorCode.INVALID_ARGUMENT);
    const budget = createBandwidthBudget();
    expect(codeOf(() => budget.update(stats(), -1))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => budget.update(stats(), Number.NaN))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => budget.update(stats({ lossRate: 1.5 }), 0))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(codeOf(() => budget.update(stats({ lossRate: Number.NaN }), 0))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(codeOf(() => budget.update(stats({ unreliableDropped: -1 }), 0))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(budget.bytesPerSecond).toBe(64_000);
  });
});
