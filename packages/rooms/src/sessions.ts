import { randomBytes } from 'node:crypto';
import {
  Emitter,
  ErrorCode,
  type Logger,
  type Store,
  type Subscribable,
  silentLogger,
  subscribable,
  systemTime,
  TickwireError,
  type Timer,
  type TimeSource,
} from '@tickwire/core';
import { createMemoryStore } from '@tickwire/core/memory';
import type { TokenSigner } from './tokens.js';

/** A session as stored: who it is, which token generation is current, where it is. */
export interface SessionRecord {
  /** Session id, unguessable (128 random bits by default). */
  readonly id: string;
  /** User id given at creation. */
  readonly userId?: string;
  /** What the auth hook returned at creation (JSON). */
  readonly auth?: unknown;
  /** Token generation; only a token of this generation resumes the session. */
  readonly gen: number;
  /** Creation time, wall-clock ms since the Unix epoch (the signer's clock). */
  readonly createdAt: number;
  /** The room the session is in, as recorded with `update`. */
  readonly roomId?: string;
  /** Free JSON data of the game. */
  readonly data?: unknown;
}

/** A session and the reconnect token that resumes it next time. */
export interface SessionGrant {
  session: SessionRecord;
  /** The only token that resumes the session; every earlier one is now refused as replayed. */
  token: string;
}

/** What `create` takes. */
export interface CreateSessionInput {
  userId?: string;
  /** JSON-serialisable auth result kept with the session. */
  auth?: unknown;
}

/** What `update` changes; a key given as `undefined` or `null` removes the field. */
export interface SessionPatch {
  roomId?: string | null;
  data?: unknown;
}

/** Why `resume` refused a token (`details.reason` of the UNAUTHORIZED error). */
export type SessionRejection = 'malformed' | 'signature' | 'expired' | 'revoked' | 'replayed';

/** Events of a {@link SessionRegistry}. */
export interface SessionRegistryEvents {
  [event: string]: unknown[];
  /** The grace period of a detached session ran out; its record is deleted. */
  expired: [sessionId: string];
  /**
   * The grace period of a detached session ran out, but the session had been resumed by another
   * process sharing the store: the record stays, and this process should let its copy go.
   */
  moved: [sessionId: string];
  /** `revoke` ended the session. */
  revoked: [sessionId: string];
}

/** Options of {@link createSessionRegistry}. */
export interface SessionRegistryOptions {
  /** Signs and verifies the reconnect tokens. */
  signer: TokenSigner;
  /** Where records live (JSON values). @default createMemoryStore({ clock: time }) */
  store?: Store;
  /** How long a detached session waits for its client before it expires. @default 30000 */
  graceMs?: number;
  /** Lifetime of a token and of the record's TTL, refreshed at every resume. @default 86400000 (24 h) */
  tokenTtlMs?: number;
  /** Clock and scheduler of the grace timers. @default systemTime */
  time?: TimeSource;
  /** Prefix of the store keys. @default 'tickwire:session:' */
  keyPrefix?: string;
  /** Makes session ids and token ids. @default 16 random bytes (node:crypto), base64url */
  generateId?: () => string;
  /** Where store failures of grace timers are reported. @default silentLogger */
  logger?: Logger;
}

