import {
  Channel,
  type Clock,
  Emitter,
  ErrorCode,
  isTickwireError,
  type Listener,
  type Subscribable,
  subscribable,
  TickwireError,
} from '@tickwire/core';
import {
  BinaryReader,
  BinaryWriter,
  fnv1a32,
  formatPath,
  isSchema,
  type PathSegment,
  type Schema,
  type Type,
} from '@tickwire/serialization';
import type { ClientId } from './server.js';

/** Who may send an rpc: the server to clients, clients to the server, or both ways. */
export type RpcDirection = 'toClient' | 'toServer' | 'both';

/** A token bucket: `burst` calls at once, refilled at `perSecond` calls per second. */
export interface RpcRateLimit {
  /** Sustained rate in calls per second (> 0). */
  readonly perSecond: number;
  /** Bucket capacity: calls allowed back to back after a quiet period (an integer >= 1). */
  readonly burst: number;
}

/** Options of {@link defineRpc}. */
export interface RpcOptions {
  /** Send on the reliable channel (ordered, never lost) rather than the unreliable one. @default true */
  reliable?: boolean;
  /** Who may send it. @default 'both' */
  direction?: RpcDirection;
  /** Per client and per rpc limit on client → server calls, enforced by the server. @default none */
  rateLimit?: RpcRateLimit;
}

/** A named remote call with a typed, schema-validated argument. Made by {@link defineRpc}. */
export interface Rpc<N extends string = string, T = unknown> {
  /** Unique within a registry. */
  readonly name: N;
  /** The argument's field type. */
  readonly type: Type<T>;
  /** True when it travels on the reliable channel. */
  readonly reliable: boolean;
  /** Who may send it. */
  readonly direction: RpcDirection;
  /** Limit on client → server calls, per client; undefined for none. */
  readonly rateLimit?: RpcRateLimit | undefined;
}

/** The rpcs two peers share, and their wire format `[varuint rpc index][bit-packed argument]`. */
export interface RpcRegistry {
  /** The rpcs, in wire-index order. */
  readonly rpcs: readonly Rpc[];
  /** Hash of every index, name, direction, channel and argument layout, for a handshake check. */
  readonly fingerprint: number;
  /**
   * Validates and encodes a call into a fresh array. Throws INVALID_ARGUMENT for an rpc not in
   * the registry, VALIDATION_FAILED (with `details.path`) for invalid `args`, MESSAGE_TOO_LARGE
   * above 16 MiB.
   */
  encode<T>(rpc: Rpc<string, T>, args: T): Uint8Array;
  /**
   * Decodes one call. Throws only `TickwireError`s: DECODE_FAILED for anything that is not a
   * well-formed call (unknown index, truncated, trailing bytes), VALIDATION_FAILED for an
   * out-of-bounds argument.
   */
  decode(bytes: Uint8Array): { rpc: Rpc; args: unknown };
  /** The rpc a message is for, reading only its index; throws DECODE_FAILED like `decode`. */
  peek(bytes: Uint8Array): Rpc;
}

/** Counts of refused incoming messages, by reason. */
export interface RpcRejections {
  /** Malformed bytes or an unknown rpc index (DECODE_FAILED). */
  readonly decode: number;
  /** Well-formed but out of bounds arguments (VALIDATION_FAILED). */
  readonly validation: number;
  /** An rpc sent in a direction it does not allow (FORBIDDEN). */
  readonly forbidden: number;
  /** Calls over their rate limit (RATE_LIMITED); always 0 on a client. */
  readonly rate: number;
}

/** Live counters of an rpc endpoint. */
export interface RpcStats {
  /** Every message passed to `receive`. */
  readonly received: number;
  /** Messages accepted and dispatched to the handlers (`received` = `handled` + all rejections). */
  readonly handled: number;
  /** Messages handed to the send callback (one per recipient). */
  readonly sent: number;
  /** Handler or broadcast send callbacks that threw (reported on the `error` event). */
  readonly errors: number;
  /** Refused incoming messages, by reason. */
  readonly rejected: RpcRejections;
}

/** Handles an rpc received by the server. */
export type RpcServerHandler<T> = (clientId: ClientId, args: T) => void;

/** Handles an rpc received by a client. */
export type RpcClientHandler<T> = (args: T) => void;

