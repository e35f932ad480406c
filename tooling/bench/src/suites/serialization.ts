import { schema as colyseusSchema, t as ct, Decoder, Encoder } from '@colyseus/schema';
import { Decoder as MsgpackDecoder, Encoder as MsgpackEncoder } from '@msgpack/msgpack';
import { createRandom } from '@tickwire/core';
import { defineSchema, t } from '@tickwire/serialization';
import { Bench } from 'tinybench';
import { type Row, rowFactory, type Suite, type SuiteOptions } from '../report.js';

const row = rowFactory('serialization');

/** One entity of the arena: what a shooter replicates for each player or projectile. */
interface Entity {
  id: number;
  x: number;
  y: number;
  angle: number;
  hp: number;
}

interface Snapshot {
  tick: number;
  entities: Entity[];
}

// Tickwire: positions quantized to 1 cm in a 2 km arena, angle in 10 bits, hp a byte.
const entitySchema = t.object({
  id: t.varuint(),
  x: t.quantized(-1000, 1000, 0.01),
  y: t.quantized(-1000, 1000, 0.01),
  angle: t.angle(10),
  hp: t.u8(),
});
const snapshotSchema = defineSchema({
  tick: t.varuint(),
  entities: t.array(entitySchema, { maxLength: 4096 }),
});
// The same with 32-bit floats, as @colyseus/schema's float32 fields: no quantization advantage.
const f32SnapshotSchema = defineSchema({
  tick: t.varuint(),
  entities: t.array(
    t.object({ id: t.varuint(), x: t.f32(), y: t.f32(), angle: t.f32(), hp: t.u8() }),
    { maxLength: 4096 },
  ),
});
type TickwireSchema = typeof snapshotSchema | typeof f32SnapshotSchema;

// @colyseus/schema: its types for the same fields (float32 positions and angle, uint8 hp).
const ColyseusEntity = colyseusSchema(
  { id: ct.uint16(), x: ct.float32(), y: ct.float32(), angle: ct.float32(), hp: ct.uint8() },
  'Entity',
);
const ColyseusSnapshot = colyseusSchema(
  { tick: ct.uint32(), entities: ct.array(ColyseusEntity) },
  'Snapshot',
);

function makeSnapshot(count: number, seed: number): Snapshot {
  const random = createRandom(seed);
  const entities: Entity[] = [];
  for (let i = 0; i < count; i++) {
    entities.push({
      id: i + 1,
      x: random.range(-1000, 1000),
      y: random.range(-1000, 1000),
      angle: random.range(0, 2 * Math.PI),
      hp: random.int(101),
    });
  }
  return { tick: 123_456, entities };
}

function colyseusState(snapshot: Snapshot) {
  const state = new ColyseusSnapshot();
  state.tick = snapshot.tick;
  for (const e of snapshot.entities) {
    const entity = new ColyseusEntity();
    entity.id = e.id;
    entity.x = e.x;
    entity.y = e.y;
    entity.angle = e.angle;
    entity.hp = e.hp;
    state.entities.push(entity);
  }
  return state;
}

