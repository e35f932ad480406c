// The room of the `server` suite, shared by the server process and the bot processes: avatars
// (x, y quantized, an angle) moved by 20 Hz inputs (dx, dy quantized), rooms of 50 at 20 Hz.
import { defineEntityType } from '@tickwire/replication';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';

/** Members of one room. */
export const ROOM_SIZE = 50;
/** Room tick rate and bot input rate, in Hz. */
export const RATE_HZ = 20;
/** Side of the square arena, in units. */
export const ARENA = 1024;
/** Units an avatar moves per input at full stick. */
export const SPEED = 4;
/** Name the room type is registered under. */
export const ROOM_NAME = 'bench';

export const Avatar = defineEntityType('avatar', {
  x: t.quantized(0, ARENA, 1 / 32),
  y: t.quantized(0, ARENA, 1 / 32),
  angle: t.angle(10),
});

export const benchMessages = {
  client: defineMessages({
    input: {
      id: 1,
      schema: defineSchema({ dx: t.quantized(-1, 1, 1 / 128), dy: t.quantized(-1, 1, 1 / 128) }),
    },
  }),
};

/** Where an avatar goes after one input (clamped to the arena). */
export function move(position: number, delta: number): number {
  return Math.min(ARENA, Math.max(0, position + delta * SPEED));
}

/** A bot's stick at input `n`: a slow circle, so that every avatar changes every tick. */
export function stick(bot: number, n: number): { dx: number; dy: number } {
  const phase = bot * 0.7 + n * 0.05;
  return { dx: Math.cos(phase), dy: Math.sin(phase) };
}