/** Events of an {@link RpcServer}. */
export type RpcServerEvents = {
  /** A message was refused (DECODE_FAILED, VALIDATION_FAILED, FORBIDDEN or RATE_LIMITED; `details.rpc` names the rpc when known). */
  rejected: [clientId: ClientId, error: TickwireError];
  /**
   * A handler threw, or a send callback threw during `toAll`/`toObservers`: an INTERNAL error
   * with the thrown value as `cause`. Without a listener it is rethrown in a microtask.
   */
  error: [clientId: ClientId, error: TickwireError, rpc: Rpc];
};

/** Events of an {@link RpcClient}. */
export type RpcClientEvents = {
  /** A message was refused (DECODE_FAILED, VALIDATION_FAILED or FORBIDDEN). */
  rejected: [error: TickwireError];
  /** A handler threw: an INTERNAL error with the thrown value as `cause`. Without a listener it is rethrown in a microtask. */
  error: [error: TickwireError, rpc: Rpc];
};

/** Options of {@link createRpcServer}. */
export interface RpcServerOptions {
  /** The rpcs shared with the clients. */
  registry: RpcRegistry;
  /** Time for the rate limits. */
  clock: Clock;
  /** Sends one encoded message to one client. The bytes may be shared between recipients. */
  send(clientId: ClientId, bytes: Uint8Array, channel: Channel): void;
  /** The clients `toAll` sends to. */
  clients(): Iterable<ClientId>;
  /** The clients observing an entity, for `toObservers` (from the interest management). */
  observers?(entityId: number): Iterable<ClientId>;
}

/** The server end of rpcs: validated, rate-limited receipt and typed sends. */
export interface RpcServer extends Subscribable<RpcServerEvents> {
  /** Adds an event listener; returns a function that removes it. */
  on<E extends keyof RpcServerEvents & string>(
    event: E,
    listener: Listener<RpcServerEvents, E>,
  ): () => void;
  /**
   * Adds a handler of `rpc`; returns a function that removes it. Throws INVALID_ARGUMENT for an
   * rpc not in the registry, FORBIDDEN for a `toClient` rpc (the server never receives it).
   */
  on<T>(rpc: Rpc<string, T>, handler: RpcServerHandler<T>): () => void;
  /**
   * Handles one message from a client. Never throws: a malformed message, an unknown rpc, a
   * `toClient` rpc or a call over its rate limit returns false, is counted in
   * `stats.rejected` and emitted as `rejected`. A throwing handler is reported on `error` and
   * the other handlers still run.
   */
  receive(clientId: ClientId, bytes: Uint8Array): boolean;
  /** Sends a call to one client. Throws FORBIDDEN for a `toServer` rpc, VALIDATION_FAILED for invalid args. */
  toClient<T>(clientId: ClientId, rpc: Rpc<string, T>, args: T): void;
  /** Sends a call to every client of `options.clients()`, encoded once; returns how many it was sent to. */
  toAll<T>(rpc: Rpc<string, T>, args: T): number;
  /**
   * Sends a call to the observers of an entity, encoded once; returns how many it was sent to.
   * Throws INVALID_STATE without `options.observers`.
   */
  toObservers<T>(entityId: number, rpc: Rpc<string, T>, args: T): number;
  /** Forgets a client's rate-limit buckets. */
  removeClient(clientId: ClientId): void;
  /** Live counters. */
  readonly stats: RpcStats;
}

/** Options of {@link createRpcClient}. */
export interface RpcClientOptions {
  /** The rpcs shared with the server. */
  registry: RpcRegistry;
  /** Sends one encoded message to the server. */
  send(bytes: Uint8Array, channel: Channel): void;
}

/** The client end of rpcs: typed calls and validated receipt. */
export interface RpcClient extends Subscribable<RpcClientEvents> {
  /** Adds an event listener; returns a function that removes it. */
  on<E extends keyof RpcClientEvents & string>(
    event: E,
    listener: Listener<RpcClientEvents, E>,
  ): () => void;
  /**
   * Adds a handler of `rpc`; returns a function that removes it. Throws INVALID_ARGUMENT for an
   * rpc not in the registry, FORBIDDEN for a `toServer` rpc (a client never receives it).
   */
  on<T>(rpc: Rpc<string, T>, handler: RpcClientHandler<T>): () => void;
  /** Calls the server. Throws FORBIDDEN for a `toClient` rpc, VALIDATION_FAILED for invalid args. */
  call<T>(rpc: Rpc<string, T>, args: T): void;
  /** Handles one message from the server. Never throws; see {@link RpcServer.receive}. */
  receive(bytes: Uint8Array): boolean;
  /** Live counters (`rejected.rate` stays 0). */
  readonly stats: RpcStats;
}

