import { describe, expect, it } from 'vitest';
import {
  Avatar,
  inputSchema,
  isFree,
  messages,
  OBSTACLES,
  PLAYER,
  SPAWNS,
  stepMovement,
  TICK_MS,
  WORLD,
  wallDistance,
} from './game.js';

describe('shared game rules', () => {
  it('moves at the player speed, diagonals no faster', () => {
    const start = { x: 200, y: 200 };
    const right = stepMovement(start, 1, 0, 1000);
    expect(right.x - start.x).toBeCloseTo(PLAYER.speed);
    const diagonal = stepMovement(start, 1, 1, 1000);
    expect(Math.hypot(diagonal.x - start.x, diagonal.y - start.y)).toBeCloseTo(PLAYER.speed);
    expect(stepMovement(start, Number.NaN, 5, TICK_MS).x).toBe(200); // bad input: no x move
  });

  it('stops at walls and at the world border, deterministically', () => {
    const wall = OBSTACLES[8]!; // the central block
    let p = { x: wall.x - 100, y: wall.y + wall.h / 2 };
    for (let i = 0; i < 60; i++) p = stepMovement(p, 1, 0, TICK_MS);
    expect(p.x).toBeCloseTo(wall.x - PLAYER.radius);
    let q = { x: 50, y: 50 };
    for (let i = 0; i < 30; i++) q = stepMovement(q, -1, -1, TICK_MS);
    expect(q).toEqual({ x: PLAYER.radius, y: PLAYER.radius });
    // Same inputs, same result: what client prediction relies on.
    const run = () => {
      let r = { x: 1000, y: 1000 };
      for (let i = 0; i < 200; i++) r = stepMovement(r, Math.sin(i), Math.cos(i * 0.7), TICK_MS);
      return r;
    };
    expect(run()).toEqual(run());
  });

  it('pushes a player out of a wall it starts inside', () => {
    const wall = OBSTACLES[8]!;
    const p = stepMovement({ x: wall.x + 10, y: wall.y + wall.h / 2 }, 0, 0, TICK_MS);
    expect(isFree(p)).toBe(true);
  });

  it('finds the first wall along a ray', () => {
    const wall = OBSTACLES[8]!;
    const origin = { x: wall.x - 300, y: wall.y + 50 };
    expect(wallDistance(origin, 0, 1000)).toBeCloseTo(300);
    expect(wallDistance(origin, Math.PI, 5000)).toBeCloseTo(origin.x - 600); // the west block
    expect(wallDistance({ x: 100, y: 100 }, Math.PI, 5000)).toBeCloseTo(100); // the border
    expect(wallDistance({ x: 100, y: 100 }, Math.PI / 2, 50)).toBe(50); // range first
  });

  it('has spawn points clear of every wall', () => {
    for (const spawn of SPAWNS) expect(isFree(spawn)).toBe(true);
    expect(isFree({ x: -1, y: 10 })).toBe(false);
    expect(isFree({ x: WORLD.width, y: 10 })).toBe(false);
  });

  it('encodes inputs and avatars compactly', () => {
    const bytes = inputSchema.encode({
      seq: 1000,
      dx: 1,
      dy: -1,
      angle: 1,
      fire: true,
      viewTime: 123456.5,
    });
    expect(bytes.byteLength).toBeLessThanOrEqual(16);
    expect(inputSchema.decode(bytes)).toMatchObject({
      seq: 1000,
      dx: 1,
      dy: -1,
      fire: true,
      viewTime: 123456.5,
    });
    expect(Avatar.name).toBe('avatar');
    expect(messages.client.decode(messages.client.encode('name', { name: 'ada' }))).toEqual({
      type: 'name',
      value: { name: 'ada' },
    });
  });
});
