import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type Row, rowFactory, type Suite, type SuiteOptions } from '../report.js';
import { Child, canPin } from '../server/child.js';
import { RATE_HZ, ROOM_SIZE } from '../server/game.js';
import type {
  BotCommand,
  BotReply,
  BotReport,
  ServerCommand,
  ServerReply,
  ServerReport,
} from '../server/protocol.js';

const row = rowFactory('server');
const script = (name: string) => fileURLToPath(new URL(`../server/${name}.ts`, import.meta.url));

/** Bot counts of the ramp (multiples of the room size), the warm-up and window of each step. */
interface Plan {
  steps: readonly number[];
  warmupMs: number;
  windowMs: number;
  /** No new step starts after this long (the ramp's time bound). */
  budgetMs: number;
}

const plans: Record<'full' | 'quick', Plan> = {
  full: {
    steps: [250, 500, 600, 700, 800, 900, 1000, 1250, 1500, 2000, 3000, 4000, 5000, 6000, 8000],
    warmupMs: 3_000,
    windowMs: 5_000,
    budgetMs: 170_000,
  },
  quick: { steps: [250, 500], warmupMs: 1_500, windowMs: 2_500, budgetMs: 30_000 },
};

/** A step is carried when its room ticks' p99 is within this. */
const TICK_P99_LIMIT_MS = 10;
/** …and every bot applies at least this share of the 20 Hz snapshots (the server keeps up). */
const KEEP_UP = 0.95;
/** A core this busy is saturated (bots also when they send under KEEP_UP of their inputs). */
const SATURATED_CORE = 0.9;

/** What one step measured, on both sides. */
export interface Step {
  bots: number;
  server: ServerReport;
  botReports: BotReport[];
  /** Server CPU (user + system) per bot per second of the window, µs. */
  cpuUsPerBotS: number;
  /** Server CPU over the window, share of one core. */
  serverCore: number;
  /** Busiest bot process, share of one core. */
  botCore: number;
  /**
   * Busy share of the server's core from /proc/stat (user, system, irq and softirq of every
   * task on it: the kernel's loopback work is charged to no process), null when not pinned.
   */
  serverCoreBusy: number | null;
  /** The same for the busiest bot core. */
  botCoreBusy: number | null;
  /** Share of the server's core stolen by the hypervisor (noise from other machines). */
  serverCoreSteal: number | null;
  /**
   * Server CPU plus the irq and softirq time of its core (the kernel's loopback network work,
   * charged to no process) per bot per second, µs; null when not pinned.
   */
  withKernelUsPerBotS: number | null;
  /** The server's core (or event loop, when not pinned) was at least 90 % busy. */
  serverSaturated: boolean;
  snapshotsPerBotS: number;
  inputsPerBotS: number;
  disconnects: number;
  /** Share of bots whose replica holds every avatar of their room; null without rooms (the floor). */
  wholeRoom: number | null;
  carried: boolean;
  botSaturated: boolean;
}

type ServerChild = Child<ServerCommand, ServerReply>;
type BotChild = Child<BotCommand, BotReply>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Where the processes run: the server on core 0, bot processes on the others (when pinnable). */
export function placement(): { server: number | null; bots: (number | null)[] } {
  if (!canPin()) return { server: null, bots: [null] };
  const others = Math.max(1, Math.min(4, availableParallelism() - 1));
  return { server: 0, bots: Array.from({ length: others }, (_, i) => i + 1) };
}

/** Splits `total` bots over `n` processes, whole rooms first. */
function shares(total: number, n: number): number[] {
  const rooms = Math.ceil(total / ROOM_SIZE);
  let left = total;
  return Array.from({ length: n }, (_, i) => {
    const take = Math.min(left, (Math.floor(rooms / n) + (i < rooms % n ? 1 : 0)) * ROOM_SIZE);
    left -= take;
    return take;
  });
}

/** Per CPU from /proc/stat: [busy, steal, total, irq + softirq] in clock ticks; null where unreadable. */
function readCores(): number[][] | null {
  try {
    const cores: number[][] = [];
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const match = /^cpu(\d+) (.*)$/.exec(line);
      if (match === null) continue;
      // user nice system idle iowait irq softirq steal
      const [
        user = 0,
        nice = 0,
        system = 0,
        idle = 0,
        iowait = 0,
        irq = 0,
        softirq = 0,
        steal = 0,
      ] = match[2]!.trim().split(/\s+/).map(Number);
      cores[Number(match[1])] = [
        user + nice + system + irq + softirq,
        steal,
        user + nice + system + idle + iowait + irq + softirq + steal,
        irq + softirq,
      ];
    }
    return cores;
  } catch {
    return null;
  }
}

