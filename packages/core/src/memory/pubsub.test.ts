import { describe, expect, it } from 'vitest';
import { ErrorCode, isTickwireError } from '../errors.js';
import { testPubSub } from '../testing/pubsub-suite.js';
import { createMemoryLogger } from './logger.js';
import { createMemoryPubSub } from './pubsub.js';

testPubSub('memory', () => ({ publisher: createMemoryPubSub() }));

describe('memory pub/sub', () => {
  it('delivers asynchronously, never inside publish()', async () => {
    const pubsub = createMemoryPubSub();
    const seen: string[] = [];
    await pubsub.subscribe('t', (message) => seen.push(message as string));
    const publishing = pubsub.publish('t', 'x');
    expect(seen).toEqual([]);
    await publishing;
    await Promise.resolve();
    expect(seen).toEqual(['x']);
  });

  it('gives each subscriber its own copy of a byte message', async () => {
    const pubsub = createMemoryPubSub();
    const got: Uint8Array[] = [];
    await pubsub.subscribe('t', (m) => got.push(m as Uint8Array));
    await pubsub.subscribe('t', (m) => got.push(m as Uint8Array));
    const payload = new Uint8Array([1, 2, 3]);
    await pubsub.publish('t', payload);
    payload[0] = 9;
    await Promise.resolve();
    got[0]![1] = 7;
    expect(Array.from(got[1]!)).toEqual([1, 2, 3]);
  });

  it('logs an async handler that rejects instead of crashing the process', async () => {
    const logger = createMemoryLogger();
    const pubsub = createMemoryPubSub({ logger });
    await pubsub.subscribe('t', async () => {
      throw new Error('async bug');
    });
    await pubsub.publish('t', 'x');
    for (let i = 0; i < 3; i++) await Promise.resolve();
    expect(logger.records.map((r) => r.level)).toEqual(['error']);
  });

  it('copies a Node Buffer on publish', async () => {
    const pubsub = createMemoryPubSub();
    const got: Uint8Array[] = [];
    await pubsub.subscribe('t', (m) => got.push(m as Uint8Array));
    const buffer = Buffer.from([1, 2]);
    await pubsub.publish('t', buffer);
    buffer.fill(0);
    await Promise.resolve();
    expect(Array.from(got[0]!)).toEqual([1, 2]);
  });

  it('logs a throwing handler with its topic', async () => {
    const logger = createMemoryLogger();
    const pubsub = createMemoryPubSub({ logger });
    await pubsub.subscribe('boom', () => {
      throw new Error('bug');
    });
    await pubsub.publish('boom', 'x');
    await Promise.resolve();
    expect(logger.records).toHaveLength(1);
    expect(logger.records[0]).toMatchObject({ level: 'error', fields: { topic: 'boom' } });
  });

  it('rejects a non-function handler and calls after close()', async () => {
    const pubsub = createMemoryPubSub();
    await expect(pubsub.subscribe('t', 'nope' as never)).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    await pubsub.close();
    const error = await pubsub.publish('t', 'x').catch((e: unknown) => e);
    expect(isTickwireError(error, ErrorCode.CLOSED)).toBe(true);
  });
});
