import {
  Channel,
  type Connection,
  Emitter,
  ErrorCode,
  FRAME_HEADER_BYTES,
  isTickwireError,
  Opcode,
  type Subscribable,
  subscribable,
  TickwireError,
  toTickwireError,
} from '@tickwire/core';
import { BinaryReader, BinaryWriter } from '@tickwire/serialization';
import {
  type BandwidthBudget,
  type BandwidthBudgetOptions,
  createBandwidthBudget,
  MIN_SNAPSHOT_BUDGET_BYTES,
} from './budget.js';
import type { Replica } from './replica.js';
import type { RpcClient, RpcServer } from './rpc.js';
import type { ClientId, ReplicationServer } from './server.js';

/**
 * Flag of a `SnapshotAck` frame that turns it into a resync request: `[Opcode.SnapshotAck]
 * [RESYNC_FLAG]` with an empty payload, sent reliably by a client whose replica no longer
 * matches the server (a checksum mismatch or an undecodable snapshot). The host answers with
 * `server.resync`, so the next snapshot is a full one. Requests arriving before that snapshot
 * is encoded cost nothing more: they are merged into it.
 */
export const RESYNC_FLAG = 0x80;

/**
 * Applied snapshots after which a client whose replica still mismatches sends another resync
 * request (the full snapshot that answers the first one may have been lost).
 */
const RESYNC_RETRY_SNAPSHOTS = 10;

// Frames are `[opcode u8][flags u8]` + payload (core's frame header). They are built in one
// reusable buffer: `Connection.send` copies the bytes before it returns.
class FrameBuffer {
  #bytes = new Uint8Array(256);