/** Busy, steal and interrupt (irq + softirq) shares of `core` between two readings. */
function coreShare(before: number[][] | null, after: number[][] | null, core: number | null) {
  const a = core === null ? undefined : before?.[core];
  const b = core === null ? undefined : after?.[core];
  if (a === undefined || b === undefined || b[2]! - a[2]! <= 0) return null;
  const total = b[2]! - a[2]!;
  return {
    busy: (b[0]! - a[0]!) / total,
    steal: (b[1]! - a[1]!) / total,
    interrupts: (b[3]! - a[3]!) / total,
  };
}

interface CoreWindow {
  server: { busy: number; steal: number; interrupts: number } | null;
  bots: number | null;
}

function derive(
  bots: number,
  server: ServerReport,
  botReports: BotReport[],
  cores: CoreWindow,
  hasRooms: boolean,
): Step {
  const seconds = server.elapsedMs / 1000;
  const serverCpu = server.cpuUserUs + server.cpuSystemUs;
  let snapshots = 0;
  let inputs = 0;
  let disconnects = 0;
  let botCore = 0;
  let windowS = 0;
  const rooms = new Map<string, { bots: number; min: number; max: number }>();
  for (const report of botReports) {
    const s = report.elapsedMs / 1000;
    windowS = Math.max(windowS, s);
    snapshots += report.snapshots / s;
    inputs += report.inputsSent / s;
    disconnects += report.disconnects;
    botCore = Math.max(botCore, (report.cpuUserUs + report.cpuSystemUs) / 1e6 / s);
    for (const [id, view] of Object.entries(report.rooms)) {
      const merged = rooms.get(id) ?? { bots: 0, min: view.minSeen, max: view.maxSeen };
      merged.bots += view.bots;
      merged.min = Math.min(merged.min, view.minSeen);
      merged.max = Math.max(merged.max, view.maxSeen);
      rooms.set(id, merged);
    }
  }
  let seeing = 0;
  for (const [id, view] of rooms) {
    const size = server.roomSizes[id];
    if (size === view.bots && view.min === size && view.max === size) seeing += view.bots;
  }
  const snapshotsPerBotS = snapshots / bots;
  const inputsPerBotS = inputs / bots;
  disconnects += server.sessionsEnded;
  const wholeRoom = hasRooms ? seeing / bots : null;
  // Without rooms (the floor) a tick is one broadcast to every bot, not a room step of 50: the
  // room tick's limit does not apply; the floor is carried when it moves every message.
  const carried =
    (!hasRooms || server.tickP99Ms <= TICK_P99_LIMIT_MS) &&
    disconnects === 0 &&
    server.droppedTicks === 0 &&
    (wholeRoom === null || wholeRoom === 1) &&
    snapshotsPerBotS >= KEEP_UP * RATE_HZ;
  return {
    bots,
    server,
    botReports,
    cpuUsPerBotS: serverCpu / seconds / bots,
    serverCore: serverCpu / 1e6 / seconds,
    botCore,
    serverCoreBusy: cores.server?.busy ?? null,
    botCoreBusy: cores.bots,
    serverCoreSteal: cores.server?.steal ?? null,
    withKernelUsPerBotS:
      cores.server === null ? null : (serverCpu / seconds + cores.server.interrupts * 1e6) / bots,
    serverSaturated: (cores.server?.busy ?? server.elu) >= SATURATED_CORE,
    snapshotsPerBotS,
    inputsPerBotS,
    disconnects,
    wholeRoom,
    carried,
    botSaturated:
      Math.max(botCore, cores.bots ?? 0) >= SATURATED_CORE || inputsPerBotS < KEEP_UP * RATE_HZ,
  };
}

