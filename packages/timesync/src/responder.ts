import { type Clock, ErrorCode, systemTime, TickwireError } from '@tickwire/core';
import type { TimeRequest, TimeResponse } from './messages.js';

/** Options of {@link createTimeSyncResponder}. */
export interface TimeSyncResponderOptions {
  /** The server clock that clients synchronise to. @default systemTime */
  time?: Clock;
}

/** The server side of time sync: stamps requests with the server clock. */
export interface TimeSyncResponder {
  /** The response to `request`: t1 (receive) is read on entry, t2 (send) on return. */
  respond(request: TimeRequest): TimeResponse;
}

/** Creates a {@link TimeSyncResponder} on the given server clock. */
export function createTimeSyncResponder(options: TimeSyncResponderOptions = {}): TimeSyncResponder {
  const clock = options.time ?? systemTime;
  if (typeof clock?.now !== 'function') {
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'timesync responder: time must be a Clock');
  }
  return {
    respond(request) {
      const t1 = clock.now();
      return { id: request.id, t0: request.t0, t1, t2: clock.now() };
    },
  };
}
