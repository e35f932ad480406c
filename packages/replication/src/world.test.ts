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
    const spawnVersion = internal.metaVersion;
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

  it('rejects invalid numeric writes with the reason and keeps the value and its image', () => {
    const world = createWorld();
    const Ship = world.defineType('ship', {
      x: t.quantized(0, 100, 0.5),
      angle: t.angle(8),
      hp: t.u8(),
      speed: t.f32(),
      fuel: t.quantized(0, 10, 1, { clamp: true }),
    });
    const ship = world.spawn(Ship, { x: 10, angle: 1, hp: 5, speed: 2, fuel: 3 });
    const internal = worldInternals(world).slots[ship.id]!;
    const images = [...internal.fieldImages];
    const bad: [keyof typeof Ship.shape, unknown, RegExp][] = [
      ['x', 100.5, /field 'x': expected a number in \[0, 100\]/],
      ['x', null, /field 'x': expected a number/],
      ['x', '3', /field 'x': expected a number/],
      ['angle', Number.POSITIVE_INFINITY, /field 'angle': expected a finite angle/],
      ['hp', 2.5, /field 'hp': expected an integer in \[0, 255\]/],
      ['speed', true, /field 'speed': expected a number/],
      ['fuel', Number.NaN, /field 'fuel': expected a number/],
    ];
    for (const [field, value, message] of bad) {
      expect(() => ship.set(field, value as never)).toThrow(message);
      expect(codeOf(() => ship.set(field, value as never))).toBe(ErrorCode.VALIDATION_FAILED);
    }
    expect(ship.values()).toEqual({ x: 10, angle: 1, hp: 5, speed: 2, fuel: 3 });
    expect(internal.fieldImages).toEqual(images);
    ship.set('fuel', 50); // clamped, as the wire would carry it
    ship.set('angle', -Math.PI / 2);
    expect(internal.fieldImages[4]).toBe(10);
    expect(internal.fieldImages[1]).toBe(192);
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

  it('reuses ids first in, first out, with a new generation', () => {
    const world = createWorld();
    const A = world.defineType('a', { a: t.u8() });
    const first = world.spawn(A, { a: 1 });
    const second = world.spawn(A, { a: 2 });
    world.despawn(first);
    world.despawn(second);
    const third = world.spawn(A, { a: 3 });
    expect(third.id).toBe(first.id);
    expect(third.generation).toBe(first.generation + 1);
    expect(world.spawn(A, { a: 4 }).id).toBe(second.id);
    expect(world.spawn(A, { a: 5 }).id).toBe(2);
  });

  it('stores copies: mutating a value passed in or read out changes nothing', () => {
    const world = createWorld();
    const Bag = world.defineType('bag', {
      items: t.array(t.u8(), { maxLength: 8 }),
      pos: t.object({ x: t.u8() }),
      blob: t.bytes({ maxBytes: 4 }),
    });
    const items = [1, 2];
    const bag = world.spawn(Bag, { items, pos: { x: 1 }, blob: new Uint8Array([1]) });
    items.push(3);
    expect(bag.get('items')).toEqual([1, 2]);
    expect(() => (bag.get('items') as number[]).push(4)).toThrow(TypeError);
    expect(() => {
      (bag.get('pos') as { x: number }).x = 9;
    }).toThrow(TypeError);
    bag.get('blob')[0] = 7;
    expect(bag.get('blob')).toEqual(new Uint8Array([1]));
    const before = world.version;
    bag.set('items', [1, 2]); // equal content: not a change
    bag.set('blob', new Uint8Array([1]));
    expect(world.version).toBe(before);
    const next = [...bag.get('items'), 4];
    bag.set('items', next);
    next.push(5);
    expect(bag.get('items')).toEqual([1, 2, 4]);
    expect(world.version).toBe(before + 1);
  });

  it('tracks ownership as a change clients must see whole', () => {
    const world = createWorld();
    const A = world.defineType('a', { a: t.u8(), b: t.u8() }, { owned: ['b'] });
    expect(A.ownedMask).toBe(0b10);
    const entity = world.spawn(A, { a: 1, b: 2 }, { owner: 'p1' });
    expect(entity.owner).toBe('p1');
    const internal = worldInternals(world).slots[entity.id]!;
    const before = internal.metaVersion;
    entity.setOwner('p1');
    expect(internal.metaVersion).toBe(before);
    entity.setOwner(undefined);
    expect(internal.metaVersion).toBe(world.version);
    expect(codeOf(() => entity.setOwner({} as never))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => world.spawn(A, { a: 1, b: 2 }, { owner: [] as never }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    world.despawn(entity);
    expect(codeOf(() => entity.setOwner('p2'))).toBe(ErrorCode.INVALID_STATE);
  });

  it('checks entity type definitions', () => {
    expect(codeOf(() => defineEntityType('', { a: t.u8() }))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => defineEntityType('empty', {}))).toBe(ErrorCode.INVALID_ARGUMENT);
    const wide = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, t.bool()]));
    expect(codeOf(() => defineEntityType('wide', wide))).toBe(ErrorCode.INVALID_ARGUMENT);
    const A = defineEntityType('a', { a: t.u8() });
    expect(codeOf(() => createWorld({ types: [A, A] }))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => defineEntityType('p', { a: t.u8() }, { priority: 0 }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(codeOf(() => defineEntityType('p', { a: t.u8() }, { maxInterval: 1.5 }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(codeOf(() => defineEntityType('p', { a: t.u8() }, { owned: ['b' as 'a'] }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(
      codeOf(() =>
        defineEntityType('p', { a: t.u8() }, { deadReckoning: { threshold: -1 } as never }),
      ),
    ).toBe(ErrorCode.INVALID_ARGUMENT);
    // Field lookup sees the shape's own keys only, whatever the prototype holds.
    expect(A.fieldIndex('toString')).toBeUndefined();
    (Object.prototype as Record<string, unknown>).polluted = 0;
    try {
      expect(A.fieldIndex('polluted')).toBeUndefined();
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted;
    }
    const shape: Record<string, unknown> = {};
    for (const name of ['__proto__', 'constructor'])
      Object.defineProperty(shape, name, { value: t.u8(), enumerable: true });
    const Odd = defineEntityType('odd', shape as { a: ReturnType<typeof t.u8> });
    expect([Odd.fieldIndex('__proto__'), Odd.fieldIndex('constructor')]).toEqual([0, 1]);
  });
});
