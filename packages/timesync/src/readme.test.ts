import { createManualTime } from '@tickwire/core';
import { createMemoryConnectionPair } from '@tickwire/core/memory';
import { expect, it } from 'vitest';
import { serveTimeSync, timeSyncOverConnection } from './index.js';

// The README's example on a manual clock, with assertions instead of logging.
it('runs the README example', async () => {
  const time = createManualTime();
  const [clientConn, serverConn] = createMemoryConnectionPair();
  serveTimeSync(serverConn, { time: { now: () => time.now() + 12_345 } });
  const sync = timeSyncOverConnection(clientConn, { tickRateHz: 60, time });
  const done = sync.sync();
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    time.advance(100);
  }
  const stats = await done;
  expect(Math.abs(stats.offsetMs - 12_345)).toBeLessThan(100);
  expect(sync.currentTick()).toBe(sync.tickAt(sync.serverNow()));
  let fired = false;
  sync.at(sync.serverNow() + 500, () => {
    fired = true;
  });
  time.advance(600);
  expect(fired).toBe(true);
  sync.close();
  clientConn.close();
});