/** Sessions that survive reconnects: signed rotating tokens, a grace period, revocation. */
export interface SessionRegistry extends Subscribable<SessionRegistryEvents> {
  /** The configured grace period in ms. */
  readonly graceMs: number;
  /** Starts a session (generation 0) and returns its first token. */
  create(input?: CreateSessionInput): Promise<SessionGrant>;
  /**
   * Resumes the session of `token` and rotates its token: UNAUTHORIZED with `details.reason`
   * 'malformed', 'signature', 'expired' (token or session), 'revoked' or 'replayed' (an older
   * token, or the loser of two concurrent resumes with one token: a resume whose read-modify-write
   * overlaps another's that wins). The previous token works once more while the newest is
   * unconfirmed (see `confirm`), but not twice in a row. Cancels the grace timer like `attached`.
   */
  resume(token: string): Promise<SessionGrant>;
  /**
   * The client proved it holds the token of generation `gen` (it spoke on the connection the
   * token was sent on). Until then the previous token also resumes the session, so a client whose
   * Welcome was lost with its connection is not locked out; after it, only the newest works.
   */
  confirm(sessionId: string, gen: number): Promise<void>;
  /** Ends the session for good: later resumes fail with 'revoked'. No-op for an unknown session. */
  revoke(sessionId: string): Promise<void>;
  /** The client went away: starts the grace timer (kept if one is already running). */
  detached(sessionId: string): void;
  /** The client is back: cancels the grace timer. */
  attached(sessionId: string): void;
  /** The live record, or null if it does not exist, expired or was revoked. */
  get(sessionId: string): Promise<SessionRecord | null>;
  /** Changes `roomId` / `data`; NOT_FOUND if the session is gone. */
  update(sessionId: string, patch: SessionPatch): Promise<SessionRecord>;
  /** Cancels every grace timer; the records stay in the store (a restart loses no session). */
  close(): void;
}

interface StoredSession {
  id: string;
  userId?: string;
  auth?: unknown;
  gen: number;
  /** The newest generation whose token the client is known to hold (see `confirm`). */
  confirmed?: number;
  /** The current generation was issued for the previous token (see `resume`). */
  retried?: true;
  createdAt: number;
  roomId?: string;
  data?: unknown;
  revoked?: true;
}

interface GraceTimer {
  timer: Timer;
  cancelled: boolean;
}

const MAX_WRITE_ATTEMPTS = 8;
/** How long a revoked record is kept (at least the grace period). */
const REVOKED_TTL_MS = 60_000;

function invalid(message: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message);
}

function checkId(sessionId: string): void {
  if (typeof sessionId !== 'string' || sessionId.length === 0) {
    throw invalid('sessionId must be a non-empty string');
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw invalid(`${name} must be a finite number >= 0, got ${value}`);
  }
  return value;
}