const DIRECTIONS: readonly string[] = ['toClient', 'toServer', 'both'];

function invalidArgument(message: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isType(value: unknown): value is Type<unknown> {
  return (
    isObject(value) &&
    typeof value.signature === 'string' &&
    typeof value.write === 'function' &&
    typeof value.read === 'function'
  );
}

// Throws INVALID_ARGUMENT unless `rpc` has the shape and option values defineRpc produces.
function checkRpc(rpc: unknown, where: string): asserts rpc is Rpc {
  if (!isObject(rpc)) throw invalidArgument(`${where}: expected an rpc from defineRpc`);
  const { name, type, reliable, direction, rateLimit } = rpc;
  if (typeof name !== 'string' || name === '')
    throw invalidArgument(`${where}: the name must be a non-empty string`);
  const label = `${where}: rpc '${name}'`;
  if (!isType(type)) throw invalidArgument(`${label}: expected a field type (t.*) or a schema`);
  if (typeof reliable !== 'boolean') throw invalidArgument(`${label}: reliable must be a boolean`);
  if (typeof direction !== 'string' || !DIRECTIONS.includes(direction))
    throw invalidArgument(
      `${label}: direction must be 'toClient', 'toServer' or 'both', got ${String(direction)}`,
    );
  if (rateLimit === undefined) return;
  if (!isObject(rateLimit)) throw invalidArgument(`${label}: rateLimit must be an object`);
  const { perSecond, burst } = rateLimit;
  if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0)
    throw invalidArgument(
      `${label}: rateLimit.perSecond must be a finite number > 0, got ${String(perSecond)}`,
    );
  if (typeof burst !== 'number' || !Number.isSafeInteger(burst) || burst < 1)
    throw invalidArgument(
      `${label}: rateLimit.burst must be an integer >= 1, got ${String(burst)}`,
    );
  if (direction === 'toClient')
    throw invalidArgument(`${label}: rateLimit limits client calls but the rpc is toClient`);
}

/**
 * Defines an rpc whose argument is a field type (`t.object({...})`) or a `defineSchema` schema
 * (its `.type` is used). Throws INVALID_ARGUMENT for an empty name, a non-type argument or an
 * invalid option (a rate limit on a `toClient` rpc included).
 */
export function defineRpc<N extends string, T>(
  name: N,
  type: Type<T> | Schema<T>,
  options: RpcOptions = {},
): Rpc<N, T> {
  if (!isObject(options)) throw invalidArgument(`defineRpc: options must be an object`);
  const rateLimit = options.rateLimit;
  const rpc = {
    name,
    type: (isSchema(type) ? type.type : type) as Type<T>,
    reliable: options.reliable ?? true,
    direction: options.direction ?? 'both',
    rateLimit: isObject(rateLimit)
      ? Object.freeze({ perSecond: rateLimit.perSecond, burst: rateLimit.burst })
      : rateLimit,
  };
  checkRpc(rpc, 'defineRpc');
  return Object.freeze(rpc);
}

interface FieldErrorLike {
  readonly code: typeof ErrorCode.DECODE_FAILED | typeof ErrorCode.VALIDATION_FAILED;
  readonly reason: string;
  readonly path: readonly PathSegment[];
}

// serialization's FieldError (not exported): the codec's cheap, path-collecting error.
function isFieldError(error: unknown): error is FieldErrorLike {
  return (
    isObject(error) &&
    typeof error.reason === 'string' &&
    Array.isArray(error.path) &&
    (error.code === ErrorCode.DECODE_FAILED || error.code === ErrorCode.VALIDATION_FAILED)
  );
}

/**
 * Converts what the codec threw into a `TickwireError` naming the rpc and the field path. When
 * decoding, only DECODE_FAILED and VALIDATION_FAILED come out.
 */
function codecError(error: unknown, decoding: boolean, rpc?: string): TickwireError {
  const prefix = rpc === undefined ? 'rpc' : `rpc '${rpc}'`;
  const context = rpc === undefined ? {} : { rpc };
  if (isFieldError(error)) {
    return new TickwireError(error.code, `${prefix}: ${formatPath(error.path)}: ${error.reason}`, {
      details: { ...context, path: [...error.path], reason: error.reason },
    });
  }
  if (
    isTickwireError(error) &&
    (!decoding ||
      error.code === ErrorCode.DECODE_FAILED ||
      error.code === ErrorCode.VALIDATION_FAILED)
  )
    return error;
  const text = error instanceof Error ? error.message : String(error);
  return new TickwireError(
    decoding ? ErrorCode.DECODE_FAILED : ErrorCode.VALIDATION_FAILED,
    `${prefix}: ${text}`,
    { cause: error, details: context },
  );
}

