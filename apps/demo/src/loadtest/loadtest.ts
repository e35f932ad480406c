// The load generator: N bots (./bots.ts) ramped onto a demo server — one started in this
// process, or one already running on this machine — for a fixed time, with a progress report
// every second and a summary at the end. Bounded in every direction: bots, duration, and a hard
// deadline after which everything is closed whatever state it is in.
import {
  type ClientTransport,
  createRandom,
  ErrorCode,
  type Logger,
  silentLogger,
  systemTime,
  TickwireError,
  type Timer,
  type TimeSource,
} from '@tickwire/core';
import { createTcpClient } from '@tickwire/transport/tcp';
import { createUdpClient } from '@tickwire/transport/udp';
import { createWsClient } from '@tickwire/transport/ws';
import { type DemoServer, type DemoServerOptions, startDemoServer } from '../server/app.js';
import { ROOM_CAPACITY, TICK_MS } from '../shared/game.js';
import {
  ARENA_ROOM_OPTIONS,
  type BotCounters,
  createBot,
  emptyCounters,
  type JoinRoom,
  type LoadBot,
} from './bots.js';
import { createReservoir, type Percentiles, quantileOfSorted } from './report.js';

/** The transports a bot can play over. */
export const TRANSPORTS = ['ws', 'tcp', 'udp'] as const;
/** A transport a bot can play over. */
export type TransportName = (typeof TRANSPORTS)[number];

/** Most bots in one run. */
export const MAX_BOTS = 5000;
/** Longest run, ms. */
export const MAX_DURATION_MS = 600_000;
/** After the planned duration, everything is closed by force within this many ms. */
export const HARD_DEADLINE_GRACE_MS = 30_000;
/** Longest wait for the rooms to confirm the bots' leaving at the end, ms. */
export const LEAVE_TIMEOUT_MS = 10_000;
/** Connections started per second by default (UDP: see {@link DEFAULT_UDP_RAMP_PER_SECOND}). */
export const DEFAULT_RAMP_PER_SECOND = 50;
/**
 * The UDP server accepts handshake packets at 20/s sustained from one address (two per
 * connection): faster ramps from one machine are throttled by the server, not by the network.
 */
export const DEFAULT_UDP_RAMP_PER_SECOND = 10;
/** Hosts `url` may name: a load test is for servers on this machine. */
export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', '::1', 'localhost'];

/** Options of {@link runLoadtest}. */
export interface LoadtestOptions {
  /** Bots to connect, 1 to {@link MAX_BOTS}. */
  bots: number;
  /** How long the bots play, counted from the first connection (the ramp included), ms. */
  durationMs: number;
  /** @default 'ws' */
  transport?: TransportName;
  /**
   * A demo server already running on this machine: `http://127.0.0.1:PORT` (its WebSocket on
   * PORT, TCP on PORT+1 and UDP on PORT+2, as `pnpm serve` opens them) or the transport's own
   * `ws://`, `tcp://` or `udp://` URL. Loopback hosts only.
   * @default a server started in this process for the run
   */
  url?: string;
  /**
   * Bots per room (1 to ROOM_CAPACITY): the first bot of each group creates a room, the others
   * join it by id.
   * @default quick-play (`joinOrCreate`: rooms fill up to their capacity)
   */
  roomSize?: number;
  /** Connections started per second. @default 50 (10 over UDP) */
  rampPerSecond?: number;
  /** Seed of the bots' patterns, movement, aim and fire. @default 1 */
  seed?: number;
  /** Called once the bots' endpoint is known (after the in-process server started). */
  onStart?: (target: LoadtestTarget & { inProcessServer: boolean }) => void;
  /** Called every `progressIntervalMs` while the run lasts. */
  onProgress?: (progress: LoadtestProgress) => void;
  /** @default 1000 */
  progressIntervalMs?: number;
  /** Ends the run early (the summary covers what ran). */
  signal?: AbortSignal;
  /** Logger of the in-process server. @default silent */
  serverLogger?: Logger;
  /** @default systemTime */
  time?: TimeSource;
}

/** A live view of the run, once per progress interval. */
export interface LoadtestProgress {
  elapsedMs: number;
  botsRequested: number;
  /** Bots started so far (the ramp). */
  botsStarted: number;
  /** Bots in a room right now. */
  botsPlaying: number;
  /** Over the last interval. */
  messagesInPerSecond: number;
  messagesOutPerSecond: number;
  /** Clock-sync round trips of the last interval (NaN without samples). */
  rttP50Ms: number;
  rttP99Ms: number;
  errors: number;
}

