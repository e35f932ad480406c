// What the `server` suite's parent process says to its server and bot processes over IPC.
// One request at a time per child; each answer has the type the parent waits for.

/** Parent to a server process. */
export type ServerCommand =
  | { type: 'listen' }
  | { type: 'begin' }
  | { type: 'end' }
  | { type: 'stop' };

/** Figures of one measurement window of a server process. */
export interface ServerReport {
  /** Wall time of the window, in ms. */
  elapsedMs: number;
  /** `process.cpuUsage()` delta over the window, in µs. */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** Event-loop utilization over the window (0–1). */
  elu: number;
  /** Room ticks timed in the window. */
  ticks: number;
  /** Duration of one room tick (onTick + replication update + one snapshot per member sent), ms. */
  tickP50Ms: number;
  tickP99Ms: number;
  tickMaxMs: number;
  /** How late a tick started against its room's own schedule, ms (p99). */
  lagP99Ms: number;
  /** Ticks the rooms skipped to catch up after a stall (room.stats.droppedTicks delta). */
  droppedTicks: number;
  /** Snapshots the replication hosts sent / dropped (unreliable send refused) in the window. */
  snapshotsSent: number;
  snapshotsDropped: number;
  /**
   * Tickwire: of the snapshots encoded, those whose body was reused from another member's
   * (`shared`), and of those the ones taken whole from a member in the same state
   * (`followed`); null for the peer.
   */
  snapshotsShared: number | null;
  snapshotsFollowed: number | null;
  /** Room inputs handled in the window. */
  inputs: number;
  rooms: number;
  /** Members per room id at the end of the window. */
  roomSizes: Record<string, number>;
  connections: number;
  /** Sessions that ended since the server started (a bot never leaves during a run). */
  sessionsEnded: number;
  /** Refusals by reason since the server started. */
  rejections: Record<string, number>;
  heapUsedMb: number;
  /** Heap still used after a full GC forced at the end of the window, MiB. */
  heapRetainedMb: number;
}

/** Server process to parent. */
export type ServerReply =
  | { type: 'listening'; url: string }
  | { type: 'begun' }
  | { type: 'report'; report: ServerReport }
  | { type: 'failed'; message: string };

/** Parent to a bot process. */
export type BotCommand =
  | { type: 'grow'; url: string; total: number; firstIndex: number }
  | { type: 'begin' }
  | { type: 'end' }
  | { type: 'stop' };

/** Per room: how many of this process's bots are in it and the fewest/most avatars they see. */
export interface RoomView {
  bots: number;
  minSeen: number;
  maxSeen: number;
}

/** Figures of one measurement window of a bot process. */
export interface BotReport {
  elapsedMs: number;
  bots: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  elu: number;
  /** Snapshots applied by all bots in the window. */
  snapshots: number;
  /** Inputs sent / refused by the connection (unreliable, full buffer) in the window. */
  inputsSent: number;
  inputsDropped: number;
  /** Bots whose connection closed since they joined. */
  disconnects: number;
  /** Client and room errors since the start. */
  errors: number;
  firstError: string | null;
  rooms: Record<string, RoomView>;
  /** Event-loop delay p99 of the bot process over the window, ms. */
  loopDelayP99Ms: number;
}

/** Bot process to parent. */
export type BotReply =
  | { type: 'grown'; bots: number; failed: number; firstError: string | null; ms: number }
  | { type: 'begun' }
  | { type: 'report'; report: BotReport }
  | { type: 'failed'; message: string };