  frame(opcode: number, flags: number, payload: Uint8Array): Uint8Array {
    const size = FRAME_HEADER_BYTES + payload.byteLength;
    if (size > this.#bytes.byteLength)
      this.#bytes = new Uint8Array(Math.max(size, this.#bytes.byteLength * 2));
    const bytes = this.#bytes;
    bytes[0] = opcode;
    bytes[1] = flags;
    bytes.set(payload, FRAME_HEADER_BYTES);
    return bytes.subarray(0, size);
  }
}

const EMPTY = new Uint8Array(0);

/** A resync request's payload: the mismatched snapshot id as a varuint. */
function writeSnapshotId(id: number): Uint8Array {
  const writer = new BinaryWriter({ initialBytes: 16 });
  writer.writeVarUint(id);
  return writer.toBytes();
}

function readSnapshotId(payload: Uint8Array): number {
  try {
    const reader = new BinaryReader().reset(payload);
    const id = reader.readVarUint();
    reader.end();
    return id;
  } catch (error) {
    throw new TickwireError(ErrorCode.DECODE_FAILED, 'replication: malformed resync request', {
      cause: error,
    });
  }
}

/** Every engine opcode: frames of other layers sharing the connection carry one of these. */
const KNOWN_OPCODES: ReadonlySet<number> = new Set(Object.values(Opcode));

function decodeFailed(message: string): TickwireError {
  return new TickwireError(ErrorCode.DECODE_FAILED, message);
}

function protocolError(opcode: number, flags: number | undefined, why: string): TickwireError {
  const flagText = flags === undefined ? '' : ` and flags 0x${flags.toString(16)}`;
  return new TickwireError(
    ErrorCode.PROTOCOL_ERROR,
    `replication: frame with opcode 0x${opcode.toString(16)}${flagText}: ${why}`,
    { details: { opcode, flags } },
  );
}

function shortFrame(length: number): TickwireError {
  return decodeFailed(
    `replication: frame of ${length} bytes is shorter than the ${FRAME_HEADER_BYTES}-byte header`,
  );
}

// ---- server side ---------------------------------------------------------------------------

/** Options of {@link createReplicationHost}. */
export interface ReplicationHostOptions {
  /** The server whose snapshots are sent and which receives the acks. */
  server: ReplicationServer;
  /** Receives the clients' `Opcode.Rpc` frames; without it they are left to other layers. */
  rpc?: RpcServer | undefined;
  /**
   * Byte budget per snapshot: `'auto'` adapts one per client to its connection (see
   * {@link createBandwidthBudget}), a number (an integer >= 16) is a fixed budget for every
   * client, undefined sends every change.
   * @default undefined
   */
  budget?: 'auto' | number | undefined;
  /** Options of the per-client budgets when `budget` is `'auto'`. */
  budgetOptions?: BandwidthBudgetOptions | undefined;
}

/** Live counters of a {@link ReplicationHost}, over every client. */
export interface ReplicationHostStats {
  /** Snapshot frames accepted by the connections. */
  snapshots: number;
  /** Their bytes, headers included. */
  bytes: number;
  /** Snapshots a connection dropped locally (`send` returned false: its buffer was full). */
  dropped: number;
  /** Acks that advanced a client's baseline. */
  acks: number;
  /** Well-formed acks that were stale or named no snapshot the server remembers. */
  staleAcks: number;
  /** Resync requests received. */
  resyncs: number;
  /** Owned-field change frames passed to `server.receiveChanges` (refusals: `rejected`). */
  changes: number;
  /** Correction frames sent (rolled-back changes, `server.correct`). */
  corrections: number;
  /** Rpc frames passed to the rpc server (which counts its own rejections). */
  rpcs: number;
  /**
   * Frames of other layers sharing the connection, left alone: any other engine opcode (rpc
   * frames too when there is no rpc server).
   */
  other: number;
  /**
   * Frames refused: empty or shorter than the header, an opcode that is no engine opcode, a
   * snapshot sent to the server, unsupported flags, an undecodable ack. Each is also an
   * `error` event.
   */
  malformed: number;
}

/** Events of a {@link ReplicationHost}. */
export type ReplicationHostEvents = {
  /**
   * Something went wrong with one client, and the host carried on: a refused frame
   * (DECODE_FAILED, PROTOCOL_ERROR), a snapshot that could not be encoded or sent
   * (MESSAGE_TOO_LARGE…). Without a listener errors are only counted.
   */
  error: [clientId: ClientId, error: TickwireError];
  /**
   * A client's write to an owned field was refused (FORBIDDEN, NOT_FOUND, VALIDATION_FAILED,
   * CONFLICT; INTERNAL when `validateChange` threw); the client gets a correction that rolls
   * it back.
   */
  rejected: [clientId: ClientId, error: TickwireError];
};

/** Connects a {@link ReplicationServer} (and optionally an {@link RpcServer}) to clients' connections. */
export interface ReplicationHost extends Subscribable<ReplicationHostEvents> {
  /**
   * Adds a client to the server and serves it over `connection` until the connection closes
   * or the returned function is called; either removes the client from the server and the rpc
   * server (the connection itself is left open). Throws CONFLICT for a client already
   * attached or added to the server, CONNECTION_CLOSED for a closing or closed connection.
   */
  attach(clientId: ClientId, connection: Connection): () => void;
  /**
   * Encodes and sends one snapshot to every attached client whose connection is open, as
   * `[Opcode.Snapshot][0]` + snapshot on the unreliable channel (call it after
   * `server.update()`). With `budget: 'auto'` each client's budget is updated from its
   * connection's stats first. Never throws: a client whose connection turns out closed is
   * detached, other failures are `error` events.
   */
  sendSnapshots(): void;
  /**
   * Sends an rpc message to a client as `[Opcode.Rpc][0]` + bytes: pass it as
   * `createRpcServer`'s `send`. Throws NOT_FOUND for a client that is not attached,
   * CONNECTION_CLOSED (after detaching the client) or MESSAGE_TOO_LARGE from the connection.
   */
  sendRpc(clientId: ClientId, bytes: Uint8Array, channel: Channel): void;
  /** The attached clients, in the order they were attached (pass it as `createRpcServer`'s `clients`). */
  clients(): IterableIterator<ClientId>;
  /** The byte budget of a client's last snapshot; undefined without budgets or before its first snapshot under `'auto'`. */
  budgetOf(clientId: ClientId): number | undefined;
  /** Live counters. */
  readonly stats: Readonly<ReplicationHostStats>;
}

interface Attached {
  readonly clientId: ClientId;
  readonly connection: Connection;
  readonly budget: BandwidthBudget | undefined;
  bytes: number | undefined;
  off(): void;
}

/**
 * Serves a replication server over core `Connection`s with core's frame header. From the
 * server: `[Opcode.Snapshot][0]` + snapshot (unreliable), `[Opcode.Rpc][0]` + rpc message.
 * From a client: `[Opcode.SnapshotAck][0]` + `replica.ack()` bytes, `[Opcode.SnapshotAck]
 * [RESYNC_FLAG]` (a resync request, see {@link RESYNC_FLAG}), `[Opcode.Rpc][0]` + rpc message.
 * Frames with another engine opcode belong to other layers sharing the connection (time sync,
 * messages…) and are left alone (`stats.other`). Anything else is refused without closing the
 * connection: counted in `stats.malformed` and reported on `error`.
 */
export function createReplicationHost(options: ReplicationHostOptions): ReplicationHost {
  if (typeof options !== 'object' || options === null || typeof options.server !== 'object')
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'createReplicationHost: options.server is required',
    );
  const { server, rpc, budget } = options;
  if (
    budget !== undefined &&
    budget !== 'auto' &&
    !(typeof budget === 'number' && Number.isInteger(budget) && budget >= MIN_SNAPSHOT_BUDGET_BYTES)
  )
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `createReplicationHost: budget must be 'auto', an integer >= ${MIN_SNAPSHOT_BUDGET_BYTES} or undefined, got ${String(budget)}`,
    );
  // Fail now rather than at the first attach.
  if (budget === 'auto') createBandwidthBudget(options.budgetOptions);
  const attached = new Map<ClientId, Attached>();
  const emitter = new Emitter<ReplicationHostEvents>();
  const frames = new FrameBuffer();
  const stats: ReplicationHostStats = {
    snapshots: 0,
    bytes: 0,
    dropped: 0,
    acks: 0,
    staleAcks: 0,
    resyncs: 0,
    changes: 0,
    corrections: 0,
    rpcs: 0,
    other: 0,
    malformed: 0,
  };

  const report = (entry: Attached, error: TickwireError) => {
    emitter.emit('error', entry.clientId, error);
  };
  const refuse = (entry: Attached, error: TickwireError) => {
    stats.malformed++;
    report(entry, error);
  };

  const detach = (entry: Attached) => {
    if (attached.get(entry.clientId) !== entry) return;
    attached.delete(entry.clientId);
    entry.off();
    server.removeClient(entry.clientId);
    rpc?.removeClient(entry.clientId);
  };

  const receive = (entry: Attached, data: Uint8Array) => {
    const opcode = data[0];
    if (opcode === undefined) return refuse(entry, shortFrame(0));
    if (
      opcode !== Opcode.SnapshotAck &&
      opcode !== Opcode.Snapshot &&
      opcode !== Opcode.OwnerChanges &&
      !(opcode === Opcode.Rpc && rpc)
    ) {
      if (KNOWN_OPCODES.has(opcode)) stats.other++;
      else refuse(entry, protocolError(opcode, undefined, 'not an engine opcode'));
      return;
    }
    if (data.byteLength < FRAME_HEADER_BYTES) return refuse(entry, shortFrame(data.byteLength));
    const flags = data[1]!;
    const payload = data.subarray(FRAME_HEADER_BYTES);
    if (opcode === Opcode.SnapshotAck) {
      if (flags === 0) {
        if (server.receiveAck(entry.clientId, payload)) stats.acks++;
        else stats.staleAcks++;
      } else if (flags === RESYNC_FLAG) {
        // An empty payload, or the mismatched snapshot's id: answered with the expected state.
        const mismatched = payload.byteLength === 0 ? undefined : readSnapshotId(payload);
        const expected = server.resync(entry.clientId, mismatched);
        stats.resyncs++;
        if (expected !== undefined) sendReliable(entry, Opcode.Snapshot, RESYNC_FLAG, expected);
      } else refuse(entry, protocolError(opcode, flags, 'not an ack nor a resync request'));
    } else if (opcode === Opcode.OwnerChanges) {
      if (flags !== 0) return refuse(entry, protocolError(opcode, flags, 'unsupported flags'));
      const result = server.receiveChanges(entry.clientId, payload);
      stats.changes++;
      for (const error of result.rejected) emitter.emit('rejected', entry.clientId, error);
      flushCorrections(entry);
    } else if (opcode === Opcode.Snapshot) {
      refuse(entry, protocolError(opcode, flags, 'snapshots go from the server to clients'));
    } else if (flags !== 0) {
      refuse(entry, protocolError(opcode, flags, 'unsupported flags'));
    } else {
      stats.rpcs++;
      rpc!.receive(entry.clientId, payload);
    }
  };

  const sendReliable = (entry: Attached, opcode: number, flags: number, bytes: Uint8Array) => {
    try {
      entry.connection.send(frames.frame(opcode, flags, bytes), Channel.Reliable);
    } catch (error) {
      if (isTickwireError(error, ErrorCode.CONNECTION_CLOSED)) detach(entry);
      else report(entry, toTickwireError(error));
    }
  };

  /** Sends the corrections waiting for a client (rollbacks, `server.correct`). */
  const flushCorrections = (entry: Attached) => {
    let corrections: Uint8Array | undefined;
    try {
      corrections = server.takeCorrections(entry.clientId);
    } catch (error) {
      // A client the server forgot is reported once, by the snapshot that follows.
      if (!isTickwireError(error, ErrorCode.NOT_FOUND)) report(entry, toTickwireError(error));
      return;
    }
    if (corrections === undefined) return;
    stats.corrections++;
    sendReliable(entry, Opcode.Correction, 0, corrections);
  };

  const sendSnapshot = (entry: Attached) => {
    const { clientId, connection } = entry;
    flushCorrections(entry);
    // Sending them may have found the connection closed and detached the client.
    if (attached.get(clientId) !== entry) return;
    let bytes: Uint8Array;
    try {
      if (entry.budget !== undefined) {
        const allowed = entry.budget.update(connection.stats, connection.bufferedAmount);
        // Never more than the connection carries in one message.
        entry.bytes = Math.max(
          MIN_SNAPSHOT_BUDGET_BYTES,
          Math.min(allowed, connection.maxMessageBytes - FRAME_HEADER_BYTES),
        );
        server.setBudget(clientId, entry.bytes);
      }
      bytes = server.snapshotFor(clientId);
    } catch (error) {
      report(entry, toTickwireError(error));
      return;
    }
    try {
      const frame = frames.frame(Opcode.Snapshot, 0, bytes);
      if (connection.send(frame, Channel.Unreliable)) {
        stats.snapshots++;
        stats.bytes += frame.byteLength;
      } else stats.dropped++;
    } catch (error) {
      if (isTickwireError(error, ErrorCode.CONNECTION_CLOSED)) detach(entry);
      else report(entry, toTickwireError(error));
    }
  };

  return {
    ...subscribable(emitter),
    attach(clientId, connection) {
      if (attached.has(clientId))
        throw new TickwireError(
          ErrorCode.CONFLICT,
          `replication host: client ${String(clientId)} is already attached`,
        );
      if (connection.state === 'closing' || connection.state === 'closed')
        throw new TickwireError(
          ErrorCode.CONNECTION_CLOSED,
          `replication host: connection ${connection.id} is ${connection.state}`,
        );
      server.addClient(clientId);
      if (typeof budget === 'number') server.setBudget(clientId, budget);
      const entry: Attached = {
        clientId,
        connection,
        budget: budget === 'auto' ? createBandwidthBudget(options.budgetOptions) : undefined,
        bytes: typeof budget === 'number' ? budget : undefined,
        off: () => {
          offMessage();
          offClose();
        },
      };
      attached.set(clientId, entry);
      const offMessage = connection.on('message', (data) => {
        try {
          receive(entry, data);
        } catch (error) {
          // A frame the server refused (a malformed ack) or a server failure.
          refuse(entry, toTickwireError(error));
        }
      });
      const offClose = connection.on('close', () => detach(entry));
      return () => detach(entry);
    },
    sendSnapshots() {
      for (const entry of attached.values())
        if (entry.connection.state === 'open') sendSnapshot(entry);
    },
    sendRpc(clientId, bytes, channel) {
      const entry = attached.get(clientId);
      if (entry === undefined)
        throw new TickwireError(
          ErrorCode.NOT_FOUND,
          `replication host: client ${String(clientId)} is not attached`,
        );
      try {
        entry.connection.send(frames.frame(Opcode.Rpc, 0, bytes), channel);
      } catch (error) {
        if (isTickwireError(error, ErrorCode.CONNECTION_CLOSED)) detach(entry);
        throw error;
      }
    },
    clients: () => attached.keys(),
    budgetOf: (clientId) => attached.get(clientId)?.bytes,
    stats,
  };
}

