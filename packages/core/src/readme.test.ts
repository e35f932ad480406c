import { expect, it } from 'vitest';
import { conditionConnection } from './index.js';
import { createMemoryClient, createMemoryServer } from './memory/index.js';
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
