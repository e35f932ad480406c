// The receiving side of the transport benchmark, run in its own process (child_process.fork),
// so that sender and receiver each have a core, for Tickwire and the raw libraries alike.
import { createDriver, type DriverName, type Link } from './drivers.js';

/** Messages from the benchmark process. */
export type PeerCommand =
  | { type: 'listen'; driver: DriverName }
  | { type: 'count'; expected: number }
  | { type: 'echo' }
  | { type: 'close' };

/** Messages to the benchmark process. */
export type PeerReply =
  | { type: 'listening'; port: number }
  | { type: 'ready' }
  | { type: 'counted'; received: number; bytes: number };

/** A 1-byte message: the sender's "that was all" marker on channels that may lose messages. */
export const END_MARKER_BYTES = 1;

const reply = (message: PeerReply) => process.send?.(message);

let mode: 'count' | 'echo' = 'count';
let expected = 0;
let received = 0;
let bytes = 0;
let closeListener: (() => Promise<void>) | null = null;

function onLink(link: Link): void {
  link.onMessage((data) => {
    if (mode === 'echo') {
      link.send(data);
      return;
    }
    if (data.byteLength === END_MARKER_BYTES) {
      // Markers are sent three times (they may be lost); answer the first only.
      if (expected !== -1) reply({ type: 'counted', received, bytes });
      expected = -1;
      return;
    }
    if (expected === -1) return;
    received++;
    bytes += data.byteLength;
    if (received === expected) {
      reply({ type: 'counted', received, bytes });
      expected = -1;
    }
  });
}

process.on('message', async (command: PeerCommand) => {
  switch (command.type) {
    case 'listen': {
      const listener = await (await createDriver(command.driver)).listen(onLink);
      closeListener = () => listener.close();
      reply({ type: 'listening', port: listener.port });
      break;
    }
    case 'count':
      mode = 'count';
      expected = command.expected;
      received = 0;
      bytes = 0;
      reply({ type: 'ready' });
      break;
    case 'echo':
      mode = 'echo';
      reply({ type: 'ready' });
      break;
    case 'close':
      await closeListener?.();
      process.exit(0);
  }
});