/**
 * A registry of rpcs; the index of each rpc in `rpcs` is its wire id, so both peers must list
 * the same rpcs in the same order (compare `fingerprint`). Throws INVALID_ARGUMENT for a
 * duplicate name or anything that is not an rpc.
 */
export function createRpcRegistry(rpcs: readonly Rpc[]): RpcRegistry {
  if (!Array.isArray(rpcs)) throw invalidArgument('createRpcRegistry: expected an array of rpcs');
  const list: readonly Rpc[] = Object.freeze([...rpcs]);
  const indexes = new Map<Rpc, number>();
  const names = new Set<string>();
  const signature: string[] = [];
  list.forEach((rpc, index) => {
    checkRpc(rpc, `createRpcRegistry: rpcs[${index}]`);
    if (names.has(rpc.name))
      throw invalidArgument(`createRpcRegistry: rpc name '${rpc.name}' is used twice`);
    names.add(rpc.name);
    indexes.set(rpc, index);
    signature.push(
      `${index}:${JSON.stringify(rpc.name)}:${rpc.direction}:${rpc.reliable ? 'reliable' : 'unreliable'}:${rpc.type.signature}`,
    );
  });
  const writer = new BinaryWriter();
  const reader = new BinaryReader();

  // Resets the reader on `bytes` and reads the rpc index.
  const head = (bytes: unknown): Rpc => {
    if (!(bytes instanceof Uint8Array))
      throw new TickwireError(ErrorCode.DECODE_FAILED, `rpc: expected a Uint8Array`);
    reader.reset(bytes);
    let index: number;
    try {
      index = reader.readVarUint();
    } catch (error) {
      throw codecError(error, true);
    }
    const rpc = list[index];
    if (rpc === undefined)
      throw new TickwireError(ErrorCode.DECODE_FAILED, `rpc: unknown rpc index ${index}`, {
        details: { index },
      });
    return rpc;
  };

  return {
    rpcs: list,
    fingerprint: fnv1a32(signature.join(';')),
    encode(rpc, args) {
      const index = indexes.get(rpc);
      if (index === undefined)
        throw invalidArgument(
          `rpc '${isObject(rpc) ? String(rpc.name) : String(rpc)}' is not in this registry`,
        );
      writer.reset();
      writer.writeVarUint(index);
      try {
        rpc.type.write(writer, args);
        return writer.toBytes();
      } catch (error) {
        throw codecError(error, false, rpc.name);
      }
    },
    decode(bytes) {
      const rpc = head(bytes);
      try {
        const args = rpc.type.read(reader);
        reader.end();
        return { rpc, args };
      } catch (error) {
        throw codecError(error, true, rpc.name);
      }
    },
    peek: head,
  };
}

function forbidden(rpc: Rpc, message: string): TickwireError {
  return new TickwireError(ErrorCode.FORBIDDEN, `rpc '${rpc.name}': ${message}`, {
    details: { rpc: rpc.name },
  });
}

function handlerError(rpc: Rpc, error: unknown, what: string): TickwireError {
  const text = error instanceof Error ? error.message : String(error);
  return new TickwireError(ErrorCode.INTERNAL, `rpc '${rpc.name}': ${what} threw: ${text}`, {
    cause: error,
    details: { rpc: rpc.name },
  });
}

const rethrowLater = (error: unknown): void => {
  queueMicrotask(() => {
    throw error;
  });
};

interface MutableStats {
  received: number;
  handled: number;
  sent: number;
  errors: number;
  rejected: { decode: number; validation: number; forbidden: number; rate: number };
}

function createStats(): MutableStats {
  return {
    received: 0,
    handled: 0,
    sent: 0,
    errors: 0,
    rejected: { decode: 0, validation: 0, forbidden: 0, rate: 0 },
  };
}

// Counts a refusal under its code.
function countRejection(stats: MutableStats, error: TickwireError): void {
  switch (error.code) {
    case ErrorCode.VALIDATION_FAILED:
      stats.rejected.validation++;
      break;
    case ErrorCode.FORBIDDEN:
      stats.rejected.forbidden++;
      break;
    case ErrorCode.RATE_LIMITED:
      stats.rejected.rate++;
      break;
    default:
      stats.rejected.decode++;
  }
}

type AnyHandler = (...args: never[]) => void;

