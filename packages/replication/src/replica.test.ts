import { ErrorCode, isTickwireError } from '@tickwire/core';
import { BinaryWriter, t } from '@tickwire/serialization';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defineEntityType } from './entity-type.js';
import { K_BITS, PLAIN } from './field-coding.js';
import { writeIds } from './id-coding.js';
import { createReplica, type Replica } from './replica.js';
import { createReplicationServer, SNAPSHOT_FORMAT } from './server.js';
import { replicaState } from './test-support.js';
import { createWorld } from './world.js';

const Ship = defineEntityType('ship', { x: t.f32(), hp: t.u8(), name: t.string({ maxBytes: 4 }) });
const Rock = defineEntityType('rock', { size: t.uint(3) });
const Mine = defineEntityType('mine', { armed: t.bool() });
const types = [Ship, Rock, Mine];

// A replica holding a few entities after two snapshots (full, then a delta against the first).
function populated() {
  const world = createWorld({ types });
  const server = createReplicationServer({ world });
  server.addClient('c');
  const replica = createReplica({ types });
  const ships = [0, 1, 2].map((i) => world.spawn(Ship, { x: i, hp: 10, name: 'a' }));
  world.spawn(Rock, { size: 3 });
  const first = server.snapshotFor('c');
  server.ack('c', replica.apply(first)!);
  ships[1]!.set('hp', 9);
  world.despawn(ships[2]!);
  world.spawn(Rock, { size: 1 });
  const second = server.snapshotFor('c');
  server.ack('c', replica.apply(second)!);
  ships[0]!.set('x', 7);
  world.spawn(Ship, { x: 1, hp: 1, name: 'b' });
  const next = server.snapshotFor('c');
  return { replica, first, second, next };
}

const populatedOnce = populated();

/** A new replica in the state `populated()` leaves, from that run's snapshot bytes (cheap). */
function replayed(): Replica {
  const replica = createReplica({ types });
  replica.apply(populatedOnce.first);
  replica.apply(populatedOnce.second);
  return replica;
}

// Hand-written snapshot: header (tick 0, no checksum, the given types with updates, their
// fields plainly coded), then the three id lists with the given per-entity writers.
function snapshot(
  snapshotId: number,
  baselineDistance: number,
  body: (writer: BinaryWriter) => void = (w) => {
    writeIds(w, [], 0);
    writeIds(w, [], 0);
    writeIds(w, [], 0);
  },
  options: {
    format?: number;
    updatedTypes?: number[];
    defaultMask?: number;
    exceptions?: [number, number][];
  } = {},
): Uint8Array {
  const writer = new BinaryWriter();
  writer.writeBits(options.format ?? SNAPSHOT_FORMAT, 2);
  writer.writeVarUint(snapshotId);
  writer.writeVarUint(baselineDistance);
  writer.writeVarUint(0);
  writer.writeBool(false);
  types.forEach((type, index) => {
    const updated = options.updatedTypes?.includes(index) === true;
    writer.writeBool(updated);
    if (!updated) return;
    const all = 2 ** type.fieldTypes.length - 1;
    writer.writeBits(all, type.fieldTypes.length); // fields any update carries
    for (const field of type.fieldTypes) if (field.packed) writer.writeBits(PLAIN, K_BITS);
    const defaultMask = options.defaultMask ?? all;
    writer.writeBool(defaultMask === all);
    if (defaultMask !== all) writer.writeBits(defaultMask, type.fieldTypes.length);
    const exceptions = options.exceptions ?? [];
    writer.writeBool(exceptions.length > 0);
    if (exceptions.length > 0) writer.writeVarUint(exceptions.length - 1);
    let previous = -1;
    for (const [position, mask] of exceptions) {
      writer.writeVarUint(position - previous - 1);
      writer.writeBits(mask, type.fieldTypes.length);
      previous = position;
    }
  });
  body(writer);
  return writer.toBytes();
}

function expectRejected(replica: Replica, bytes: Uint8Array, message?: RegExp): void {
  const before = replicaState(replica);
  const last = replica.lastSnapshotId;
  let error: unknown;
  try {
    replica.apply(bytes);
  } catch (e) {
    error = e;
  }
  expect(isTickwireError(error) && error.code).toBe(ErrorCode.DECODE_FAILED);
  if (message) expect((error as Error).message).toMatch(message);
  expect(replicaState(replica)).toEqual(before);
  expect(replica.lastSnapshotId).toBe(last);
}