/** One kind of error and how often it happened. */
export interface ErrorKind {
  kind: string;
  count: number;
  /** The first message of that kind. */
  example: string;
}

/** The result of a run. */
export interface LoadtestSummary {
  transport: TransportName;
  /** The endpoint the bots used. */
  url: string;
  /** True when the run started its own server. */
  inProcessServer: boolean;
  botsRequested: number;
  botsStarted: number;
  /** Bots that connected and joined a room. */
  botsConnected: number;
  /** Bots in a room when the run ended. */
  botsPlayingAtEnd: number;
  /** Distinct rooms the bots joined. */
  rooms: number;
  /** Planned and measured duration, ms. */
  plannedDurationMs: number;
  durationMs: number;
  /** Time to start every bot's connection, ms. */
  rampMs: number;
  messagesIn: number;
  messagesOut: number;
  messagesInPerSecond: number;
  messagesOutPerSecond: number;
  bytesIn: number;
  bytesOut: number;
  inputs: number;
  /** Clock-sync round trips over the whole run. */
  rttMs: Percentiles;
  snapshots: number;
  /** Snapshots applied per bot per second in a room (the room's tick rate when all is well). */
  snapshotsPerBotPerSecond: number;
  /** Shots of the bots the server judged, those that hit, and kills by bots. */
  shots: number;
  hits: number;
  kills: number;
  /** `shot` and `kill` messages the bots received (each goes to everyone in the room). */
  shotMessages: number;
  killMessages: number;
  /** Errors by kind (`<phase>:<code>`), most frequent first. */
  errors: ErrorKind[];
  errorCount: number;
  /** Connections that dropped while playing. */
  disconnects: number;
  /**
   * Ticks the bots skipped because this process fell more than a tick behind: when it is not
   * 0, the load generator was saturated and its figures say as much about it as the server.
   */
  skippedTicks: number;
  /** What the in-process server refused, by reason, most frequent first (empty with `url`). */
  serverRejections: ErrorKind[];
  /** Every bot connected and nothing went wrong. */
  ok: boolean;
}

/** Where the bots connect. */
export interface LoadtestTarget {
  transport: TransportName;
  /** The transport's URL. */
  url: string;
}

const invalid = (message: string, option: string): TickwireError =>
  new TickwireError(ErrorCode.INVALID_ARGUMENT, message, { details: { option } });

/**
 * The endpoint `url` names for `transport`: `http://` maps to the demo server's ports (ws on
 * PORT, tcp PORT+1, udp PORT+2); `ws://`, `tcp://`, `udp://` are taken as they are (and fix the
 * transport when none is given). Refuses hosts that are not loopback.
 */
export function resolveTarget(url: string, transport?: TransportName): LoadtestTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`--url must be a URL like http://127.0.0.1:8080, got '${url}'`, 'url');
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (!LOOPBACK_HOSTS.includes(host.toLowerCase()))
    throw invalid(
      `--url must name this machine (${LOOPBACK_HOSTS.join(', ')}): a load test is not for servers elsewhere, got host '${host}'`,
      'url',
    );
  const scheme = parsed.protocol.slice(0, -1);
  const port = Number(parsed.port);
  const hostPart = host.includes(':') ? `[${host}]` : host;
  if (scheme === 'http') {
    if (!(port > 0 && port <= 65_533))
      throw invalid(`--url needs an explicit port in [1, 65533], got '${url}'`, 'url');
    const chosen = transport ?? 'ws';
    const offset = chosen === 'ws' ? 0 : chosen === 'tcp' ? 1 : 2;
    return { transport: chosen, url: `${chosen}://${hostPart}:${port + offset}` };
  }
  if (!(TRANSPORTS as readonly string[]).includes(scheme))
    throw invalid(`--url must start with http://, ws://, tcp:// or udp://, got '${url}'`, 'url');
  if (transport !== undefined && transport !== scheme)
    throw invalid(`--url is a ${scheme}:// URL but --transport is ${transport}`, 'url');
  if (!(port > 0 && port <= 65_535))
    throw invalid(`--url needs an explicit port, got '${url}'`, 'url');
  return { transport: scheme as TransportName, url: `${scheme}://${hostPart}:${port}` };
}