// ---- client side ---------------------------------------------------------------------------

/** Options of {@link connectReplica}. */
export interface ReplicaConnectionOptions {
  /** Receives the server's `Opcode.Rpc` frames; without it they are left to other layers. */
  rpc?: RpcClient | undefined;
  /**
   * Ask for a full snapshot (a resync request, see {@link RESYNC_FLAG}) when the replica
   * reports a checksum mismatch or a snapshot fails to decode. One request is outstanding at a
   * time: another is sent only after a snapshot applied cleanly, or after 10 more applied
   * snapshots still mismatch.
   * @default true
   */
  resyncOnMismatch?: boolean | undefined;
}

/** Live counters of a {@link ReplicaConnection}. */
export interface ReplicaConnectionStats {
  /** Snapshots applied (and acknowledged). */
  snapshots: number;
  /**
   * Snapshots ignored because they were not newer than the last applied one (duplicates, late
   * arrivals). They are not acknowledged again: the ack of the next applied snapshot names
   * the last 33 applied ones.
   */
  ignored: number;
  /**
   * Frames refused: empty or shorter than the header, an opcode that is no engine opcode, an
   * ack sent to a client, unsupported flags, an undecodable snapshot.
   */
  malformed: number;
  /**
   * Frames of other layers sharing the connection, left alone: any other engine opcode (rpc
   * frames too when there is no rpc client).
   */
  other: number;
  /** Acks the connection accepted. */
  acksSent: number;
  /** Resync requests sent. */
  resyncRequests: number;
  /** Diagnoses that named a difference (see `replica.diagnose` and its `desync` event). */
  desyncs: number;
  /** Owned-field change frames sent. */
  changesSent: number;
  /** Correction frames applied. */
  corrections: number;
  /** Rpc frames passed to the rpc client (which counts its own rejections). */
  rpcs: number;
}