describe('createReplica', () => {
  it('rejects malformed headers', () => {
    const { replica } = populated();
    expectRejected(replica, new Uint8Array(0), /truncated/);
    expectRejected(replica, snapshot(5, 0, undefined, { format: 0 }), /unknown format 0/);
    expectRejected(replica, snapshot(0, 0), /snapshot id 0/);
    expectRejected(replica, snapshot(5, 5), /baseline distance/);
    expectRejected(replica, snapshot(9, 1), /baseline 8 was never applied/);
  });

  it('rejects bodies that do not match its state', () => {
    const { replica } = populated();
    const noLists = (w: BinaryWriter) => writeIds(w, [], 0);
    expectRejected(
      replica,
      snapshot(3, 1, (w) => {
        noLists(w);
        writeIds(w, [9], 1);
        w.writeVarUint(0);
        w.writeBits(3, 2);
      }),
      /unknown type index 3/,
    );
    expectRejected(
      replica,
      snapshot(
        3,
        1,
        (w) => {
          noLists(w);
          noLists(w);
          writeIds(w, [42], 1);
        },
        { updatedTypes: [0] },
      ),
      /not in baseline/,
    );
    expectRejected(
      replica,
      snapshot(
        3,
        1,
        (w) => {
          noLists(w);
          noLists(w);
          writeIds(w, [0], 1);
        },
        { updatedTypes: [0], defaultMask: 0 },
      ),
      /no fields/,
    );
    expectRejected(
      replica,
      snapshot(
        3,
        1,
        (w) => {
          writeIds(w, [0], 1);
          w.writeBool(false); // despawned
          noLists(w);
          writeIds(w, [0], 1);
          w.writeBits(5, 8);
        },
        { updatedTypes: [0], defaultMask: 2 },
      ),
      /both removed and updated/,
    );
    expectRejected(
      replica,
      snapshot(
        3,
        1,
        (w) => {
          noLists(w);
          writeIds(w, [0], 1);
          w.writeVarUint(0);
          w.writeBits(1, 2);
          w.writeBool(false); // not entered: spawned
          w.writeBool(false); // not owned
          w.writeBool(true); // every field
          w.writeBits(1, 3);
          writeIds(w, [0], 1);
          w.writeBits(5, 8);
        },
        { updatedTypes: [0], defaultMask: 2 },
      ),
      /both spawned and updated/,
    );
    expectRejected(
      replica,
      snapshot(
        3,
        2,
        (w) => {
          noLists(w);
          noLists(w);
          writeIds(w, [4], 1); // entity 4 arrived in snapshot 2, so it is not in baseline 1
        },
        { updatedTypes: [1] },
      ),
      /not in baseline 1/,
    );
    expectRejected(
      replica,
      snapshot(3, 1, (w) => {
        noLists(w);
        noLists(w);
        noLists(w);
        w.writeBits(0xff, 8);
      }),
    );
    expectRejected(
      replica,
      snapshot(
        3,
        1,
        (w) => {
          noLists(w);
          noLists(w);
          writeIds(w, [0], 1); // every field, plainly
          w.writeF32(1);
          w.writeBits(2, 8);
          // name: missing
        },
        { updatedTypes: [0] },
      ),
      /truncated/,
    );
    expectRejected(
      replica,
      snapshot(3, 1, (w) => {
        noLists(w);
        noLists(w);
        writeIds(w, [0], 1); // an update of a type whose parameters are missing
      }),
      /no parameters/,
    );
  });

  it('holds entities with large ids without a large array', () => {
    const replica = createReplica({ types });
    const bytes = snapshot(1, 0, (w) => {
      writeIds(w, [], 0);
      writeIds(w, [5, 2 ** 31 - 2], 2);
      for (let i = 0; i < 2; i++) {
        w.writeVarUint(0);
        w.writeBits(2, 2); // mine
        w.writeBool(false);
        w.writeBool(false);
        w.writeBool(true);
        w.writeBits(1, 1);
      }
      writeIds(w, [], 0);
    });
    replica.apply(bytes);
    expect(replica.size).toBe(2);
    expect(replica.get(2 ** 31 - 2)?.get('armed' as never)).toBe(true);
    expect([...replica.entities()].map((e) => e.id)).toEqual([5, 2 ** 31 - 2]);
  });

  it('ignores stale and duplicate snapshots', () => {
    const { replica, second } = populated();
    const before = replicaState(replica);
    expect(replica.apply(second)).toBeUndefined();
    expect(replica.apply(snapshot(1, 0))).toBeUndefined();
    expect(replicaState(replica)).toEqual(before);
  });

  it('decodes or rejects any bytes and is unchanged when it rejects (fuzz)', () => {
    const check = (bytes: Uint8Array) => {
      const replica = replayed();
      const before = replicaState(replica);
      try {
        replica.apply(bytes);
      } catch (error) {
        expect(isTickwireError(error) && error.code).toBe(ErrorCode.DECODE_FAILED);
        expect(replicaState(replica)).toEqual(before);
        expect(replica.lastSnapshotId).toBe(2);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), check), { numRuns: 5000, seed: 1 });
    const { next } = populatedOnce;
    const mutated = fc
      .tuple(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat(),
      )
      .map(([flips, cut]) => {
        const bytes = next.slice(0, next.length - (cut % 3));
        for (const [at, bit] of flips) bytes[at % bytes.length]! ^= 1 << bit;
        return bytes;
      });
    fc.assert(fc.property(mutated, check), { numRuns: 5000, seed: 2 });
  });
});