/** Handlers per rpc, copied on write so a dispatch in progress is not disturbed. */
class HandlerTable<H extends AnyHandler> {
  readonly #handlers = new Map<Rpc, readonly H[]>();

  add(rpc: Rpc, handler: H): () => void {
    this.#handlers.set(rpc, [...(this.#handlers.get(rpc) ?? []), handler]);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const next = [...this.get(rpc)];
      next.splice(next.indexOf(handler), 1);
      if (next.length === 0) this.#handlers.delete(rpc);
      else this.#handlers.set(rpc, next);
    };
  }

  get(rpc: Rpc): readonly H[] {
    return this.#handlers.get(rpc) ?? [];
  }
}

// Checks that `rpc` belongs to the registry (INVALID_ARGUMENT) before using it.
function registered(known: ReadonlySet<Rpc>, rpc: Rpc, where: string): void {
  if (!known.has(rpc))
    throw invalidArgument(
      `${where}: rpc '${isObject(rpc) ? String(rpc.name) : String(rpc)}' is not in the registry`,
    );
}

function channelOf(rpc: Rpc): Channel {
  return rpc.reliable ? Channel.Reliable : Channel.Unreliable;
}

interface Bucket {
  tokens: number;
  lastMs: number;
}

/**
 * Creates the server end of rpcs. Transport-agnostic: `options.send` delivers the bytes and the
 * caller passes what clients send to `receive`.
 */
export function createRpcServer(options: RpcServerOptions): RpcServer {
  const { registry, clock } = options;
  const known = new Set(registry.rpcs);
  const emitter = new Emitter<RpcServerEvents>();
  const handlers = new HandlerTable<RpcServerHandler<unknown>>();
  const buckets = new Map<ClientId, Map<Rpc, Bucket>>();
  const stats = createStats();

  const reject = (clientId: ClientId, error: TickwireError): false => {
    countRejection(stats, error);
    emitter.emit('rejected', clientId, error);
    return false;
  };

  const report = (clientId: ClientId, error: TickwireError, rpc: Rpc): void => {
    stats.errors++;
    if (!emitter.emit('error', clientId, error, rpc)) rethrowLater(error);
  };

  // Token bucket: starts full, refills continuously; a refused call takes no token.
  const allow = (clientId: ClientId, rpc: Rpc, limit: RpcRateLimit): boolean => {
    const now = clock.now();
    let perRpc = buckets.get(clientId);
    if (perRpc === undefined) {
      perRpc = new Map();
      buckets.set(clientId, perRpc);
    }
    let bucket = perRpc.get(rpc);
    if (bucket === undefined) {
      bucket = { tokens: limit.burst, lastMs: now };
      perRpc.set(rpc, bucket);
    }
    const elapsedMs = Math.max(0, now - bucket.lastMs);
    bucket.tokens = Math.min(limit.burst, bucket.tokens + (elapsedMs * limit.perSecond) / 1000);
    bucket.lastMs = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  };

  // Checks and encodes a server → client call once.
  const encodeOutgoing = <T>(rpc: Rpc<string, T>, args: T, where: string): Uint8Array => {
    registered(known, rpc, where);
    if (rpc.direction === 'toServer') throw forbidden(rpc, 'only clients may send it');
    return registry.encode(rpc, args);
  };

  const broadcast = (rpc: Rpc, bytes: Uint8Array, recipients: Iterable<ClientId>): number => {
    const channel = channelOf(rpc);
    let count = 0;
    for (const clientId of recipients) {
      try {
        options.send(clientId, bytes, channel);
      } catch (error) {
        report(clientId, handlerError(rpc, error, 'send'), rpc);
        continue;
      }
      stats.sent++;
      count++;
    }
    return count;
  };

  function on<E extends keyof RpcServerEvents & string>(
    event: E,
    listener: Listener<RpcServerEvents, E>,
  ): () => void;
  function on<T>(rpc: Rpc<string, T>, handler: RpcServerHandler<T>): () => void;
  function on(
    target: (keyof RpcServerEvents & string) | Rpc,
    handler: Listener<RpcServerEvents, keyof RpcServerEvents> | RpcServerHandler<unknown>,
  ): () => void {
    if (typeof target === 'string')
      return emitter.on(target, handler as Listener<RpcServerEvents, keyof RpcServerEvents>);
    registered(known, target, 'on');
    if (target.direction === 'toClient')
      throw forbidden(target, 'it is toClient: the server never receives it');
    return handlers.add(target, handler as RpcServerHandler<unknown>);
  }

  return {
    ...subscribable(emitter),
    on,
    receive(clientId, bytes) {
      stats.received++;
      let rpc: Rpc;
      try {
        rpc = registry.peek(bytes);
      } catch (error) {
        return reject(clientId, codecError(error, true));
      }
      if (rpc.direction === 'toClient')
        return reject(clientId, forbidden(rpc, 'it is toClient: clients may not send it'));
      const limit = rpc.rateLimit;
      if (limit !== undefined && !allow(clientId, rpc, limit))
        return reject(
          clientId,
          new TickwireError(
            ErrorCode.RATE_LIMITED,
            `rpc '${rpc.name}': client ${String(clientId)} is over its rate limit (${limit.perSecond}/s, burst ${limit.burst})`,
            { details: { rpc: rpc.name, perSecond: limit.perSecond, burst: limit.burst } },
          ),
        );
      let args: unknown;
      try {
        args = registry.decode(bytes).args;
      } catch (error) {
        return reject(clientId, codecError(error, true));
      }
      stats.handled++;
      for (const handler of handlers.get(rpc)) {
        try {
          handler(clientId, args);
        } catch (error) {
          report(clientId, handlerError(rpc, error, 'a handler'), rpc);
        }
      }
      return true;
    },
    toClient(clientId, rpc, args) {
      const bytes = encodeOutgoing(rpc, args, 'toClient');
      options.send(clientId, bytes, channelOf(rpc));
      stats.sent++;
    },
    toAll(rpc, args) {
      const bytes = encodeOutgoing(rpc, args, 'toAll');
      return broadcast(rpc, bytes, options.clients());
    },
    toObservers(entityId, rpc, args) {
      const observers = options.observers;
      if (observers === undefined)
        throw new TickwireError(
          ErrorCode.INVALID_STATE,
          'toObservers: the rpc server was created without an observers option',
        );
      const bytes = encodeOutgoing(rpc, args, 'toObservers');
      return broadcast(rpc, bytes, observers(entityId));
    },
    removeClient(clientId) {
      buckets.delete(clientId);
    },
    stats,
  };
}

