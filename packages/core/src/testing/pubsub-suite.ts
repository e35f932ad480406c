import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isTickwireError } from '../errors.js';
import type { PubSub, PubSubMessage } from '../pubsub.js';
import { withTimeout } from './wait.js';

/** What {@link testPubSub} needs: a publisher and a subscriber (two instances for a networked broker). */
export interface PubSubHarness {
  publisher: PubSub;
  /** @default publisher */
  subscriber?: PubSub;
  dispose?: () => Promise<void> | void;
}

let runNumber = 0;

/** The conformance suite of `PubSub`. Topics are unique per test, so a shared broker is fine. */
export function testPubSub(
  name: string,
  factory: () => Promise<PubSubHarness> | PubSubHarness,
  options: { eventTimeoutMs?: number } = {},
): void {
  const ms = options.eventTimeoutMs ?? 5_000;

  describe(`pub/sub conformance: ${name}`, () => {
    let harness: PubSubHarness;
    let pub: PubSub;
    let sub: PubSub;
    let ns: string;

    /** Resolves after `count` messages on `topic`, with them. */
    const receive = async (topic: string, count: number) => {
      const got: PubSubMessage[] = [];
      let resolve!: () => void;
      const done = new Promise<void>((r) => {
        resolve = r;
      });
      const unsubscribe = await sub.subscribe(topic, (message) => {
        got.push(message);
        if (got.length === count) resolve();
      });
      return {
        got,
        unsubscribe,
        done: () => withTimeout(done, ms, `${count} messages on ${topic}`).then(() => got),
      };
    };

    beforeEach(async () => {
      harness = await factory();
      pub = harness.publisher;
      sub = harness.subscriber ?? harness.publisher;
      ns = `tw-conformance:${Math.random().toString(36).slice(2)}:${runNumber++}:`;
    });

    afterEach(async () => {
      await pub.close();
      if (sub !== pub) await sub.close();
      await harness.dispose?.();
    });

    it('delivers text and bytes to a subscriber, in publishing order', async () => {
      const r = await receive(`${ns}t`, 100);
      for (let i = 0; i < 99; i++) await pub.publish(`${ns}t`, `m${i}`);
      await pub.publish(`${ns}t`, new Uint8Array([0, 255, 7]));
      const got = await r.done();
      expect(got.slice(0, 99)).toEqual(Array.from({ length: 99 }, (_, i) => `m${i}`));
      expect(got[99]).toBeInstanceOf(Uint8Array);
      expect(Array.from(got[99] as Uint8Array)).toEqual([0, 255, 7]);
    });

    it('keeps message order when publishes are not awaited one by one', async () => {
      const r = await receive(`${ns}burst`, 50);
      await Promise.all(Array.from({ length: 50 }, (_, i) => pub.publish(`${ns}burst`, `m${i}`)));
      expect(await r.done()).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    });

    it('delivers to every subscriber of a topic and only that topic', async () => {
      const a = await receive(`${ns}shared`, 1);
      const b = await receive(`${ns}shared`, 1);
      const other = await receive(`${ns}other`, 1);
      await pub.publish(`${ns}shared`, 'hello');
      await pub.publish(`${ns}other`, 'marker');
      expect(await a.done()).toEqual(['hello']);
      expect(await b.done()).toEqual(['hello']);
      expect(await other.done()).toEqual(['marker']);
    });

    it('stops delivering after unsubscribe (idempotent), other subscriptions unaffected', async () => {
      const gone = await receive(`${ns}u`, 1);
      const kept = await receive(`${ns}u`, 2);
      await pub.publish(`${ns}u`, 'first');
      await gone.done();
      await gone.unsubscribe();
      await gone.unsubscribe();
      await pub.publish(`${ns}u`, 'second');
      expect(await kept.done()).toEqual(['first', 'second']);
      expect(gone.got).toEqual(['first']);
    });

    it('publishing to a topic nobody subscribes to is fine', async () => {
      await expect(pub.publish(`${ns}nobody`, 'x')).resolves.toBeUndefined();
    });

    it('isolates a throwing handler from the other subscribers', async () => {
      await sub.subscribe(`${ns}boom`, () => {
        throw new Error('handler bug');
      });
      const ok = await receive(`${ns}boom`, 2);
      await pub.publish(`${ns}boom`, 'one');
      await pub.publish(`${ns}boom`, 'two');
      expect(await ok.done()).toEqual(['one', 'two']);
    });

    it('rejects bad arguments with INVALID_ARGUMENT', async () => {
      const codeOf = async (call: () => Promise<unknown>) => {
        try {
          await call();
        } catch (error) {
          return isTickwireError(error) ? error.code : 'not a TickwireError';
        }
        return 'no error';
      };
      expect(await codeOf(() => pub.publish('', 'x'))).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(await codeOf(() => pub.publish(`${ns}x`, 5 as unknown as string))).toBe(
        ErrorCode.INVALID_ARGUMENT,
      );
      expect(await codeOf(() => sub.subscribe('', () => {}))).toBe(ErrorCode.INVALID_ARGUMENT);
    });
  });
}
