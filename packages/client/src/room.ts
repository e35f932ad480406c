import {
  type Channel,
  Emitter,
  ErrorCode,
  FRAME_HEADER_BYTES,
  type Subscribable,
  subscribable,
  TickwireError,
  type TimeSource,
  toTickwireError,
} from '@tickwire/core';
import {
  connectReplica,
  type DesyncDiagnosis,
  type EntityType,
  type Replica,
  type ReplicaConnection,
  type ReplicaOwnership,
  type RpcClient,
} from '@tickwire/replication';
import {
  encodeLeaveRoom,
  encodeRoomMessage,
  type RoomJoinedFrame,
  type SessionLink,
} from '@tickwire/rooms/protocol';
import type {
  Message,
  MessageDefinitions,
  MessageInput,
  MessageRegistry,
} from '@tickwire/serialization';

/** What the client needs to know about a room's messages and state (share it with the server). */
export interface ClientRoomOptions<C extends MessageDefinitions, S extends MessageDefinitions> {
  /** The room's message registries: `client` for what the client sends, `server` for what it receives. */
  messages?: { client?: MessageRegistry<C>; server?: MessageRegistry<S> };
  /** The room's replicated entity types, in the server's order: gives the room a `replica`. */
  replication?: {
    types: readonly EntityType[];
    /** Receives the server's rpc frames. */
    rpc?: RpcClient;
    /** @default true */
    resyncOnMismatch?: boolean;
    /**
     * `ownedFields` (from `@tickwire/replication`): the client side of owned fields
     * (`replica.set`, sent by `replication.sendChanges()`); required when a type has `owned`
     * fields.
     */
    ownership?: ReplicaOwnership;
    /**
     * `desyncDiagnosis` (from `@tickwire/replication`) names the first differing field when a
     * checksum mismatches (the replica's `desync` event); off by default.
     */
    diagnosis?: DesyncDiagnosis;
  };
}

/** Events of a {@link ClientRoom}. */
export type ClientRoomEvents<S extends MessageDefinitions> = {
  /** A message from the room, decoded and validated with `messages.server`. */
  message: [message: Message<S>];
  /** The client is no longer in the room: 1000 it left, 4004 kicked, 1001/1012 the room or server went away. */
  leave: [code: number, reason: string];
  /** A message that could not be decoded, an Error frame from the room. */
  error: [error: TickwireError];
};

/** Options of {@link ClientRoom.send}. */
export interface SendOptions {
  /** `false` sends on the unreliable channel (inputs, positions): never replayed. @default true */
  reliable?: boolean;
}

/** The room the client is in. */
export interface ClientRoom<C extends MessageDefinitions, S extends MessageDefinitions>
  extends Subscribable<ClientRoomEvents<S>> {
  readonly id: string;
  readonly name: string;
  /** What the room published when the client joined. */
  readonly metadata: unknown;
  /** `joined` until the client leaves or is removed. */
  readonly state: 'joined' | 'left';
  /** The replicated entities (with `replication` in the room options), else null. */
  readonly replica: Replica | null;
  /** The replica's connection (acks, owned-field changes, rpc), else null. */
  readonly replication: ReplicaConnection | null;
  /**
   * Validates and sends a message (VALIDATION_FAILED names the field; INVALID_STATE after
   * leaving; NOT_FOUND without a client registry). Returns false when an unreliable message
   * was dropped (no connection or a full send buffer).
   */
  send<K extends keyof C & string>(
    type: K,
    value: MessageInput<C[K]>,
    options?: SendOptions,
  ): boolean;
  /** Calls `handler` for each message of one type; returns the unsubscribe function. */
  onMessage<K extends keyof S & string>(
    type: K,
    handler: (value: Extract<Message<S>, { type: K }>['value']) => void,
  ): () => void;
  /** Leaves the room; resolves once the server confirms (or the room is already left). */
  leave(): Promise<void>;
}

/** Room messages kept while the room has no `message` listener. */
const MAX_HELD_MESSAGES = 256;

/** What the client engine drives in a room it created. */
export interface RoomHandle {
  receive(frame: Uint8Array, channel: Channel): void;
  left(code: number, reason: string): void;
  error(error: TickwireError): void;
}

