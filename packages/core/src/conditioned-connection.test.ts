import { describe, expect, it } from 'vitest';
import { createManualTime } from './clock.js';
import { conditionConnection } from './conditioned-connection.js';
import { ErrorCode, TickwireError } from './errors.js';
import { createMemoryConnectionPair } from './memory/transport.js';
import { createRandom } from './random.js';
import type { Channel } from './transport.js';

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

function setup(options: Parameters<typeof conditionConnection>[1] = {}) {
  const time = createManualTime();
  const [rawA, b] = createMemoryConnectionPair({ maxMessageBytes: 1000 });
  const a = conditionConnection(rawA, { time, ...options });
  const atB: { seq: number; channel: Channel }[] = [];
  const atA: { seq: number; channel: Channel }[] = [];
  b.on('message', (data, channel) => atB.push({ seq: data[0]!, channel }));
  a.on('message', (data, channel) => atA.push({ seq: data[0]!, channel }));
  /** Moves manual time in 1 ms steps, letting the memory transport's microtasks run. */
  const advance = async (ms: number) => {
    for (let i = 0; i < ms; i++) {
      time.advance(1);
      await flush();
    }
  };
  return { time, a, b, rawA, atA, atB, advance };
}

describe('conditionConnection', () => {
  it('delays outbound and inbound messages by the configured latency on the injected clock', async () => {
    const { a, b, atA, atB, advance } = setup({
      outbound: { latencyMs: 30 },
      inbound: { latencyMs: 20 },
    });
    a.send(new Uint8Array([1]));
    await advance(29);
    expect(atB).toEqual([]);
    await advance(1);
    expect(atB).toEqual([{ seq: 1, channel: 'reliable' }]);
    b.send(new Uint8Array([2]), 'unreliable');
    await flush();
    await advance(19);
    expect(atA).toEqual([]);
    await advance(1);
    expect(atA).toEqual([{ seq: 2, channel: 'unreliable' }]);
    expect(a.inbound.stats.delivered).toBe(1);
    expect(a.outbound.stats.delivered).toBe(1);
  });

  it('keeps reliable messages complete and ordered under loss and jitter', async () => {
    const { a, b, atA, atB, advance } = setup({
      seed: 4,
      outbound: { latencyMs: 10, jitterMs: 8, lossRate: 0.3 },
      inbound: { latencyMs: 10, jitterMs: 8, lossRate: 0.3 },
    });
    for (let i = 0; i < 100; i++) {
      a.send(new Uint8Array([i]), 'reliable');
      b.send(new Uint8Array([i]), 'reliable');
    }
    expect(a.bufferedAmount).toBe(100);
    await advance(400);
    const expected = Array.from({ length: 100 }, (_, i) => ({ seq: i, channel: 'reliable' }));
    expect(atB).toEqual(expected);
    expect(atA).toEqual(expected);
    expect(a.outbound.stats.retransmitted).toBeGreaterThan(10);
    expect(a.bufferedAmount).toBe(0);
  });

  it('sequences unreliable traffic both ways: losses, no duplicates, nothing older than delivered', async () => {
    const { a, b, atA, atB, advance } = setup({
      seed: 9,
      outbound: { latencyMs: 10, jitterMs: 9, lossRate: 0.2, duplicateRate: 0.3, reorderRate: 0.3 },
      inbound: { latencyMs: 10, jitterMs: 9, lossRate: 0.2, duplicateRate: 0.3, reorderRate: 0.3 },
    });
    for (let i = 0; i < 200; i++) {
      a.send(new Uint8Array([i]), 'unreliable');
      b.send(new Uint8Array([i]), 'unreliable');
      await advance(1);
    }
    await advance(100);
    for (const got of [atA, atB]) {
      expect(got.length).toBeGreaterThan(50);
      expect(got.length).toBeLessThan(200);
      for (let i = 1; i < got.length; i++) expect(got[i]!.seq).toBeGreaterThan(got[i - 1]!.seq);
    }
    expect(a.outbound.stats.duplicated + a.inbound.stats.duplicated).toBeGreaterThan(0);
  });

  it('switches conditions live (the demo switch) and passes identity and stats through', async () => {
    const { a, rawA, atB, advance } = setup();
    a.send(new Uint8Array([1]));
    await advance(1);
    expect(atB.length).toBe(1);
    a.configure({ outbound: { latencyMs: 50 }, inbound: { latencyMs: 5 } });
    a.send(new Uint8Array([2]));
    await advance(49);
    expect(atB.length).toBe(1);
    await advance(1);
    expect(atB.length).toBe(2);
    expect(a.id).toBe(rawA.id);
    expect(a.remoteAddress).toBe(rawA.remoteAddress);
    expect(a.maxMessageBytes).toBe(1000);
    // Stats are what the application sees through the simulated link: RTT includes its delays.
    expect(a.stats.bytesOut).toBe(rawA.stats.bytesOut);
    expect(a.stats.messagesOut).toBe(2);
    // Mean outbound delay: 1 ms (zero delay, delivered in the microtask after the first step) and 50 ms.
    expect(a.stats.rttMs).toBe(0 + (1 + 50) / 2 + 5);
    expect(a.stats.lossRate).toBe(0);
    expect(a.inner).toBe(rawA);
    expect(a.inbound.options.latencyMs).toBe(5);
  });

  it('rejects oversize, unknown channels and sends after close with typed errors', async () => {
    const { a, advance } = setup({ random: createRandom(3) });
    expect(() => a.send(new Uint8Array(1001))).toThrow(
      expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LARGE }),
    );
    expect(() => a.send(new Uint8Array(1), 'x' as Channel)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    const closes: number[] = [];
    a.on('close', (info) => closes.push(info.code));
    a.close(4321, 'done');
    a.close();
    expect(a.state).toBe('closing');
    expect(() => a.send(new Uint8Array(1))).toThrow(
      expect.objectContaining({ code: ErrorCode.CONNECTION_CLOSED }),
    );
    await advance(2);
    expect(closes).toEqual([4321]);
    expect(a.state).toBe('closed');
  });

  it('reports simulated loss in stats.lossRate and packetsLost', async () => {
    const { a, advance } = setup({ seed: 2, outbound: { lossRate: 0.5 } });
    for (let i = 0; i < 200; i++) a.send(new Uint8Array([i]), 'unreliable');
    await advance(1);
    expect(a.stats.packetsLost).toBe(a.outbound.stats.lost);
    expect(a.stats.lossRate).toBeGreaterThan(0.4);
    expect(a.stats.lossRate).toBeLessThan(0.6);
  });

  it('follows an inner connection that opens after wrapping', () => {
    const [raw] = createMemoryConnectionPair();
    let innerState: 'connecting' | 'open' = 'connecting';
    const connecting = Object.create(raw, { state: { get: () => innerState } });
    const a = conditionConnection(connecting, { time: createManualTime() });
    expect(a.state).toBe('connecting');
    innerState = 'open';
    expect(a.state).toBe('open');
    expect(a.send(new Uint8Array([1]))).toBe(true);
  });

  it('copies a Node Buffer on send, so the caller may reuse it', async () => {
    const { a, atB, advance } = setup({ outbound: { latencyMs: 5 } });
    const buffer = Buffer.from([7]);
    a.send(buffer);
    buffer[0] = 9;
    await advance(6);
    expect(atB).toEqual([{ seq: 7, channel: 'reliable' }]);
  });

  it('forwards transport errors', () => {
    const time = createManualTime();
    const [raw] = createMemoryConnectionPair();
    // A connection whose transport reports an error: listeners registered through `on`.
    const errorListeners: ((error: TickwireError) => void)[] = [];
    const failing = {
      ...raw,
      on: ((event: string, listener: (error: TickwireError) => void) => {
        if (event === 'error') errorListeners.push(listener);
        return () => {};
      }) as typeof raw.on,
    };
    const a = conditionConnection(failing, { time });
    const errors: string[] = [];
    a.on('error', (error) => errors.push(error.code));
    for (const listener of errorListeners)
      listener(new TickwireError(ErrorCode.PROTOCOL_ERROR, 'bad frame'));
    expect(errors).toEqual([ErrorCode.PROTOCOL_ERROR]);
  });
});
