// The load test's command line: its usage text and the parser that turns argv into
// `runLoadtest` options, refusing anything out of bounds with a message that names the option.
import { parseArgs } from 'node:util';
import { ErrorCode, isTickwireError, TickwireError } from '@tickwire/core';
import { ROOM_CAPACITY } from '../shared/game.js';
import {
  checkLoadtestOptions,
  DEFAULT_RAMP_PER_SECOND,
  DEFAULT_UDP_RAMP_PER_SECOND,
  HARD_DEADLINE_GRACE_MS,
  type LoadtestOptions,
  MAX_BOTS,
  MAX_DURATION_MS,
  TRANSPORTS,
  type TransportName,
} from './loadtest.js';

/** Bots and seconds when the command line does not say. */
export const DEFAULT_BOTS = 10;
export const DEFAULT_DURATION_S = 10;

export const USAGE = `Usage: pnpm --filter @tickwire/demo loadtest [options]

Plays the arena with Node bots that go through @tickwire/client like the browser client
(connect, quick-play, one input per tick, snapshots into the room's replica) and reports
throughput, round trips and errors. Progress goes to stderr, the summary to stdout.

Options:
  --bots N        bots to connect, 1 to ${MAX_BOTS} (default ${DEFAULT_BOTS})
  --duration S    seconds the bots play, the ramp included, up to ${MAX_DURATION_MS / 1000} (default ${DEFAULT_DURATION_S})
  --transport T   ${TRANSPORTS.join(' | ')} (default ws)
  --url URL       a demo server already running on this machine instead of one started
                  in-process: http://127.0.0.1:PORT (ws on PORT, tcp on PORT+1, udp on
                  PORT+2, as \`pnpm serve\` opens them) or a ws://, tcp:// or udp:// URL.
                  Hosts: 127.0.0.1, ::1 or localhost only
  --room-size N   bots per room, 1 to ${ROOM_CAPACITY} (default: quick-play, rooms fill up)
  --ramp N        connections started per second (default ${DEFAULT_RAMP_PER_SECOND}, udp ${DEFAULT_UDP_RAMP_PER_SECOND})
  --seed N        seed of the bots' movement, aim and fire (default 1)
  -h, --help      print this text

The run ends at the latest ${HARD_DEADLINE_GRACE_MS / 1000} s after --duration, whatever state it is in.
Exit code: 0 when every bot connected and no error occurred, 1 otherwise, 2 on a usage error.
`;

/** What the command line asks for. */
export type LoadtestCommand = { help: true } | { help: false; options: LoadtestOptions };

const usageError = (message: string, option: string): TickwireError =>
  new TickwireError(ErrorCode.INVALID_ARGUMENT, message, { details: { option, usage: true } });

/** True for the errors {@link parseLoadtestArgs} throws (print the usage, exit with 2). */
export const isUsageError = (error: unknown): error is TickwireError =>
  isTickwireError(error) && error.code === ErrorCode.INVALID_ARGUMENT;

function number(option: string, text: string | undefined, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)))
    throw usageError(
      `--${option} must be ${integer ? 'an integer' : 'a number'}, got '${text}'`,
      option,
    );
  return value;
}

/**
 * Parses the load test's arguments (without `node` and the script). Throws INVALID_ARGUMENT
 * naming the option on an unknown option, a missing or malformed value, a value out of bounds,
 * or a `--url` that is not on this machine.
 */
export function parseLoadtestArgs(argv: readonly string[]): LoadtestCommand {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        bots: { type: 'string' },
        duration: { type: 'string' },
        transport: { type: 'string' },
        url: { type: 'string' },
        'room-size': { type: 'string' },
        ramp: { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    // node:util's messages name the option: "Unknown option '--bot'", "Option '--bots <value>' argument missing".
    throw usageError(error instanceof Error ? error.message : String(error), 'argv');
  }
  if (values.help === true) return { help: true };
  const text = (name: string) => values[name] as string | undefined;
  const transport = text('transport');
  if (transport !== undefined && !(TRANSPORTS as readonly string[]).includes(transport))
    throw usageError(
      `--transport must be one of ${TRANSPORTS.join(', ')}, got '${transport}'`,
      'transport',
    );
  const durationS = number('duration', text('duration'), false) ?? DEFAULT_DURATION_S;
  const options: LoadtestOptions = {
    bots: number('bots', text('bots'), true) ?? DEFAULT_BOTS,
    durationMs: durationS * 1000,
  };
  if (transport !== undefined) options.transport = transport as TransportName;
  const url = text('url');
  if (url !== undefined) options.url = url;
  const roomSize = number('room-size', text('room-size'), true);
  if (roomSize !== undefined) options.roomSize = roomSize;
  const ramp = number('ramp', text('ramp'), false);
  if (ramp !== undefined) options.rampPerSecond = ramp;
  const seed = number('seed', text('seed'), true);
  if (seed !== undefined) options.seed = seed;
  checkLoadtestOptions(options);
  return { help: false, options };
}