/** Events of a {@link ReplicaConnection}. */
export type ReplicaConnectionEvents = {
  /** A snapshot was applied (after the replica's own events) and acknowledged. */
  snapshot: [snapshotId: number];
  /**
   * A frame was refused (DECODE_FAILED for a short frame or undecodable snapshot, leaving the
   * replica unchanged; PROTOCOL_ERROR for an opcode or flags not handled), or an ack could not
   * be sent. Without a listener errors are only counted.
   */
  error: [error: TickwireError];
};

/** A replica fed by a connection; made by {@link connectReplica}. */
export interface ReplicaConnection extends Subscribable<ReplicaConnectionEvents> {
  /**
   * Sends an rpc message to the server as `[Opcode.Rpc][0]` + bytes: pass it as
   * `createRpcClient`'s `send`. Throws INVALID_STATE after `close()`, CONNECTION_CLOSED or
   * MESSAGE_TOO_LARGE from the connection.
   */
  sendRpc(bytes: Uint8Array, channel: Channel): void;
  /**
   * Sends the replica's writes to owned fields (`replica.takeChanges()`) reliably as
   * `[Opcode.OwnerChanges][0]`; call it once per tick. Returns false when there were none.
   */
  sendChanges(): boolean;
  /**
   * Stops handling the connection (removes every listener); idempotent. The connection is
   * left open: it belongs to the caller. Happens by itself when the connection closes (at
   * once if it is already closed).
   */
  close(): void;
  /** True after `close()` or once the connection closed. */
  readonly closed: boolean;
  /** Live counters. */
  readonly stats: Readonly<ReplicaConnectionStats>;
}

