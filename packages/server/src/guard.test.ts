import { type Channel, Opcode } from '@tickwire/core';
import { createMemoryConnectionPair } from '@tickwire/core/memory';
import { catchMicrotaskErrors, nextEvent } from '@tickwire/core/testing';
import { encodeBatch } from '@tickwire/rooms/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { createFrameCounts, guardConnection } from './guard.js';

const frame = (opcode: number, ...body: number[]) => Uint8Array.of(opcode, 0, ...body);

function setup() {
  const [server, client] = createMemoryConnectionPair();
  const counts = createFrameCounts();
  const guarded = guardConnection(server, counts, () => 'deliver');
  return { server, client, counts, guarded };
}

describe('guardConnection message listeners', () => {
  const afterCleanup: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of afterCleanup.splice(0)) cleanup();
  });

  it('calls them in order, once-listeners once, and forgets removed ones', async () => {
    const { client, guarded } = setup();
    const calls: string[] = [];
    const first = (data: Uint8Array) => calls.push(`first ${data[2]}`);
    const once = (data: Uint8Array) => calls.push(`once ${data[2]}`);
    guarded.on('message', first);
    guarded.once('message', once);
    const offLast = guarded.on('message', (data) => calls.push(`last ${data[2]}`));
    const removedOnce = () => calls.push('never');
    guarded.once('message', removedOnce);
    guarded.off('message', removedOnce);
    const seen = nextEvent(guarded, 'message', 1_000);
    client.send(frame(Opcode.RoomMessage, 1));
    await seen;
    offLast();
    guarded.off('message', first);
    guarded.on('message', (data) => calls.push(`late ${data[2]}`));
    const again = nextEvent(guarded, 'message', 1_000);
    client.send(frame(Opcode.RoomMessage, 2));
    await again;
    expect(calls).toEqual(['first 1', 'once 1', 'last 1', 'late 2']);
  });

  it('delivers each frame of a batch to the listeners there when it started, with its channel', async () => {
    const { client, guarded, counts } = setup();
    const got: [number, Channel][] = [];
    guarded.on('message', (data, channel) => {
      got.push([data[2]!, channel]);
      // Added during delivery: sees the next frame, not this one.
      if (got.length === 1) guarded.on('message', (next) => got.push([100 + next[2]!, channel]));
    });
    const done = new Promise<void>((resolve) =>
      guarded.on('message', (data) => data[2] === 3 && resolve()),
    );
    client.send(
      encodeBatch([
        { frame: frame(Opcode.RoomMessage, 1), reliable: true },
        { frame: frame(Opcode.SnapshotAck, 2), reliable: false },
        { frame: frame(Opcode.RoomMessage, 3), reliable: true },
      ]),
      'reliable',
    );
    await done;
    expect(got).toEqual([
      [1, 'reliable'],
      [2, 'unreliable'],
      [102, 'reliable'],
      [3, 'reliable'],
      [103, 'reliable'],
    ]);
    expect(counts.messagesIn[Opcode.Batch]).toBe(1);
    expect(counts.messagesIn[Opcode.RoomMessage]).toBe(2);
    expect(counts.messagesIn[Opcode.SnapshotAck]).toBe(1);
  });

  it('reports a throwing listener later, as an uncaught error, and still calls the others', async () => {
    const { client, guarded } = setup();
    // Runs every microtask, keeping what one throws (the memory transport delivers in them too).
    const caught = catchMicrotaskErrors();
    afterCleanup.push(caught.restore);
    const failure = new Error('listener bug');
    guarded.on('message', () => {
      throw failure;
    });
    const after = nextEvent(guarded, 'message', 1_000);
    client.send(frame(Opcode.RoomMessage, 1));
    await after;
    await Promise.resolve();
    expect(caught.thrown).toContain(failure);
  });
});
