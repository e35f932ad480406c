// What a browser game client bundles: the engine, prediction, and the shared definitions of
// its messages and entities (schemas). Measured by size-limit (see package.json).
import { createClient, createPrediction, interpolateEntities } from '@tickwire/client';
import { defineEntityType } from '@tickwire/replication';
import { defineMessages, defineSchema } from '@tickwire/serialization';
// The factories one by one (not `import { t }`): the bundle keeps only the field types used.
import * as t from '@tickwire/serialization/t';

export const Player = defineEntityType('player', {
  x: t.quantized(0, 2048, 1 / 32),
  y: t.quantized(0, 2048, 1 / 32),
  angle: t.angle(12),
  hp: t.u8(),
  score: t.varuint(),
});

export const messages = {
  client: defineMessages({
    input: {
      id: 1,
      schema: defineSchema({ seq: t.varuint(), dx: t.i8(), dy: t.i8(), fire: t.bool() }),
    },
    chat: { id: 2, schema: defineSchema({ text: t.string({ maxBytes: 200 }) }) },
  }),
  server: defineMessages({
    ack: { id: 1, schema: defineSchema({ seq: t.varuint() }) },
    chat: {
      id: 2,
      schema: defineSchema({ from: t.string({ maxBytes: 64 }), text: t.string({ maxBytes: 200 }) }),
    },
  }),
};

export { createClient, createPrediction, interpolateEntities };