/**
 * Feeds a replica from a connection served by {@link createReplicationHost}: applies every
 * `[Opcode.Snapshot][0]` frame and acknowledges it with `[Opcode.SnapshotAck][0]` +
 * `replica.ack()` on the unreliable channel; passes `[Opcode.Rpc][0]` frames to `options.rpc`;
 * sends resync requests (reliable) on mismatches. Frames with other engine opcodes are left
 * to other layers (`stats.other`). Never throws on what arrives: refused frames are counted in
 * `stats.malformed` and reported on `error`.
 */
export function connectReplica(
  replica: Replica,
  connection: Connection,
  options: ReplicaConnectionOptions = {},
): ReplicaConnection {
  const { rpc } = options;
  const resyncOnMismatch = options.resyncOnMismatch ?? true;
  const emitter = new Emitter<ReplicaConnectionEvents>();
  const frames = new FrameBuffer();
  const stats: ReplicaConnectionStats = {
    snapshots: 0,
    ignored: 0,
    malformed: 0,
    other: 0,
    acksSent: 0,
    resyncRequests: 0,
    desyncs: 0,
    changesSent: 0,
    corrections: 0,
    rpcs: 0,
  };
  let closed = false;
  /** A resync request is outstanding; applied snapshots since it was sent. */
  let resyncPending = false;
  let sinceRequest = 0;
  /** The snapshot being applied reported a mismatch. */
  let mismatched = false;

  const refuse = (error: TickwireError) => {
    stats.malformed++;
    emitter.emit('error', error);
  };

  /** Sends a frame; false when the connection is closing (its close event detaches us). */
  const send = (opcode: number, flags: number, payload: Uint8Array, channel: Channel) => {
    try {
      return connection.send(frames.frame(opcode, flags, payload), channel);
    } catch (error) {
      if (!isTickwireError(error, ErrorCode.CONNECTION_CLOSED))
        emitter.emit('error', toTickwireError(error));
      return false;
    }
  };

  const requestResync = () => {
    if (!resyncOnMismatch || (resyncPending && sinceRequest < RESYNC_RETRY_SNAPSHOTS)) return;
    const mismatched = replica.mismatchedSnapshot;
    const payload = mismatched === 0 ? EMPTY : writeSnapshotId(mismatched);
    if (!send(Opcode.SnapshotAck, RESYNC_FLAG, payload, Channel.Reliable)) return;
    resyncPending = true;
    sinceRequest = 0;
    stats.resyncRequests++;
  };

  const applySnapshot = (payload: Uint8Array) => {
    mismatched = false;
    let snapshotId: number | undefined;
    try {
      snapshotId = replica.apply(payload);
    } catch (error) {
      refuse(toTickwireError(error, ErrorCode.DECODE_FAILED));
      requestResync();
      return;
    }
    if (snapshotId === undefined) {
      stats.ignored++;
      return;
    }
    stats.snapshots++;
    sinceRequest++;
    if (!mismatched) resyncPending = false;
    if (send(Opcode.SnapshotAck, 0, replica.ack(), Channel.Unreliable)) stats.acksSent++;
    emitter.emit('snapshot', snapshotId);
  };

  const receive = (data: Uint8Array) => {
    const opcode = data[0];
    if (opcode === undefined) return refuse(shortFrame(0));
    if (
      opcode !== Opcode.Snapshot &&
      opcode !== Opcode.SnapshotAck &&
      opcode !== Opcode.Correction &&
      !(opcode === Opcode.Rpc && rpc)
    ) {
      if (KNOWN_OPCODES.has(opcode)) stats.other++;
      else refuse(protocolError(opcode, undefined, 'not an engine opcode'));
      return;
    }
    if (data.byteLength < FRAME_HEADER_BYTES) return refuse(shortFrame(data.byteLength));
    const flags = data[1]!;
    const payload = data.subarray(FRAME_HEADER_BYTES);
    if (opcode === Opcode.SnapshotAck)
      refuse(protocolError(opcode, flags, 'acks go from clients to the server'));
    else if (opcode === Opcode.Snapshot && flags === RESYNC_FLAG) {
      // The state the server expected after the mismatched snapshot: name the difference.
      try {
        const desync = replica.diagnose(payload);
        if (desync !== undefined) stats.desyncs++;
      } catch (error) {
        refuse(toTickwireError(error, ErrorCode.DECODE_FAILED));
      }
    } else if (flags !== 0) refuse(protocolError(opcode, flags, 'unsupported flags'));
    else if (opcode === Opcode.Correction) {
      try {
        replica.applyCorrections(payload);
        stats.corrections++;
      } catch (error) {
        refuse(toTickwireError(error, ErrorCode.DECODE_FAILED));
      }
    } else if (opcode === Opcode.Snapshot) applySnapshot(payload);
    else {
      stats.rpcs++;
      rpc!.receive(payload);
    }
  };

  const offMessage = connection.on('message', (data) => {
    try {
      receive(data);
    } catch (error) {
      refuse(toTickwireError(error));
    }
  });
  const offMismatch = replica.on('mismatch', () => {
    mismatched = true;
    requestResync();
  });
  const close = () => {
    if (closed) return;
    closed = true;
    offMessage();
    offMismatch();
    offClose();
  };
  const offClose = connection.on('close', close);
  // Its close event is over: nothing else would ever detach.
  if (connection.state === 'closed') close();

  return {
    ...subscribable(emitter),
    sendRpc(bytes, channel) {
      if (closed) throw new TickwireError(ErrorCode.INVALID_STATE, 'replica connection: closed');
      connection.send(frames.frame(Opcode.Rpc, 0, bytes), channel);
    },
    sendChanges() {
      if (closed) return false;
      const changes = replica.takeChanges();
      if (changes === undefined) return false;
      if (send(Opcode.OwnerChanges, 0, changes, Channel.Reliable)) stats.changesSent++;
      return true;
    },
    close,
    get closed() {
      return closed;
    },
    stats,
  };
}