export function createClientRoom<C extends MessageDefinitions, S extends MessageDefinitions>(
  joined: RoomJoinedFrame,
  link: SessionLink,
  options: ClientRoomOptions<C, S>,
  replica: Replica | null,
  requestTimeoutMs: number,
  time: TimeSource,
): { room: ClientRoom<C, S>; handle: RoomHandle } {
  const emitter = new Emitter<ClientRoomEvents<S>>();
  let state: 'joined' | 'left' = 'joined';
  const waitingLeave: (() => void)[] = [];
  // Before any frame behind RoomJoined is read: the first snapshot may be the very next one.
  const replication = replica === null ? null : connectReplica(replica, link, options.replication);

  // Messages that arrive before the first listener (a room greets in onJoin, and the frame is
  // behind RoomJoined, before `await join()` returns) are held and delivered right after the
  // first `message` listener or `onMessage` handler is added.
  let held: Message<S>[] | null = [];
  let releasing = false;
  const events = subscribable(emitter);
  const release = (): void => {
    const queued = held;
    if (queued === null || releasing) return;
    if (queued.length === 0) {
      held = null;
      return;
    }
    // Messages arriving until the microtask runs join the queue, behind the held ones.
    releasing = true;
    queueMicrotask(() => {
      held = null;
      for (const message of queued) emitter.emit('message', message);
    });
  };

  /** An error about this room. */
  const roomError = (code: ErrorCode, problem: string): TickwireError =>
    new TickwireError(code, `room ${joined.name}: ${problem}`);

  const handle: RoomHandle = {
    receive(frame, _channel) {
      const registry = options.messages?.server;
      if (state !== 'joined') return;
      if (registry === undefined) {
        emitter.emit(
          'error',
          roomError(ErrorCode.NOT_FOUND, 'a message arrived but no messages.server was given'),
        );
        return;
      }
      let message: Message<S>;
      try {
        message = registry.decode(frame.subarray(FRAME_HEADER_BYTES));
      } catch (error) {
        emitter.emit('error', toTickwireError(error, ErrorCode.DECODE_FAILED, 'bad room message'));
        return;
      }
      if (held !== null) {
        // Nobody listens yet (the join promise has not resumed its caller): keep it.
        if (held.length < MAX_HELD_MESSAGES) held.push(message);
        else
          emitter.emit(
            'error',
            roomError(
              ErrorCode.LIMIT_EXCEEDED,
              `${MAX_HELD_MESSAGES} messages arrived before any listener; dropped one`,
            ),
          );
        return;
      }
      emitter.emit('message', message);
    },
    left(code, reason) {
      if (state === 'left') return;
      state = 'left';
      replication?.close();
      emitter.emit('leave', code, reason);
      for (const resolve of waitingLeave.splice(0)) resolve();
    },
    error(error) {
      emitter.emit('error', error);
    },
  };

  const room: ClientRoom<C, S> = {
    ...events,
    on(event, listener) {
      const off = events.on(event, listener);
      if (event === 'message') release();
      return off;
    },
    once(event, listener) {
      const off = events.once(event, listener);
      if (event === 'message') release();
      return off;
    },
    id: joined.roomId,
    name: joined.name,
    metadata: joined.metadata,
    get state() {
      return state;
    },
    replica,
    replication,
    send(type, value, sendOptions = {}) {
      if (state !== 'joined') throw roomError(ErrorCode.INVALID_STATE, 'already left');
      const registry = options.messages?.client;
      if (registry === undefined)
        throw roomError(ErrorCode.NOT_FOUND, 'pass messages.client to send messages');
      const frame = encodeRoomMessage(registry.encode(type, value));
      return link.send(frame, sendOptions.reliable === false ? 'unreliable' : 'reliable');
    },
    onMessage(type, handler) {
      return room.on('message', (message) => {
        if (message.type === type) handler(message.value as never);
      });
    },
    leave() {
      if (state === 'left') return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = time.setTimeout(() => {
          // Forgotten, so that a later leave() sends LeaveRoom again.
          waitingLeave.splice(waitingLeave.indexOf(done), 1);
          reject(
            roomError(ErrorCode.TIMEOUT, `no answer to leaving within ${requestTimeoutMs} ms`),
          );
        }, requestTimeoutMs);
        const done = () => {
          timer.cancel();
          resolve();
        };
        waitingLeave.push(done);
        if (waitingLeave.length === 1) {
          try {
            link.send(encodeLeaveRoom(), 'reliable');
          } catch {
            // The link is closed: the room is left with it.
            handle.left(1000, 'left');
          }
        }
      });
    },
  };
  return { room, handle };
}
