/** Stable error codes of every error a Tickwire package lets users catch. */
export const ErrorCode = {
  /** An argument or option is out of range or of the wrong type. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The call is not allowed in the object's current state. */
  INVALID_STATE: 'INVALID_STATE',
  /** A message is larger than the configured limit. */
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  /** A send or call on a connection that is closing or closed. */
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
  /** A connection could not be established. */
  CONNECT_FAILED: 'CONNECT_FAILED',
  /** An operation did not complete in time. */
  TIMEOUT: 'TIMEOUT',
  /** Bytes that could not be decoded. */
  DECODE_FAILED: 'DECODE_FAILED',
  /** A value that does not match its schema or validator. */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** The peer broke the wire protocol. */
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
  /** A peer sent more than its rate limit allows. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A configured limit (connections, buffered bytes, queue size…) was reached. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /** Credentials are missing or invalid. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** The caller is known but not allowed to do this. */
  FORBIDDEN: 'FORBIDDEN',
  /** The named thing does not exist. */
  NOT_FOUND: 'NOT_FOUND',
  /** The operation conflicts with the current state (version, ownership…). */
  CONFLICT: 'CONFLICT',
  /** A listen address (port, name) is already taken. */
  ADDRESS_IN_USE: 'ADDRESS_IN_USE',
  /** The session is gone (its grace period ended, it was revoked): start a new one. */
  SESSION_EXPIRED: 'SESSION_EXPIRED',
  /** The adapter (store, pub/sub, transport) has been closed. */
  CLOSED: 'CLOSED',
  /** A bug or an unexpected failure inside Tickwire. */
  INTERNAL: 'INTERNAL',
} as const;

/** One of the stable {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

// A brand rather than instanceof: two copies of core can be loaded in one process.
const BRAND = Symbol.for('tickwire.error');

/** Options of a {@link TickwireError} beyond its code and message. */
export interface TickwireErrorOptions {
  /** The underlying error. */
  cause?: unknown;
  /** Structured context (field path, peer id, limit…) for logs and handlers. */
  details?: Readonly<Record<string, unknown>>;
}

/** The error every Tickwire package throws for conditions users can handle. */
export class TickwireError extends Error {
  /** Stable, machine-readable code. */
  readonly code: ErrorCode;
  /** Structured context of the failure. */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  declare readonly [BRAND]: true;

  constructor(code: ErrorCode, message: string, options: TickwireErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TickwireError';
    this.code = code;
    this.details = options.details;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** True for a {@link TickwireError} from any loaded copy of core; optionally of one code. */
export function isTickwireError(value: unknown, code?: ErrorCode): value is TickwireError {
  if (typeof value !== 'object' || value === null) return false;
  if ((value as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (value as TickwireError).code === code;
}

/** Wraps any thrown value in a {@link TickwireError}, keeping one that already is. */
export function toTickwireError(
  value: unknown,
  code: ErrorCode = ErrorCode.INTERNAL,
  message?: string,
): TickwireError {
  if (isTickwireError(value)) return value;
  const text = message ?? (value instanceof Error ? value.message : String(value));
  return new TickwireError(code, text, { cause: value });
}
