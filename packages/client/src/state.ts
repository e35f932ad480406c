// The bridge from replicated state to rendering: snapshot interpolation of a room's entities.
import { type Clock, ErrorCode, systemTime, TickwireError } from '@tickwire/core';
import {
  createInterpolator,
  type InterpolationFrame,
  type Interpolator,
  type InterpolatorOptions,
} from '@tickwire/prediction';
import type { EntityType, EntityValues, ReplicaEntity } from '@tickwire/replication';
import type { MessageDefinitions, Shape } from '@tickwire/serialization';
import type { ClientRoom } from './room.js';

/** Snapshots an id reuse is looked for in: more than a render delay of 1 s holds at 60 Hz. */
const HELD_SNAPSHOTS = 64;

/** Options of {@link interpolateEntities}. */
export interface EntityInterpolationOptions<S extends Shape>
  extends InterpolatorOptions<EntityValues<S>> {
  /** The entity type whose entities are interpolated. */
  type: EntityType<S>;
  /** The server's tick rate (`client.session.tickRateHz`): a snapshot of tick n shows server time n / rate. */
  tickRateHz: number;
  /** Which entities of the type to include (leave out the one you predict). @default all */
  filter?: (entity: ReplicaEntity) => boolean;
  /** The local clock snapshot arrivals and `sample()` are read on. @default systemTime */
  clock?: Clock;
  /**
   * Snapshots over which the tick timeline is fitted (see {@link interpolateEntities}).
   * @default 64
   */
  timelineWindow?: number;
  /**
   * The current time on the room's tick timeline in ms (tick × 1000 / tickRateHz), when you
   * know it better than the fit: e.g. `() => client.time.serverNow() − tickOrigin` with the
   * room's tick origin on the server clock. Return NaN while unknown (the fit is used then).
   * @default the fit from snapshot arrivals
   */
  timeline?: () => number;
}

/** Interpolated entities of one type, fed by a room's replica. */
export interface EntityInterpolation<S extends Shape> {
  readonly interpolator: Interpolator<EntityValues<S>, number>;
  /** Now on the room's tick timeline (ms): the local clock minus the fitted offset. */
  tickTime(): number;
  /** The entities to draw now (or at tick time `now`), by entity id. */
  sample(now?: number): InterpolationFrame<EntityValues<S>, number>;
  /** Stops feeding the interpolator; idempotent (happens when the room is left). */
  close(): void;
}

/**
 * Interpolates a room's entities of one type for rendering: every applied snapshot is pushed
 * into a `@tickwire/prediction` interpolator (adaptive delay, per-field blending, bounded
 * extrapolation) at the time of its tick (tick × 1000 / tickRateHz). Render time runs on that
 * tick timeline, mapped to the local clock by the smallest `arrival − tick time` over the last
 * `timelineWindow` snapshots: the fastest recent snapshot defines zero transit, so a slow first
 * snapshot is forgotten and clock drift is followed, with no clock sync needed. An id the server
 * reuses (a new generation) is another entity: the one that had it is never blended into it.
 * The room must have been joined with `replication` options (INVALID_STATE otherwise).
 */
export function interpolateEntities<
  S extends Shape,
  CM extends MessageDefinitions = MessageDefinitions,
  SM extends MessageDefinitions = MessageDefinitions,
>(room: ClientRoom<CM, SM>, options: EntityInterpolationOptions<S>): EntityInterpolation<S> {
  const replica = room.replica;
  const replication = room.replication;
  if (replica === null || replication === null)
    throw new TickwireError(
      ErrorCode.INVALID_STATE,
      `room ${room.name} has no replica: join it with the replication option`,
    );
  if (!Number.isFinite(options.tickRateHz) || options.tickRateHz <= 0)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `tickRateHz must be a number > 0, got ${options.tickRateHz}`,
    );
  const {
    type,
    tickRateHz,
    filter,
    clock = systemTime,
    timelineWindow = 64,
    timeline,
    ...interpolatorOptions
  } = options;
  if (!Number.isInteger(timelineWindow) || timelineWindow < 1)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `timelineWindow must be an integer >= 1, got ${timelineWindow}`,
    );
  const interpolator = createInterpolator<EntityValues<S>, number>(interpolatorOptions);
  const msPerTick = 1000 / tickRateHz;
  const offsets: number[] = [];
  let next = 0;
  let offset = Number.POSITIVE_INFINITY;
  const fit = (sample: number): void => {
    if (offsets.length < timelineWindow) offsets.push(sample);
    else {
      const dropped = offsets[next]!;
      offsets[next] = sample;
      next = (next + 1) % timelineWindow;
      if (dropped === offset && sample > offset) {
        offset = Math.min(...offsets);
        return;
      }
    }
    if (sample < offset) offset = sample;
  };
  const fitted = (): number => clock.now() - (Number.isFinite(offset) ? offset : 0);
  const tickTime = (): number => {
    if (timeline === undefined) return fitted();
    const known = timeline();
    return Number.isFinite(known) ? known : fitted();
  };
  // The generation last seen of each id, and the snapshots pushed last (the interpolator keeps
  // them by reference): an id reused by another entity is taken out of them, so that the entity
  // that had it is not blended into the new one.
  const generations = new Map<number, number>();
  const pushed: Map<number, EntityValues<S>>[] = [];
  const offSnapshot = replication.on('snapshot', () => {
    const entities = new Map<number, EntityValues<S>>();
    for (const entity of replica.entities()) {
      if (entity.type !== (type as EntityType)) continue;
      if (filter !== undefined && !filter(entity)) continue;
      if (generations.get(entity.id) !== entity.generation) {
        generations.set(entity.id, entity.generation);
        for (const older of pushed) older.delete(entity.id);
      }
      entities.set(entity.id, entity.values() as EntityValues<S>);
    }
    if (pushed.push(entities) > HELD_SNAPSHOTS) pushed.shift();
    const serverTime = replica.tick * msPerTick;
    fit(clock.now() - serverTime);
    interpolator.push(serverTime, entities, tickTime());
  });
  const offLeave = room.on('leave', () => close());
  const close = (): void => {
    offSnapshot();
    offLeave();
  };
  return {
    interpolator,
    tickTime,
    sample: (now = tickTime()) => interpolator.sample(now),
    close,
  };
}
