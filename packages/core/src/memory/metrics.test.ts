import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors.js';
import { noopMetrics } from '../metrics.js';
import { createMemoryMetrics } from './metrics.js';

describe('memory metrics', () => {
  it('counts per label set, independent of label order', () => {
    const metrics = createMemoryMetrics();
    const sent = metrics.counter('tw_messages_sent_total', { help: 'messages sent' });
    sent.inc();
    sent.inc(2, { channel: 'reliable', room: 'r1' });
    sent.inc(3, { room: 'r1', channel: 'reliable' });
    expect(metrics.value('tw_messages_sent_total')).toBe(1);
    expect(metrics.value('tw_messages_sent_total', { channel: 'reliable', room: 'r1' })).toBe(5);
    expect(metrics.value('tw_messages_sent_total', { channel: 'unreliable' })).toBeUndefined();
    expect(metrics.counter('tw_messages_sent_total')).toBe(sent);
  });

  it('sets, raises and lowers gauges', () => {
    const metrics = createMemoryMetrics();
    const rooms = metrics.gauge('tw_rooms');
    rooms.set(5);
    rooms.inc();
    rooms.dec(3);
    expect(metrics.value('tw_rooms')).toBe(3);
  });

  it('buckets histogram observations cumulatively, with count and sum', () => {
    const metrics = createMemoryMetrics();
    const tick = metrics.histogram('tw_tick_ms', { buckets: [1, 5, 10], help: 'tick duration' });
    for (const v of [0.5, 1, 3, 7, 12, 100]) tick.observe(v);
    const [snap] = metrics.snapshot();
    expect(snap).toMatchObject({ name: 'tw_tick_ms', type: 'histogram', help: 'tick duration' });
    const series = snap!.series[0]!;
    expect(series.count).toBe(6);
    expect(series.value).toBeCloseTo(123.5);
    expect(series.buckets).toEqual([
      { le: 1, count: 2 },
      { le: 5, count: 3 },
      { le: 10, count: 4 },
      { le: Number.POSITIVE_INFINITY, count: 6 },
    ]);
  });

  it('rejects bad names, types, values and buckets with typed errors', () => {
    const metrics = createMemoryMetrics();
    metrics.counter('tw_a');
    expect(() => metrics.gauge('tw_a')).toThrow(
      expect.objectContaining({ code: ErrorCode.CONFLICT }),
    );
    expect(() => metrics.counter('bad name')).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => metrics.counter('tw_a').inc(-1)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => metrics.gauge('tw_g').set(Number.NaN)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => metrics.histogram('tw_h', { buckets: [5, 1] })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(metrics.value('tw_a')).toBeUndefined();
  });

  it('noop metrics accept every call and record nothing', () => {
    noopMetrics.counter('x').inc();
    noopMetrics.gauge('x').set(1);
    noopMetrics.gauge('x').inc();
    noopMetrics.gauge('x').dec();
    noopMetrics.histogram('x').observe(1);
    expect(noopMetrics.counter('y')).toBe(noopMetrics.counter('z'));
  });
});
