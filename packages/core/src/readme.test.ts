import { expect, it } from 'vitest';
import {
  type ConnectionEvents,
  conditionConnection,
  Emitter,
  ListenerList,
  subscribableWith,
} from './index.js';
import { createMemoryClient, createMemoryServer, createMemoryStore } from './memory/index.js';
import { holdWrites } from './testing/hold-writes.js';
import { nextEvent } from './testing/wait.js';

// The README's example, with assertions instead of logging.
it('runs the README example', async () => {
  const server = createMemoryServer();
  server.on('connection', (conn) => {
    conn.on('message', (data, channel) => conn.send(data, channel));
  });
  const { url } = await server.listen();
  const bad = { latencyMs: 40, jitterMs: 10, lossRate: 0.05 };
  const conn = conditionConnection(await createMemoryClient().connect(url), {
    seed: 42,
    outbound: bad,
    inbound: bad,
  });
  const received: { bytes: number[]; channel: string; at: number }[] = [];
  const started = performance.now();
  conn.on('message', (data, channel) =>
    received.push({ bytes: Array.from(data), channel, at: performance.now() - started }),
  );
  const reliableEcho = new Promise<void>((resolve) =>
    conn.on('message', (_d, channel) => channel === 'reliable' && resolve()),
  );
  conn.send(new Uint8Array([1, 2, 3]), 'unreliable');
  conn.send(new Uint8Array([4, 5, 6]), 'reliable');
  await reliableEcho;
  const reliable = received.find((r) => r.channel === 'reliable')!;
  expect(reliable.bytes).toEqual([4, 5, 6]);
  expect(reliable.at).toBeGreaterThanOrEqual(55);
  for (const r of received.filter((x) => x.channel === 'unreliable'))
    expect(r.bytes).toEqual([1, 2, 3]);
  const closed = nextEvent(conn, 'close');
  await server.close();
  await closed;
});

// The "Events on a hot path" example, with assertions.
it('runs the hot-path events example', () => {
  const emitter = new Emitter<ConnectionEvents>();
  const messages = new ListenerList<ConnectionEvents['message']>();
  const events = subscribableWith(emitter, 'message', messages);
  const deliver = (data: Uint8Array): void => {
    const items = messages.items;
    for (let i = 0; i < items.length; i++) {
      try {
        items[i]!(data, 'reliable');
      } catch (error) {
        messages.report(error);
      }
    }
  };
  const seen: string[] = [];
  events.on('message', (data, channel) => seen.push(`message ${data.length} ${channel}`));
  events.on('close', (info) => seen.push(`close ${info.code}`));
  deliver(new Uint8Array(3));
  emitter.emit('close', { code: 1000, reason: '', local: true });
  expect(seen).toEqual(['message 3 reliable', 'close 1000']);
});

it('runs the README example of holdWrites', async () => {
  const held = holdWrites(createMemoryStore());
  await held.store.set('n', '0');
  const increment = async () => {
    const n = (await held.store.get('n')) as string;
    return held.store.compareAndSet('n', n, String(Number(n) + 1));
  };
  held.hold();
  const both = [increment(), increment()];
  for (let i = 0; i < 20 && held.waiting < 2; i++)
    await new Promise((resolve) => setImmediate(resolve));
  held.release();
  expect(await Promise.all(both)).toEqual([true, false]);
});