/** Checks the options; throws INVALID_ARGUMENT naming the option. */
export function checkLoadtestOptions(options: LoadtestOptions): void {
  const { bots, durationMs, roomSize, rampPerSecond, transport } = options;
  if (!Number.isInteger(bots) || bots < 1 || bots > MAX_BOTS)
    throw invalid(`--bots must be an integer in [1, ${MAX_BOTS}], got ${bots}`, 'bots');
  if (!Number.isFinite(durationMs) || durationMs <= 0 || durationMs > MAX_DURATION_MS)
    throw invalid(
      `--duration must be a number of seconds in (0, ${MAX_DURATION_MS / 1000}], got ${durationMs / 1000}`,
      'duration',
    );
  if (transport !== undefined && !(TRANSPORTS as readonly string[]).includes(transport))
    throw invalid(
      `--transport must be one of ${TRANSPORTS.join(', ')}, got '${transport}'`,
      'transport',
    );
  if (
    roomSize !== undefined &&
    (!Number.isInteger(roomSize) || roomSize < 1 || roomSize > ROOM_CAPACITY)
  )
    throw invalid(
      `--room-size must be an integer in [1, ${ROOM_CAPACITY}] (the arena's seats), got ${roomSize}`,
      'room-size',
    );
  if (
    rampPerSecond !== undefined &&
    (!Number.isFinite(rampPerSecond) || rampPerSecond <= 0 || rampPerSecond > 10_000)
  )
    throw invalid(`--ramp must be a number in (0, 10000], got ${rampPerSecond}`, 'ramp');
  if (options.seed !== undefined && !Number.isInteger(options.seed))
    throw invalid(`--seed must be an integer, got ${options.seed}`, 'seed');
  if (options.url !== undefined) resolveTarget(options.url, transport);
}

function transportFor(name: TransportName): ClientTransport {
  switch (name) {
    case 'ws':
      return createWsClient();
    case 'tcp':
      return createTcpClient();
    case 'udp':
      return createUdpClient();
  }
}

/** Quick-play, or groups of `roomSize`: the first of a group creates, the rest join by id. */
function roomJoiner(roomSize: number | undefined): JoinRoom {
  if (roomSize === undefined)
    return (client, _index, name) => client.joinOrCreate('arena', { name }, ARENA_ROOM_OPTIONS);
  const groups = new Map<number, Promise<string>>();
  return async (client, index, name) => {
    const group = Math.floor(index / roomSize);
    if (index % roomSize === 0) {
      const created = client.create('arena', { name }, ARENA_ROOM_OPTIONS);
      const id = created.then((room) => room.id);
      // The leader reports its own failure; its followers, if any, report theirs.
      id.catch(() => undefined);
      groups.set(group, id);
      return created;
    }
    const roomId = groups.get(group);
    if (roomId === undefined)
      throw new TickwireError(
        ErrorCode.INVALID_STATE,
        `bot ${index}: the first bot of its group (${group * roomSize}) has not started`,
      );
    let id: string;
    try {
      id = await roomId;
    } catch (error) {
      throw new TickwireError(
        ErrorCode.NOT_FOUND,
        `bot ${index}: its group's room was not created`,
        {
          cause: error,
        },
      );
    }
    return client.joinById(id, { name }, ARENA_ROOM_OPTIONS);
  };
}

const sum = (bots: readonly LoadBot[], key: keyof BotCounters): number => {
  let total = 0;
  for (const bot of bots) total += bot.counters[key];
  return total;
};

/**
 * Runs a load test: starts a demo server unless `url` is given, ramps `bots` bots onto it,
 * lets them play for `durationMs`, closes everything and resolves with the summary. Throws
 * INVALID_ARGUMENT on bad options, before anything starts.
 */