function logStep(label: string, step: Step): void {
  const s = step.server;
  const pct = (v: number) => `${(v * 100).toFixed(0)}%`;
  const perBot = (us: number) => (us / (s.elapsedMs / 1000) / step.bots).toFixed(0);
  // NaN crosses IPC as null.
  const ms = (v: number | null, digits = 2) =>
    v === null || !Number.isFinite(v) ? '—' : v.toFixed(digits);
  // Without rooms (the floor), a "tick" is one broadcast pass to every bot.
  const tick = step.wholeRoom === null ? 'broadcast' : 'tick';
  process.stderr.write(
    `  ${label} ${step.bots} bots ${step.wholeRoom === null ? '(no rooms)' : `in ${s.rooms} rooms`}: server ${step.cpuUsPerBotS.toFixed(1)} µs/bot/s ` +
      `(user ${perBot(s.cpuUserUs)}, system ${perBot(s.cpuSystemUs)}) ` +
      `(process ${pct(step.serverCore)} of a core, ELU ${pct(s.elu)}` +
      `${step.serverCoreBusy === null ? '' : `; core busy ${pct(step.serverCoreBusy)}, steal ${pct(step.serverCoreSteal ?? 0)}, with softirq ${step.withKernelUsPerBotS?.toFixed(1)} µs/bot/s`}), ` +
      `${tick} p50 ${ms(s.tickP50Ms)} ` +
      `p99 ${ms(s.tickP99Ms)} max ${ms(s.tickMaxMs)} ms, lag p99 ${ms(s.lagP99Ms, 1)} ms, ` +
      `dropped ${s.droppedTicks}; bots: process ${pct(step.botCore)}` +
      `${step.botCoreBusy === null ? '' : `, core busy ${pct(step.botCoreBusy)}`}, ${step.inputsPerBotS.toFixed(1)} inputs/s ` +
      `${step.snapshotsPerBotS.toFixed(1)} snapshots/s` +
      `${step.wholeRoom === null ? '' : `, whole room ${pct(step.wholeRoom)}`}, ` +
      `disconnects ${step.disconnects}, heap ${s.heapUsedMb.toFixed(0)} MB (${s.heapRetainedMb.toFixed(0)} MB after GC)` +
      `${step.carried ? '' : ' — NOT carried'}${step.serverSaturated ? ' — server saturated' : ''}` +
      `${step.botSaturated ? ' — bots saturated' : ''}\n`,
  );
  if (step.serverCoreBusy !== null && step.withKernelUsPerBotS !== null) {
    // What else ran on the server's core: busy time neither the server nor interrupts account for.
    const other = step.serverCoreBusy - (step.withKernelUsPerBotS * step.bots) / 1e6;
    if (other > 0.1)
      process.stderr.write(
        `    warning: ${pct(other)} of the server's core went to other processes: the machine is not idle\n`,
      );
  }
  const errors = step.botReports.reduce((sum, r) => sum + r.errors, 0);
  const firstError = step.botReports.find((r) => r.firstError !== null)?.firstError;
  if (errors > 0 || firstError)
    process.stderr.write(`    bot errors: ${errors} (first: ${firstError})\n`);
  if (Object.keys(s.rejections).length > 0)
    process.stderr.write(`    server rejections: ${JSON.stringify(s.rejections)}\n`);
}

/** The processes of one ramp: a server and its bot processes. */
export interface Contender {
  label: string;
  serverScript: string;
  botScript: string;
  /** Whether the server groups bots in rooms of ROOM_SIZE (not the plain-ws floor). */
  rooms: boolean;
}