/**
 * Creates the client end of rpcs. Transport-agnostic: `options.send` delivers the bytes and the
 * caller passes what the server sends to `receive`.
 */
export function createRpcClient(options: RpcClientOptions): RpcClient {
  const { registry } = options;
  const known = new Set(registry.rpcs);
  const emitter = new Emitter<RpcClientEvents>();
  const handlers = new HandlerTable<RpcClientHandler<unknown>>();
  const stats = createStats();

  const reject = (error: TickwireError): false => {
    countRejection(stats, error);
    emitter.emit('rejected', error);
    return false;
  };

  function on<E extends keyof RpcClientEvents & string>(
    event: E,
    listener: Listener<RpcClientEvents, E>,
  ): () => void;
  function on<T>(rpc: Rpc<string, T>, handler: RpcClientHandler<T>): () => void;
  function on(
    target: (keyof RpcClientEvents & string) | Rpc,
    handler: Listener<RpcClientEvents, keyof RpcClientEvents> | RpcClientHandler<unknown>,
  ): () => void {
    if (typeof target === 'string')
      return emitter.on(target, handler as Listener<RpcClientEvents, keyof RpcClientEvents>);
    registered(known, target, 'on');
    if (target.direction === 'toServer')
      throw forbidden(target, 'it is toServer: a client never receives it');
    return handlers.add(target, handler as RpcClientHandler<unknown>);
  }

  return {
    ...subscribable(emitter),
    on,
    call(rpc, args) {
      registered(known, rpc, 'call');
      if (rpc.direction === 'toClient') throw forbidden(rpc, 'only the server may send it');
      options.send(registry.encode(rpc, args), channelOf(rpc));
      stats.sent++;
    },
    receive(bytes) {
      stats.received++;
      let rpc: Rpc;
      let args: unknown;
      try {
        rpc = registry.peek(bytes);
        if (rpc.direction === 'toServer')
          return reject(forbidden(rpc, 'it is toServer: the server may not send it'));
        args = registry.decode(bytes).args;
      } catch (error) {
        return reject(codecError(error, true));
      }
      stats.handled++;
      for (const handler of handlers.get(rpc)) {
        try {
          handler(args);
        } catch (error) {
          stats.errors++;
          const wrapped = handlerError(rpc, error, 'a handler');
          if (!emitter.emit('error', wrapped, rpc)) rethrowLater(wrapped);
        }
      }
      return true;
    },
    stats,
  };
}