function toJson(what: string, value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${what} must be JSON-serialisable: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

function publicRecord(stored: StoredSession): SessionRecord {
  const { revoked: _revoked, confirmed: _confirmed, retried: _retried, ...record } = stored;
  return record;
}

/** Creates a {@link SessionRegistry} over a {@link Store}. */
export function createSessionRegistry(options: SessionRegistryOptions): SessionRegistry {
  const signer = options?.signer;
  if (typeof signer?.sign !== 'function' || typeof signer.verify !== 'function') {
    throw invalid('createSessionRegistry: signer must be a TokenSigner (createTokenSigner)');
  }
  const time = options.time ?? systemTime;
  const store = options.store ?? createMemoryStore({ clock: time });
  const graceMs = nonNegative('graceMs', options.graceMs ?? 30_000);
  const tokenTtlMs = options.tokenTtlMs ?? 86_400_000;
  if (!Number.isFinite(tokenTtlMs) || tokenTtlMs <= 0) {
    throw invalid(`tokenTtlMs must be a finite number > 0, got ${tokenTtlMs}`);
  }
  const keyPrefix = options.keyPrefix ?? 'tickwire:session:';
  const generateId = options.generateId ?? (() => randomBytes(16).toString('base64url'));
  const logger = options.logger ?? silentLogger;
  const events = new Emitter<SessionRegistryEvents>({
    onListenerError: (error, event) =>
      logger.error({ err: error, event }, 'session registry listener threw'),
  });
  const graceTimers = new Map<string, GraceTimer>();

  const keyOf = (sessionId: string): string => keyPrefix + sessionId;

  const parse = (sessionId: string, raw: string | Uint8Array): StoredSession => {
    let value: unknown;
    try {
      value = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw));
    } catch {
      value = undefined;
    }
    const record = value as StoredSession | undefined;
    if (
      typeof record !== 'object' ||
      record === null ||
      record.id !== sessionId ||
      !Number.isSafeInteger(record.gen)
    ) {
      throw new TickwireError(
        ErrorCode.INTERNAL,
        `session record '${keyOf(sessionId)}' in the store is corrupt`,
      );
    }
    return record;
  };

  const read = async (
    sessionId: string,
  ): Promise<{ raw: string | Uint8Array; record: StoredSession } | null> => {
    const raw = await store.get(keyOf(sessionId));
    return raw === null ? null : { raw, record: parse(sessionId, raw) };
  };

  const issue = (record: StoredSession): string =>
    signer.sign({
      sid: record.id,
      ...(record.userId === undefined ? {} : { uid: record.userId }),
      exp: signer.now() + tokenTtlMs,
      jti: generateId(),
      gen: record.gen,
    });

  const cancelGrace = (sessionId: string): void => {
    const grace = graceTimers.get(sessionId);
    if (!grace) return;
    grace.cancelled = true;
    grace.timer.cancel();
    graceTimers.delete(sessionId);
  };

  const rejected = (reason: SessionRejection, sessionId: string, message: string) =>
    new TickwireError(ErrorCode.UNAUTHORIZED, message, { details: { reason, sessionId } });

  // Deletes the record unless the session was resumed (here or on another process) meanwhile.
  const expire = async (
    sessionId: string,
    grace: GraceTimer,
    genAtDetach: Promise<number | null>,
  ): Promise<void> => {
    const detachedGen = await genAtDetach;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await read(sessionId);
      if (grace.cancelled) return;
      if (current !== null) {
        if (detachedGen !== null && current.record.gen !== detachedGen) {
          logger.info({ sessionId }, 'session resumed elsewhere during its grace period');
          graceTimers.delete(sessionId);
          events.emit('moved', sessionId);
          return;
        }
        if (!(await store.compareAndSet(keyOf(sessionId), current.raw, null))) continue;
      }
      if (grace.cancelled) return;
      graceTimers.delete(sessionId);
      events.emit('expired', sessionId);
      return;
    }
    throw new TickwireError(
      ErrorCode.CONFLICT,
      `session ${sessionId}: record kept changing while expiring`,
    );
  };

  // Read-modify-write with compare-and-set; `change` returns null to leave the record alone.
  const modify = async (
    sessionId: string,
    change: (record: StoredSession) => StoredSession | null,
    ttlMs = tokenTtlMs,
  ): Promise<StoredSession | null> => {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await read(sessionId);
      if (current === null) return null;
      const next = change(current.record);
      if (next === null) return current.record;
      const written = await store.compareAndSet(
        keyOf(sessionId),
        current.raw,
        toJson(`session ${sessionId}`, next),
        { ttlMs },
      );
      if (written) return next;
    }
    throw new TickwireError(
      ErrorCode.CONFLICT,
      `session ${sessionId} changed ${MAX_WRITE_ATTEMPTS} times during one update; retry`,
      { details: { sessionId } },
    );
  };

  return {
    ...subscribable(events),
    graceMs,
    async create(input = {}) {
      if (input.userId !== undefined && typeof input.userId !== 'string') {
        throw invalid('create: userId must be a string');
      }
      const base = {
        ...(input.userId === undefined ? {} : { userId: input.userId }),
        ...(input.auth === undefined ? {} : { auth: input.auth }),
        gen: 0,
        createdAt: signer.now(),
      };
      for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
        const record: StoredSession = { id: generateId(), ...base };
        checkId(record.id);
        const json = toJson('create: auth', record);
        if (await store.compareAndSet(keyOf(record.id), null, json, { ttlMs: tokenTtlMs })) {
          return { session: publicRecord(record), token: issue(record) };
        }
      }
      throw new TickwireError(
        ErrorCode.CONFLICT,
        `create: ${MAX_WRITE_ATTEMPTS} generated session ids were all taken; is generateId random?`,
      );
    },
    async resume(token) {
      const payload = signer.verify(token);
      const sessionId = payload.sid;
      // The generation seen by the first read: if another resume bumps it before our write
      // lands, that resume used the same token concurrently and wins; this one is refused.
      let seenGen: number | undefined;
      const next = await modify(sessionId, (record) => {
        if (record.revoked) {
          throw rejected('revoked', sessionId, `session ${sessionId} was revoked`);
        }
        seenGen ??= record.gen;
        if (record.gen !== seenGen) {
          throw rejected(
            'replayed',
            sessionId,
            `token of generation ${payload.gen} for session ${sessionId} was used by a concurrent resume`,
          );
        }
        // The previous token still works while the newest was never confirmed: the Welcome
        // that carried it may have been lost with the connection. Only once in a row: if the
        // newest generation was itself issued for a previous token, two holders are alternating.
        const unconfirmedPrevious =
          payload.gen === record.gen - 1 &&
          (record.confirmed ?? -1) < record.gen &&
          record.retried !== true;
        if (record.gen !== payload.gen && !unconfirmedPrevious) {
          throw rejected(
            'replayed',
            sessionId,
            `token of generation ${payload.gen} for session ${sessionId} was already used (current generation ${record.gen}): replayed or resumed twice`,
          );
        }
        const { retried: _retried, ...rest } = record;
        return unconfirmedPrevious
          ? { ...rest, gen: record.gen + 1, retried: true }
          : { ...rest, gen: record.gen + 1 };
      });
      if (next === null) {
        throw rejected(
          'expired',
          sessionId,
          `session ${sessionId} expired or does not exist; start a new session`,
        );
      }
      cancelGrace(sessionId);
      return { session: publicRecord(next), token: issue(next) };
    },
    async confirm(sessionId, gen) {
      checkId(sessionId);
      await modify(sessionId, (record) => {
        if (record.revoked || gen !== record.gen || (record.confirmed ?? -1) >= gen) return null;
        return { ...record, confirmed: gen };
      });
    },
    async revoke(sessionId) {
      checkId(sessionId);
      cancelGrace(sessionId);
      let changed = false;
      // A revoked record only answers 'revoked' for a while (then 'expired', which means the
      // same to a client): sessions churned by a hostile client do not pile up for a day.
      await modify(
        sessionId,
        (record) => {
          if (record.revoked) return null;
          changed = true;
          return { ...record, revoked: true };
        },
        Math.min(tokenTtlMs, Math.max(graceMs, REVOKED_TTL_MS)),
      );
      if (changed) events.emit('revoked', sessionId);
    },
    detached(sessionId) {
      checkId(sessionId);
      if (graceTimers.has(sessionId)) return;
      const genAtDetach = read(sessionId).then(
        (current) => current?.record.gen ?? null,
        () => null,
      );
      const grace: GraceTimer = { timer: { cancel() {} }, cancelled: false };
      grace.timer = time.setTimeout(() => {
        expire(sessionId, grace, genAtDetach).catch((error: unknown) => {
          graceTimers.delete(sessionId);
          logger.warn({ err: error, sessionId }, 'could not expire session');
        });
      }, graceMs);
      graceTimers.set(sessionId, grace);
    },
    attached(sessionId) {
      checkId(sessionId);
      cancelGrace(sessionId);
    },
    async get(sessionId) {
      checkId(sessionId);
      const current = await read(sessionId);
      return current === null || current.record.revoked ? null : publicRecord(current.record);
    },
    async update(sessionId, patch) {
      checkId(sessionId);
      if (typeof patch !== 'object' || patch === null) {
        throw invalid('update: patch must be an object');
      }
      if ('roomId' in patch && patch.roomId != null && typeof patch.roomId !== 'string') {
        throw invalid('update: roomId must be a string, null or undefined');
      }
      const next = await modify(sessionId, (record) => {
        if (record.revoked) return null;
        const updated: StoredSession = { ...record };
        if ('roomId' in patch) {
          if (patch.roomId == null) delete updated.roomId;
          else updated.roomId = patch.roomId;
        }
        if ('data' in patch) {
          if (patch.data == null) delete updated.data;
          else updated.data = patch.data;
        }
        return updated;
      });
      if (next === null || next.revoked) {
        throw new TickwireError(
          ErrorCode.NOT_FOUND,
          `session ${sessionId} expired, was revoked or does not exist`,
          { details: { sessionId } },
        );
      }
      return publicRecord(next);
    },
    close() {
      for (const sessionId of [...graceTimers.keys()]) cancelGrace(sessionId);
    },
  };
}