/** Runs the ramp of `plan` against one server implementation; returns the measured steps. */
export async function ramp(
  contender: Contender,
  plan: Plan,
): Promise<{ steps: Step[]; stopped: string }> {
  const where = placement();
  const started = performance.now();
  const server: ServerChild = new Child(
    `${contender.label} server`,
    contender.serverScript,
    where.server,
  );
  const botChildren: BotChild[] = where.bots.map(
    (core, i) => new Child(`${contender.label} bots #${i}`, contender.botScript, core),
  );
  process.stderr.write(
    `  ${contender.label}: server pid ${server.pid}${where.server === null ? ' (not pinned)' : ` on core ${where.server}`}, ` +
      `${botChildren.length} bot process(es)${where.server === null ? '' : ` on core(s) ${where.bots.join(', ')}`}\n`,
  );
  const steps: Step[] = [];
  let stopped = 'every step ran';
  try {
    const { url } = await server.request({ type: 'listen' }, 'listening', 60_000);
    for (const bots of plan.steps) {
      if (performance.now() - started > plan.budgetMs) {
        stopped = `time budget of ${plan.budgetMs / 1000} s reached`;
        break;
      }
      const previous = steps.at(-1)?.bots ?? 0;
      const perProcess = shares(bots, botChildren.length);
      const grown = await Promise.all(
        botChildren.map((child, i) =>
          child.request(
            { type: 'grow', url, total: perProcess[i]!, firstIndex: i * 1_000_000 },
            'grown',
            60_000 + 40 * (bots - previous),
          ),
        ),
      );
      const failed = grown.reduce((sum, g) => sum + g.failed, 0);
      const growMs = Math.max(...grown.map((g) => g.ms));
      process.stderr.write(
        `  ${contender.label}: ${bots} bots connected and joined in ${(growMs / 1000).toFixed(1)} s\n`,
      );
      if (failed > 0) {
        stopped = `${failed} bots could not connect or join at ${bots} (${grown.find((g) => g.firstError)?.firstError})`;
        break;
      }
      await sleep(plan.warmupMs);
      const coresBefore = readCores();
      await Promise.all([
        server.request({ type: 'begin' }, 'begun', 30_000),
        ...botChildren.map((child) => child.request({ type: 'begin' }, 'begun', 30_000)),
      ]);
      await sleep(plan.windowMs);
      const coresAfter = readCores();
      const [serverEnd, ...botEnds] = await Promise.all([
        server.request({ type: 'end' }, 'report', 60_000),
        ...botChildren.map((child) => child.request({ type: 'end' }, 'report', 60_000)),
      ]);
      const botBusy = where.bots
        .map((core) => coreShare(coresBefore, coresAfter, core)?.busy)
        .filter((busy): busy is number => busy !== undefined);
      const step = derive(
        bots,
        serverEnd.report,
        botEnds.map((end) => end.report),
        {
          server: coreShare(coresBefore, coresAfter, where.server),
          bots: botBusy.length === 0 ? null : Math.max(...botBusy),
        },
        contender.rooms,
      );
      steps.push(step);
      logStep(contender.label, step);
      if (!step.carried) {
        stopped = `not carried at ${bots} bots`;
        break;
      }
      if (step.botSaturated) {
        stopped = `bot processes saturated at ${bots} bots`;
        break;
      }
    }
  } finally {
    await Promise.all([server.stop(), ...botChildren.map((child) => child.stop())]);
  }
  process.stderr.write(`  ${contender.label}: ${stopped}\n`);
  return { steps, stopped };
}

export const tickwire: Contender = {
  label: 'tickwire',
  serverScript: script('tickwire-server'),
  botScript: script('tickwire-bots'),
  rooms: true,
};

export const colyseus: Contender = {
  label: 'colyseus',
  serverScript: script('colyseus-server'),
  botScript: script('colyseus-bots'),
  rooms: true,
};

/**
 * The floor: plain `ws` moving the same messages with no game work (a 16 B message in from
 * each bot at 20 Hz, one shared 400 B Buffer out to each bot every 50 ms).
 */
export const floor: Contender = {
  label: 'plain ws',
  serverScript: script('floor-server'),
  botScript: script('floor-bots'),
  rooms: false,
};

/** The peer's steps: the first ones of the ramp, within a shorter time bound. */
const peerPlans: Record<'full' | 'quick', Plan> = {
  full: { ...plans.full, steps: [250, 500, 700], budgetMs: 50_000 },
  quick: { ...plans.quick, steps: [250], budgetMs: 15_000 },
};

const PEER_NAME = 'colyseus 0.16';

/** The floor's steps: the peer's (those ours measured), within a shorter time bound still. */
const floorBudgetMs: Record<'full' | 'quick', number> = { full: 30_000, quick: 10_000 };

const FLOOR_NAME = 'plain ws (no game)';

/** A floor step fit to compare with: carried, its bots keeping up (else its cost is too low). */
const floorValid = (step: Step) => step.carried && !step.botSaturated;

