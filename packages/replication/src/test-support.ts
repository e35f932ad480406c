import { BinaryReader, BinaryWriter, type Type } from '@tickwire/serialization';
import type { Replica } from './replica.js';
import type { World } from './world.js';

const writer = new BinaryWriter();
const reader = new BinaryReader();

/** The value a field decodes to on the client: the declared precision. */
export function atPrecision(type: Type<unknown>, value: unknown): unknown {
  writer.reset();
  type.write(writer, value);
  return type.read(reader.reset(writer.toBytes()));
}

/** A world's state as the client should see it: id → type, generation and values at precision. */
export function expectedState(world: World): Record<number, unknown> {
  const state: Record<number, unknown> = {};
  for (const entity of world.entities()) {
    const values: Record<string, unknown> = {};
    entity.type.fieldNames.forEach((name, index) => {
      values[name] = atPrecision(entity.type.fieldTypes[index]!, entity.get(name));
    });
    state[entity.id] = { type: entity.type.name, generation: entity.generation, values };
  }
  return state;
}

/** A replica's state in the shape of {@link expectedState}. */
export function replicaState(replica: Replica): Record<number, unknown> {
  const state: Record<number, unknown> = {};
  for (const entity of replica.entities())
    state[entity.id] = {
      type: entity.type.name,
      generation: entity.generation,
      values: entity.values(),
    };
  return state;
}
