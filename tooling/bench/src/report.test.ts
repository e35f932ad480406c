import { describe, expect, it } from 'vitest';
import { formatValue, markdownTable, rowFactory } from './report.js';
import { suites } from './suites/index.js';

describe('bench report', () => {
  const row = rowFactory('replication');

  it('builds rows in the DESIGN.md shape, ratio = tickwire / peer', () => {
    expect(
      row({
        case: 'arena-1000-random/f32',
        metric: 'bytes_per_tick',
        unit: 'B',
        better: 'lower',
        tickwire: 812.4,
        peer: '@colyseus/schema',
        peerValue: 1862.2,
      }),
    ).toEqual({
      suite: 'replication',
      case: 'arena-1000-random/f32',
      metric: 'bytes_per_tick',
      unit: 'B',
      better: 'lower',
      tickwire: 812.4,
      peer: '@colyseus/schema',
      peerValue: 1862.2,
      ratio: 0.436258,
    });
  });

  it('leaves peer, peerValue and ratio null without a peer, and the ratio null on a zero peer', () => {
    const alone = row({ case: 'c', metric: 'm', unit: 'u', better: 'higher', tickwire: 3 });
    expect([alone.peer, alone.peerValue, alone.ratio]).toEqual([null, null, null]);
    const zero = row({
      case: 'c',
      metric: 'm',
      unit: 'u',
      better: 'lower',
      tickwire: 3,
      peer: 'p',
      peerValue: 0,
    });
    expect(zero.ratio).toBeNull();
    expect(zero.peerValue).toBe(0);
  });

  it('formats figures and prints one table row per result', () => {
    expect(formatValue(null)).toBe('—');
    expect(formatValue(1234567.8)).toBe('1,234,568');
    expect(formatValue(0.123456)).toBe('0.1235');
    const table = markdownTable('core', [
      row({
        case: 'a',
        metric: 'ns_per_message',
        unit: 'ns',
        better: 'lower',
        tickwire: 10,
        peer: 'x',
        peerValue: 20,
      }),
      row({ case: 'b', metric: 'messages_per_s', unit: 'msg/s', better: 'higher', tickwire: 5 }),
    ]);
    const rows = table
      .split('\n')
      .filter((line) => line.startsWith('| a') || line.startsWith('| b'));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('0.500');
  });

  it('registers the core suite', () => {
    expect(suites.map((suite) => suite.name)).toContain('core');
  });
});