function stepRows(
  step: Step,
  peer: Step | undefined,
  peerName: string,
  floorStep: Step | undefined,
): Row[] {
  const name = `ws/rooms-of-${ROOM_SIZE}/${step.bots}-bots`;
  const withPeer = (value: number | null | undefined) =>
    peer === undefined || value === undefined || value === null
      ? {}
      : { peer: peerName, peerValue: value };
  const pct = (value: number | null) => (value === null ? null : value * 100);
  const rows: Row[] = [
    row({
      case: name,
      metric: 'server_cpu_per_bot',
      unit: 'µs/bot/s',
      better: 'lower',
      tickwire: step.cpuUsPerBotS,
      ...withPeer(peer?.cpuUsPerBotS),
    }),
  ];
  if (floorStep !== undefined)
    rows.push(
      row({
        case: name,
        metric: 'server_cpu_per_bot_plain_ws_floor',
        unit: 'µs/bot/s',
        better: 'lower',
        tickwire: step.cpuUsPerBotS,
        peer: FLOOR_NAME,
        peerValue: floorStep.cpuUsPerBotS,
      }),
    );
  rows.push(
    row({
      case: name,
      metric: 'server_process_cpu',
      unit: '% core',
      better: 'lower',
      tickwire: step.serverCore * 100,
      ...withPeer(peer === undefined ? undefined : peer.serverCore * 100),
    }),
  );
  if (step.withKernelUsPerBotS !== null && step.serverCoreBusy !== null) {
    rows.push(
      row({
        case: name,
        metric: 'server_cpu_incl_softirq_per_bot',
        unit: 'µs/bot/s',
        better: 'lower',
        tickwire: step.withKernelUsPerBotS,
        ...withPeer(peer?.withKernelUsPerBotS),
      }),
      row({
        case: name,
        metric: 'server_core_busy',
        unit: '% core',
        better: 'lower',
        tickwire: step.serverCoreBusy * 100,
        ...withPeer(pct(peer?.serverCoreBusy ?? null)),
      }),
    );
  }
  rows.push(
    row({
      case: name,
      metric: 'tick_p99',
      unit: 'ms',
      better: 'lower',
      tickwire: step.server.tickP99Ms,
    }),
    row({
      case: name,
      metric: 'tick_lag_p99',
      unit: 'ms',
      better: 'lower',
      tickwire: step.server.lagP99Ms,
    }),
    row({
      case: name,
      metric: 'snapshots_per_bot_s',
      unit: '1/s',
      better: 'higher',
      tickwire: step.snapshotsPerBotS,
      ...withPeer(peer?.snapshotsPerBotS),
    }),
  );
  const { snapshotsShared, snapshotsFollowed, snapshotsSent, snapshotsDropped } = step.server;
  const encoded = snapshotsSent + snapshotsDropped;
  if (snapshotsShared !== null && snapshotsFollowed !== null && encoded > 0)
    rows.push(
      row({
        case: name,
        metric: 'snapshots_shared',
        unit: '%',
        better: 'higher',
        tickwire: (100 * snapshotsShared) / encoded,
      }),
      row({
        case: name,
        metric: 'snapshots_followed',
        unit: '%',
        better: 'higher',
        tickwire: (100 * snapshotsFollowed) / encoded,
      }),
    );
  rows.push(
    row({
      case: name,
      metric: 'disconnects',
      unit: '',
      better: 'lower',
      tickwire: step.disconnects,
    }),
    row({
      case: name,
      metric: step.botCoreBusy === null ? 'bot_process_cpu' : 'bot_core_busy',
      unit: '% core',
      better: 'lower',
      tickwire: (step.botCoreBusy ?? step.botCore) * 100,
    }),
    row({
      case: name,
      metric: 'server_heap_after_gc_per_bot',
      unit: 'KiB',
      better: 'lower',
      tickwire: (step.server.heapRetainedMb * 1024) / step.bots,
      ...withPeer(peer === undefined ? undefined : (peer.server.heapRetainedMb * 1024) / peer.bots),
    }),
  );
  return rows;
}

/** The peer's measured steps by bot count, or why there are none. */
export interface PeerResult {
  name: string;
  steps: Step[];
  note: string | null;
}

