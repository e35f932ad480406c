import { expect, it } from 'vitest';
import { z } from 'zod';
import { defineMessages, defineSchema, type Infer } from './index.js';
import * as t from './t/index.js';

// The README's example, with assertions instead of logging.
it('runs the README example', () => {
  const entity = t.object({
    id: t.varuint(),
    x: t.quantized(-1024, 1024, 0.01), // 18 bits
    y: t.quantized(-1024, 1024, 0.01),
    angle: t.angle(10), // radians, 10 bits
    hp: t.u8(),
    name: t.optional(t.string({ maxBytes: 32 })),
  });
  const snapshot = defineSchema({
    tick: t.varuint(),
    entities: t.array(entity, { maxLength: 256 }),
  });
  type Snapshot = Infer<typeof snapshot>;

  const state: Snapshot = {
    tick: 42,
    entities: [{ id: 1, x: 10.5, y: -3.25, angle: 1.57, hp: 100 }],
  };
  const bytes = snapshot.encode(state);
  expect(bytes.length).toBe(10);
  const decoded = snapshot.decode(bytes);
  expect(decoded.entities[0]!.x).toBeCloseTo(10.5, 2);
  expect(snapshot.fingerprint).toBe(snapshot.fingerprint >>> 0);

  expect(() =>
    snapshot.encode({ tick: 1, entities: [{ id: 1, x: 0, y: 0, angle: 0, hp: 300 }] }),
  ).toThrow('entities[0].hp: expected an integer in [0, 255], got 300');

  const messages = defineMessages({
    snapshot: { id: 1, schema: snapshot },
    chat: { id: 2, schema: z.object({ text: z.string().max(200) }) },
  });
  const wire = messages.encode('chat', { text: 'gg' });
  expect(wire[0]).toBe(2);
  expect(new TextDecoder().decode(wire.subarray(1))).toBe('{"text":"gg"}');
  const message = messages.decode(wire);
  expect(message.type).toBe('chat');
  if (message.type === 'chat') expect(message.value.text).toBe('gg');
});

it('runs the README example of integer images', () => {
  const x = t.quantized(0, 100, 0.5);
  expect(x.packed!.pack(12.3)).toBe(25);
  expect(x.packed!.unpack(25)).toBe(12.5);
  expect(x.packed!.imageOf!(12.3)).toBe(25);
  expect(x.packed!.imageOf!(250)).toBe(-1);
  expect(t.f32().packed!.pack(1.5) - t.f32().packed!.pack(1)).toBe(4194304);
});
