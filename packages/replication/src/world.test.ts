import { ErrorCode, isTickwireError } from '@tickwire/core';
import { t } from '@tickwire/serialization';
import { describe, expect, it } from 'vitest';
import { defineEntityType } from './entity-type.js';
import { createWorld, worldInternals } from './world.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return isTickwireError(error) ? error.code : 'not a TickwireError';
  }
  return undefined;
};

describe('createWorld', () => {
  it('spawns typed entities and reads their fields', () => {
    const world = createWorld();
    const Player = world.defineType('player', {
      x: t.f32(),
      hp: t.u8(),
      name: t.string({ maxBytes: 16 }),
    });
    const player = world.spawn(Player, { x: 1.5, hp: 100, name: 'ann' });
    expect(player.get('x')).toBe(1.5);
    expect(player.values()).toEqual({ x: 1.5, hp: 100, name: 'ann' });
    expect(world.size).toBe(1);
    expect(world.get(player.id)).toBe(player);
    expect([...world.entities()]).toEqual([player]);
    expect(world.types).toEqual([Player]);
  });

  it('tracks a change version per field and skips writes of the same value', () => {
    const world = createWorld();
    const Ball = world.defineType('ball', { x: t.f32(), y: t.f32() });
    const ball = world.spawn(Ball, { x: 0, y: 0 });
    const internal = worldInternals(world).slots[ball.id]!;
    const spawnVersion = internal.spawnVersion;
    expect(internal.fieldVersions).toEqual([spawnVersion, spawnVersion]);
    ball.set('y', 2);
    expect(internal.fieldVersions[0]).toBe(spawnVersion);
    expect(internal.fieldVersions[1]).toBe(world.version);
    expect(internal.changeVersion).toBe(world.version);
    const before = world.version;
    ball.set('y', 2);
    expect(world.version).toBe(before);
  });

  it('validates values on spawn and on set with the field path', () => {
    const world = createWorld();
    const Unit = world.defineType('unit', { hp: t.u8(), pos: t.object({ x: t.u8() }) });
    expect(codeOf(() => world.spawn(Unit, { hp: 300, pos: { x: 1 } }))).toBe(
      ErrorCode.VALIDATION_FAILED,
    );
    const unit = world.spawn(Unit, { hp: 3, pos: { x: 1 } });
    expect(() => unit.set('pos', { x: -1 })).toThrow(/field 'pos\.x'/);
    expect(codeOf(() => unit.set('hp', -1))).toBe(ErrorCode.VALIDATION_FAILED);
    expect(codeOf(() => unit.set('nope' as 'hp', 1))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => unit.get('nope' as 'hp'))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(unit.get('hp')).toBe(3);
    expect(codeOf(() => world.spawn(Unit, null as never))).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('rejects unknown types, double despawns and writes to despawned entities', () => {
    const world = createWorld();
    const Other = defineEntityType('other', { a: t.u8() });
    expect(codeOf(() => world.spawn(Other, { a: 1 }))).toBe(ErrorCode.INVALID_ARGUMENT);
    const A = world.defineType('a', { a: t.u8() });
    expect(codeOf(() => world.defineType('a', { b: t.u8() }))).toBe(ErrorCode.INVALID_ARGUMENT);
    const entity = world.spawn(A, { a: 1 });
    world.despawn(entity);
    expect(entity.alive).toBe(false);
    expect(world.size).toBe(0);
    expect(codeOf(() => world.despawn(entity))).toBe(ErrorCode.NOT_FOUND);
    expect(codeOf(() => entity.set('a', 2))).toBe(ErrorCode.INVALID_STATE);
    expect(codeOf(() => worldInternals({} as never))).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('reuses an id only after its tombstone is pruned, with a new generation', () => {
    const world = createWorld();
    const A = world.defineType('a', { a: t.u8() });
    const first = world.spawn(A, { a: 1 });
    world.despawn(first);
    const second = world.spawn(A, { a: 2 });
    expect(second.id).not.toBe(first.id);
    worldInternals(world).pruneTombstones(world.version);
    expect(worldInternals(world).tombstones).toEqual([]);
    const third = world.spawn(A, { a: 3 });
    expect(third.id).toBe(first.id);
    expect(third.generation).toBe(first.generation + 1);
  });

  it('checks entity type definitions', () => {
    expect(codeOf(() => defineEntityType('', { a: t.u8() }))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => defineEntityType('empty', {}))).toBe(ErrorCode.INVALID_ARGUMENT);
    const wide = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, t.bool()]));
    expect(codeOf(() => defineEntityType('wide', wide))).toBe(ErrorCode.INVALID_ARGUMENT);
    const A = defineEntityType('a', { a: t.u8() });
    expect(codeOf(() => createWorld({ types: [A, A] }))).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});