export async function runLoadtest(options: LoadtestOptions): Promise<LoadtestSummary> {
  checkLoadtestOptions(options);
  const time = options.time ?? systemTime;
  const requested = options.bots;
  const transportName =
    options.url === undefined
      ? (options.transport ?? 'ws')
      : resolveTarget(options.url, options.transport).transport;
  const rampPerSecond =
    options.rampPerSecond ??
    (transportName === 'udp' ? DEFAULT_UDP_RAMP_PER_SECOND : DEFAULT_RAMP_PER_SECOND);
  const progressIntervalMs = options.progressIntervalMs ?? 1000;

  let demo: DemoServer | null = null;
  const serverRejections = new Map<string, ErrorKind>();
  let target: LoadtestTarget;
  if (options.url === undefined) {
    const serverOptions: DemoServerOptions = {
      port: 0,
      transports: { tcp: true, udp: true },
      logger: options.serverLogger ?? silentLogger,
      // Every bot connects from 127.0.0.1: the server's per-address caps (16 connections, 20
      // handshakes a second by default) must let them all in, as fast as they ramp. The
      // message rate limits stay what players get.
      limits: {
        maxConnectionsPerAddress: requested + 16,
        maxConnections: requested + 16,
        handshakesPerSecondPerAddress: 1000,
      },
    };
    demo = await startDemoServer(serverOptions);
    demo.server.on('rejected', (reason, error) => {
      const known = serverRejections.get(reason);
      if (known === undefined)
        serverRejections.set(reason, { kind: reason, count: 1, example: error.message });
      else known.count++;
    });
    const url =
      transportName === 'ws' ? demo.wsUrl : transportName === 'tcp' ? demo.tcpUrl : demo.udpUrl;
    target = { transport: transportName, url: url! };
  } else target = resolveTarget(options.url, options.transport);
  options.onStart?.({ ...target, inProcessServer: demo !== null });

  const errors = new Map<string, ErrorKind>();
  let errorCount = 0;
  const rttAll = createReservoir(200_000, createRandom(0x5eed));
  let rttWindow: number[] = [];
  const listener = {
    error(kind: string, message: string) {
      errorCount++;
      const known = errors.get(kind);
      if (known === undefined) errors.set(kind, { kind, count: 1, example: message });
      else known.count++;
    },
    rtt(rttMs: number) {
      rttAll.add(rttMs);
      rttWindow.push(rttMs);
    },
  };

  const random = createRandom(options.seed ?? 1);
  const transport = transportFor(target.transport);
  const join = roomJoiner(options.roomSize);
  const bots: LoadBot[] = [];
  const startedAt = time.now();
  const stopAt = startedAt + options.durationMs;
  /** Past it, nothing is waited for any more. */
  const hardDeadline = stopAt + HARD_DEADLINE_GRACE_MS;
  let rampEndedAt = Number.NaN;
  const timers: Timer[] = [];

  // The ramp: bot i starts at i / rampPerSecond seconds (never after the run's end).
  const rampIntervalMs = 1000 / rampPerSecond;
  const startNext = () => {
    const now = time.now();
    while (bots.length < requested && bots.length * rampIntervalMs <= now - startedAt) {
      const bot = createBot({
        index: bots.length,
        url: target.url,
        transport,
        random: random.fork(),
        join,
        listener,
        time,
      });
      bots.push(bot);
      void bot.start();
    }
    if (bots.length >= requested) {
      rampEndedAt = now;
      return;
    }
    if (now < stopAt) timers.push(time.setTimeout(startNext, Math.max(1, rampIntervalMs)));
  };

  // One tick loop for every bot, at the room's rate, without drift. More than a tick behind
  // (this process is saturated), the missed ticks are skipped rather than sent in a burst.
  let tick = 0;
  let skippedTicks = 0;
  const step = () => {
    for (const bot of bots) bot.step(time.now());
    tick++;
    const now = time.now();
    const behind = Math.floor((now - (startedAt + tick * TICK_MS)) / TICK_MS);
    if (behind > 0) {
      skippedTicks += behind;
      tick += behind;
    }
    ticker = time.setTimeout(step, Math.max(0, startedAt + tick * TICK_MS - now));
  };
  let ticker: Timer = time.setTimeout(step, TICK_MS);

  // Progress.
  let last = { at: startedAt, messagesIn: 0, messagesOut: 0 };
  const progress = () => {
    const now = time.now();
    for (const bot of bots) bot.account();
    const messagesIn = sum(bots, 'messagesIn');
    const messagesOut = sum(bots, 'messagesOut');
    const seconds = Math.max(1e-3, (now - last.at) / 1000);
    const window = rttWindow;
    rttWindow = [];
    const sorted = window.sort((a, b) => a - b);
    const report: LoadtestProgress = {
      elapsedMs: now - startedAt,
      botsRequested: requested,
      botsStarted: bots.length,
      botsPlaying: bots.filter((bot) => bot.state === 'playing').length,
      messagesInPerSecond: (messagesIn - last.messagesIn) / seconds,
      messagesOutPerSecond: (messagesOut - last.messagesOut) / seconds,
      rttP50Ms: quantileOfSorted(sorted, 0.5),
      rttP99Ms: quantileOfSorted(sorted, 0.99),
      errors: errorCount,
    };
    last = { at: now, messagesIn, messagesOut };
    options.onProgress?.(report);
  };
  const progressTimer = time.setInterval(progress, progressIntervalMs);

  startNext();
  await new Promise<void>((resolve) => {
    const done = time.setTimeout(resolve, options.durationMs);
    options.signal?.addEventListener(
      'abort',
      () => {
        done.cancel();
        resolve();
      },
      { once: true },
    );
    if (options.signal?.aborted) resolve();
  });

  // Stop: no more starts, ticks or reports; take the last figures, then close everything.
  ticker.cancel();
  progressTimer.cancel();
  for (const timer of timers) timer.cancel();
  const endedAt = time.now();
  for (const bot of bots) bot.account();
  const botsPlayingAtEnd = bots.filter((bot) => bot.state === 'playing').length;
  // Leave as players do (the server confirms each), then end the sessions.
  const leaveTimeoutMs = Math.min(LEAVE_TIMEOUT_MS, Math.max(0, hardDeadline - time.now()));
  let leaveTimer: Timer | undefined;
  const left = await Promise.race([
    Promise.allSettled(bots.map((bot) => bot.leave())).then(() => true),
    new Promise<false>((resolve) => {
      leaveTimer = time.setTimeout(() => resolve(false), leaveTimeoutMs);
    }),
  ]);
  leaveTimer?.cancel();
  if (!left)
    listener.error(
      'leave:TIMEOUT',
      `the bots' rooms did not confirm leaving within ${leaveTimeoutMs} ms`,
    );
  for (const bot of bots) bot.close();
  if (demo !== null) {
    const closing = demo.close();
    let closeTimer: Timer | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      closeTimer = time.setTimeout(
        () => resolve('timeout'),
        Math.max(1000, hardDeadline - time.now()),
      );
    });
    const closed = await Promise.race([closing.then(() => 'closed' as const), deadline]);
    closeTimer?.cancel();
    if (closed === 'timeout')
      listener.error(
        'shutdown:TIMEOUT',
        'the in-process server did not close before the hard deadline',
      );
  }

  const durationMs = endedAt - startedAt;
  const seconds = Math.max(1e-3, durationMs / 1000);
  const totals = emptyCounters();
  for (const key of Object.keys(totals) as (keyof BotCounters)[]) totals[key] = sum(bots, key);
  const botsConnected = bots.filter((bot) => bot.joined).length;
  const roomIds = new Set(bots.map((bot) => bot.roomId).filter((id) => id !== null));
  const errorList = [...errors.values()].sort((a, b) => b.count - a.count);
  return {
    transport: target.transport,
    url: target.url,
    inProcessServer: demo !== null,
    botsRequested: requested,
    botsStarted: bots.length,
    botsConnected,
    botsPlayingAtEnd,
    rooms: roomIds.size,
    plannedDurationMs: options.durationMs,
    durationMs,
    rampMs: Number.isNaN(rampEndedAt) ? Number.NaN : rampEndedAt - startedAt,
    messagesIn: totals.messagesIn,
    messagesOut: totals.messagesOut,
    messagesInPerSecond: totals.messagesIn / seconds,
    messagesOutPerSecond: totals.messagesOut / seconds,
    bytesIn: totals.bytesIn,
    bytesOut: totals.bytesOut,
    inputs: totals.inputs,
    rttMs: rttAll.percentiles(),
    snapshots: totals.snapshots,
    snapshotsPerBotPerSecond: totals.inRoomMs > 0 ? totals.snapshots / (totals.inRoomMs / 1000) : 0,
    shots: totals.shots,
    hits: totals.hits,
    kills: totals.kills,
    shotMessages: totals.shotMessages,
    killMessages: totals.killMessages,
    errors: errorList,
    errorCount,
    disconnects: totals.disconnects,
    skippedTicks,
    serverRejections: [...serverRejections.values()].sort((a, b) => b.count - a.count),
    ok: errorCount === 0 && botsConnected === requested,
  };
}