async function run(options: SuiteOptions): Promise<Row[]> {
  const plan = options.quick ? plans.quick : plans.full;
  const ours = await ramp(tickwire, plan);
  const peerPlan = options.quick ? peerPlans.quick : peerPlans.full;
  let peer: PeerResult;
  try {
    const measured = await ramp(colyseus, {
      ...peerPlan,
      steps: peerPlan.steps.filter((bots) => ours.steps.some((step) => step.bots === bots)),
    });
    peer = { name: PEER_NAME, steps: measured.steps, note: measured.stopped };
  } catch (error) {
    const note = error instanceof Error ? error.message : String(error);
    process.stderr.write(`  colyseus: failed, no peer figures: ${note}\n`);
    peer = { name: PEER_NAME, steps: [], note };
  }
  const peerOf = (bots: number) => peer.steps.find((step) => step.bots === bots);
  // The floor: the same steps as the peer's, after it. Its failure leaves the other rows.
  let floorSteps: Step[] = [];
  try {
    const measured = await ramp(floor, {
      ...peerPlan,
      steps: peerPlan.steps.filter((bots) => ours.steps.some((step) => step.bots === bots)),
      budgetMs: floorBudgetMs[options.quick ? 'quick' : 'full'],
    });
    floorSteps = measured.steps;
  } catch (error) {
    const note = error instanceof Error ? error.message : String(error);
    process.stderr.write(`  plain ws: failed, no floor figures: ${note}\n`);
  }
  const floorOf = (bots: number) => {
    const step = floorSteps.find((s) => s.bots === bots);
    return step !== undefined && floorValid(step) ? step : undefined;
  };
  // One line per floor step: the three servers' CPU per bot and each library's over the floor's.
  for (const step of floorSteps) {
    const base = step.cpuUsPerBotS;
    const over = (label: string, theirs: Step | undefined) =>
      theirs === undefined
        ? `${label} —`
        : `${label} ${theirs.cpuUsPerBotS.toFixed(1)} (${(theirs.cpuUsPerBotS / base).toFixed(2)}× the floor)`;
    const ourStep = ours.steps.find((s) => s.bots === step.bots);
    const note = floorValid(step) ? '' : ' — floor step not carried or its bots saturated: no row';
    process.stderr.write(
      `  over the floor at ${step.bots} bots: plain ws ${base.toFixed(1)} µs/bot/s, ` +
        `${over('tickwire', ourStep)}, ${over('colyseus', peerOf(step.bots))}${note}\n`,
    );
  }
  const rows: Row[] = [];
  for (const step of ours.steps)
    rows.push(...stepRows(step, peerOf(step.bots), peer.name, floorOf(step.bots)));
  const carried = ours.steps.filter((step) => step.carried);
  // Per-bot cost from the largest step carried with the bots keeping up (else the largest).
  const valid = carried.filter((step) => !step.botSaturated);
  const basis = valid.at(-1) ?? carried.at(-1) ?? ours.steps.at(-1);
  const summary = `ws/rooms-of-${ROOM_SIZE}`;
  const flag = (value: boolean) => (value ? 1 : 0);
  rows.push(
    row({
      case: summary,
      metric: 'max_bots_carried',
      unit: 'bots',
      better: 'higher',
      tickwire: carried.at(-1)?.bots ?? 0,
    }),
    row({
      case: summary,
      metric: 'largest_step_measured',
      unit: 'bots',
      better: 'higher',
      tickwire: ours.steps.at(-1)?.bots ?? 0,
    }),
  );
  const extrapolations = (step: Step, theirs: Step | undefined): Row[] => {
    const at = `${summary}/at-${step.bots}-bots`;
    const out = [
      row({
        case: at,
        metric: 'bots_per_core_extrapolated',
        unit: 'bots',
        better: 'higher',
        tickwire: 1e6 / step.cpuUsPerBotS,
        ...(theirs === undefined ? {} : { peer: peer.name, peerValue: 1e6 / theirs.cpuUsPerBotS }),
      }),
    ];
    if (step.withKernelUsPerBotS !== null) {
      out.push(
        row({
          case: at,
          metric: 'bots_per_core_extrapolated_incl_kernel',
          unit: 'bots',
          better: 'higher',
          tickwire: 1e6 / step.withKernelUsPerBotS,
          ...(theirs?.withKernelUsPerBotS == null
            ? {}
            : { peer: peer.name, peerValue: 1e6 / theirs.withKernelUsPerBotS }),
        }),
      );
    }
    return out;
  };
  // Against the peer: the largest bot count where both sides' bots kept up.
  const common = valid
    .filter((step) => {
      const theirs = peerOf(step.bots);
      return theirs?.carried === true && !theirs.botSaturated;
    })
    .at(-1);
  if (common !== undefined) rows.push(...extrapolations(common, peerOf(common.bots)));
  if (basis !== undefined && basis !== common) rows.push(...extrapolations(basis, undefined));
  rows.push(
    row({
      case: summary,
      metric: 'server_saturated',
      unit: '0/1',
      better: 'lower',
      tickwire: flag(ours.steps.some((step) => step.serverSaturated)),
    }),
    row({
      case: summary,
      metric: 'bot_side_saturated',
      unit: '0/1',
      better: 'lower',
      tickwire: flag(ours.steps.some((step) => step.botSaturated)),
    }),
    row({
      case: summary,
      metric: 'bots_seeing_whole_room',
      unit: '%',
      better: 'higher',
      tickwire:
        Math.min(
          ...ours.steps.flatMap((step) => (step.wholeRoom === null ? [] : [step.wholeRoom])),
        ) * 100,
    }),
  );
  return rows;
}

/** A Tickwire server process carrying ws bots in rooms of 50 at 20 Hz, ramped until it fails. */
export const suite: Suite = { name: 'server', run };