interface CodecUnderTest {
  name: string;
  encode(): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

function codecs(snapshot: Snapshot, schema: TickwireSchema): CodecUnderTest[] {
  const textEncoder = new TextEncoder();
  const textDecoder = new TextDecoder();
  const msgpackEncoder = new MsgpackEncoder();
  const msgpackDecoder = new MsgpackDecoder();
  const state = colyseusState(snapshot);
  // Large enough for the 1000-entity state, so Colyseus does not grow its buffer while timed.
  Encoder.BUFFER_SIZE = 128 * 1024;
  const encoder = new Encoder(state);
  return [
    {
      name: 'tickwire',
      encode: () => schema.encode(snapshot),
      decode: (bytes) => schema.decode(bytes),
    },
    {
      name: 'JSON',
      encode: () => textEncoder.encode(JSON.stringify(snapshot)),
      decode: (bytes) => JSON.parse(textDecoder.decode(bytes)),
    },
    {
      name: '@msgpack/msgpack',
      encode: () => msgpackEncoder.encode(snapshot),
      decode: (bytes) => msgpackDecoder.decode(bytes),
    },
    {
      // A full state (encodeAll), decoded into a fresh state: what a joining client gets.
      name: '@colyseus/schema',
      encode: () => encoder.encodeAll(),
      decode: (bytes) => new Decoder(new ColyseusSnapshot()).decode(bytes),
    },
  ];
}

interface Figures {
  bytes: number;
  encodeOps: number;
  decodeOps: number;
  roundTripOps: number;
}

async function measure(
  snapshot: Snapshot,
  schema: TickwireSchema,
  options: SuiteOptions,
): Promise<Map<string, Figures>> {
  const bench = new Bench({
    time: options.quick ? 150 : 1_000,
    warmupTime: options.quick ? 50 : 200,
    timestampProvider: 'hrtimeNow',
    throws: true,
  });
  const list = codecs(snapshot, schema);
  const encoded = new Map<string, Uint8Array>();
  for (const codec of list) {
    const bytes = codec.encode().slice();
    encoded.set(codec.name, bytes);
    bench.add(`${codec.name}/encode`, () => {
      codec.encode();
    });
    bench.add(`${codec.name}/decode`, () => {
      codec.decode(bytes);
    });
    bench.add(`${codec.name}/roundtrip`, () => {
      codec.decode(codec.encode());
    });
  }
  await bench.run();
  const ops = (name: string): number => {
    const result = bench.getTask(name)?.result;
    if (result?.state !== 'completed') throw new Error(`bench task ${name} did not complete`);
    // Ops/s from the mean time per op (the mean of per-sample rates would overstate it).
    return 1000 / result.latency.mean;
  };
  const figures = new Map<string, Figures>();
  for (const codec of list) {
    figures.set(codec.name, {
      bytes: encoded.get(codec.name)!.byteLength,
      encodeOps: ops(`${codec.name}/encode`),
      decodeOps: ops(`${codec.name}/decode`),
      roundTripOps: ops(`${codec.name}/roundtrip`),
    });
  }
  return figures;
}

async function run(options: SuiteOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const snapshot20 = makeSnapshot(20, 1);
  const state1000 = makeSnapshot(1000, 2);
  const cases = [
    { name: 'snapshot-20', snapshot: snapshot20, schema: snapshotSchema },
    { name: 'state-1000', snapshot: state1000, schema: snapshotSchema },
    { name: 'snapshot-20/f32', snapshot: snapshot20, schema: f32SnapshotSchema },
    { name: 'state-1000/f32', snapshot: state1000, schema: f32SnapshotSchema },
  ];
  for (const { name, snapshot, schema } of cases) {
    const figures = await measure(snapshot, schema, options);
    const ours = figures.get('tickwire')!;
    for (const [peer, theirs] of figures) {
      if (peer === 'tickwire') continue;
      const metrics = [
        ['bytes', 'B', 'lower', ours.bytes, theirs.bytes],
        ['encode_ops_per_s', 'ops/s', 'higher', ours.encodeOps, theirs.encodeOps],
        ['decode_ops_per_s', 'ops/s', 'higher', ours.decodeOps, theirs.decodeOps],
        ['encode_decode_ops_per_s', 'ops/s', 'higher', ours.roundTripOps, theirs.roundTripOps],
      ] as const;
      for (const [metric, unit, better, tickwire, peerValue] of metrics) {
        rows.push(row({ case: name, metric, unit, better, tickwire, peer, peerValue }));
      }
    }
  }
  return rows;
}

/** The schema codec against JSON, @msgpack/msgpack and @colyseus/schema on game state. */
export const suite: Suite = { name: 'serialization', run };
