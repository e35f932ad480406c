// Rate and connection limits. Nothing here sets a timer: buckets refill from clock readings
// taken when a message arrives, so an idle connection costs nothing.
import { type Clock, ErrorCode, TickwireError } from '@tickwire/core';

/** Options of {@link createTokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second (more than 0). */
  ratePerSecond: number;
  /** Bucket size: the most tokens available at once (more than 0). The bucket starts full. */
  burst: number;
  /** Clock the refill is computed from. */
  clock: Clock;
}

/** A token bucket: `take` succeeds while tokens last; they refill at a steady rate. */
export interface TokenBucket {
  /**
   * Takes `count` tokens (default 1) if that many are available and returns true; otherwise
   * takes nothing and returns false. A count above `burst` never succeeds.
   */
  take(count?: number): boolean;
  /** Tokens available now (fractional). */
  readonly tokens: number;
}

function checkPositive(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${name} must be a number > 0, got ${String(value)}`,
    );
  }
}

interface BucketState {
  tokens: number;
  lastMs: number;
}

// Refills a bucket from the time elapsed since its last refill.
function refill(state: BucketState, perMs: number, burst: number, nowMs: number): void {
  if (nowMs > state.lastMs) {
    state.tokens = Math.min(burst, state.tokens + (nowMs - state.lastMs) * perMs);
    state.lastMs = nowMs;
  }
}

/** Creates a full {@link TokenBucket}. */
export function createTokenBucket(options: TokenBucketOptions): TokenBucket {
  const { ratePerSecond, burst, clock } = options;
  checkPositive('ratePerSecond', ratePerSecond);
  checkPositive('burst', burst);
  const perMs = ratePerSecond / 1000;
  const state: BucketState = { tokens: burst, lastMs: clock.now() };
  return {
    take(count = 1) {
      if (!(count >= 0)) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `take: count must be a number >= 0, got ${String(count)}`,
        );
      }
      refill(state, perMs, burst, clock.now());
      if (state.tokens < count) return false;
      state.tokens -= count;
      return true;
    },
    get tokens() {
      refill(state, perMs, burst, clock.now());
      return state.tokens;
    },
  };
}

/** The limits a {@link ConnectionLimiter} enforces (the fields of `ResolvedLimits` it reads). */
export interface ConnectionLimits {
  /** Sustained messages per second. */
  messagesPerSecond: number;
  /** Messages allowed at once above the sustained rate. */
  messageBurst: number;
  /** Sustained bytes per second. */
  bytesPerSecond: number;
  /** Bytes allowed at once above the sustained rate. */
  bytesBurst: number;
  /** Warnings before `close` (0 closes at the first excess). */
  rateLimitWarnings: number;
  /**
   * Warnings older than this many ms (counted from the first one) are forgotten.
   * @default 10000
   */
  warningWindowMs?: number;
  /**
   * After a warning, the client gets this many ms to slow down: over-limit messages in that
   * time (already in flight when it was warned) answer `warn` without counting another warning.
   * @default 1000
   */
  warningReactionMs?: number;
}

/**
 * What to do with one incoming message: `ok` process it; `warn` drop it and tell the client
 * it is over its rate limit; `close` drop it and close the connection with CloseCode.RateLimited.
 */
export type RateVerdict = 'ok' | 'warn' | 'close';

/** The rate limiter of one connection: a message bucket and a byte bucket. */
export interface ConnectionLimiter {
  /** Counts one message of `bytes` bytes against both buckets; see {@link RateVerdict}. */
  allowMessage(bytes: number): RateVerdict;
  /** Warnings counted in the current window. */
  readonly warnings: number;
  /**
   * Warnings counted since the limiter was created (never reset): a new one means a new
   * warning, not a message within the reaction time of the last one.
   */
  readonly issued: number;
}

/**
 * Creates the limiter of one connection. A message passes only if both its message token and
 * its bytes are available; a refused message takes nothing from either bucket.
 */
export function createConnectionLimiter(limits: ConnectionLimits, clock: Clock): ConnectionLimiter {
  const { messagesPerSecond, messageBurst, bytesPerSecond, bytesBurst } = limits;
  checkPositive('messagesPerSecond', messagesPerSecond);
  checkPositive('messageBurst', messageBurst);
  checkPositive('bytesPerSecond', bytesPerSecond);
  checkPositive('bytesBurst', bytesBurst);
  const messagesPerMs = messagesPerSecond / 1000;
  const bytesPerMs = bytesPerSecond / 1000;
  const startMs = clock.now();
  // Both buckets are refilled together, from one last refill time.
  let messageTokens = messageBurst;
  let byteTokens = bytesBurst;
  let lastRefillMs = startMs;
  const allowed = limits.rateLimitWarnings;
  if (!Number.isInteger(allowed) || allowed < 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `rateLimitWarnings must be an integer >= 0, got ${String(allowed)}`,
    );
  }
  const windowMs = limits.warningWindowMs ?? 10_000;
  const reactionMs = limits.warningReactionMs ?? 1_000;
  checkPositive('warningWindowMs', windowMs);
  if (!Number.isFinite(reactionMs) || reactionMs < 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `warningReactionMs must be a number >= 0, got ${String(reactionMs)}`,
    );
  }
  let warnings = 0;
  let issued = 0;
  let windowStartMs = 0;
  let reactionEndMs = Number.NEGATIVE_INFINITY;

  return {
    allowMessage(size) {
      const nowMs = clock.now();
      if (nowMs > lastRefillMs) {
        const elapsedMs = nowMs - lastRefillMs;
        messageTokens = Math.min(messageBurst, messageTokens + elapsedMs * messagesPerMs);
        byteTokens = Math.min(bytesBurst, byteTokens + elapsedMs * bytesPerMs);
        lastRefillMs = nowMs;
      }
      if (messageTokens >= 1 && byteTokens >= size) {
        messageTokens -= 1;
        byteTokens -= size;
        return 'ok';
      }
      if (nowMs < reactionEndMs) return 'warn';
      if (warnings > 0 && nowMs - windowStartMs >= windowMs) warnings = 0;
      if (warnings === 0) windowStartMs = nowMs;
      warnings++;
      issued++;
      if (warnings > allowed) return 'close';
      reactionEndMs = nowMs + reactionMs;
      return 'warn';
    },
    get warnings() {
      if (warnings > 0 && clock.now() - windowStartMs >= windowMs) warnings = 0;
      return warnings;
    },
    get issued() {
      return issued;
    },
  };
}

/** Why {@link AddressLimiter.acquire} refused: `address` = per-address cap, `total` = server cap. */
export type AddressVerdict = 'ok' | 'address' | 'total';

/** Counts open connections per client IP address and in total. */
export interface AddressLimiter {
  /** Counts a new connection from `address` if both caps allow it (`ok`); otherwise counts nothing. */
  acquire(address: string): AddressVerdict;
  /** Uncounts a connection acquired from `address`; extra releases are ignored. */
  release(address: string): void;
  /** Open connections counted from `address` (any form of it). */
  count(address: string): number;
  /** Open connections counted in total. */
  readonly total: number;
}

const MAPPED_DOTTED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/;
const MAPPED_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * The IP of a peer address: drops the port of `ip:port` and `[ipv6]:port`, turns IPv4-mapped
 * IPv6 (`::ffff:1.2.3.4`, `::ffff:102:304`) into IPv4 and lower-cases IPv6.
 */
export function normalizeAddress(address: string): string {
  let ip = address.trim();
  if (ip.startsWith('[')) {
    const end = ip.indexOf(']');
    ip = end === -1 ? ip.slice(1) : ip.slice(1, end);
  } else {
    const colon = ip.indexOf(':');
    // One colon: IPv4 or a host name with a port. More: a bare IPv6 address.
    if (colon !== -1 && colon === ip.lastIndexOf(':')) ip = ip.slice(0, colon);
  }
  if (!ip.includes(':')) return ip;
  ip = ip.toLowerCase();
  const dotted = MAPPED_DOTTED.exec(ip);
  if (dotted) return dotted[1]!;
  const hex = MAPPED_HEX.exec(ip);
  if (hex) {
    const high = Number.parseInt(hex[1]!, 16);
    const low = Number.parseInt(hex[2]!, 16);
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  }
  return ip;
}

function checkCap(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${name} must be an integer >= 1, got ${String(value)}`,
    );
  }
}

/** Creates an {@link AddressLimiter} allowing `maxPerAddress` per IP and `maxTotal` in all. */
export function createAddressLimiter(maxPerAddress: number, maxTotal: number): AddressLimiter {
  checkCap('maxPerAddress', maxPerAddress);
  checkCap('maxTotal', maxTotal);
  const counts = new Map<string, number>();
  let total = 0;
  return {
    acquire(address) {
      if (total >= maxTotal) return 'total';
      const ip = normalizeAddress(address);
      const current = counts.get(ip) ?? 0;
      if (current >= maxPerAddress) return 'address';
      counts.set(ip, current + 1);
      total++;
      return 'ok';
    },
    release(address) {
      const ip = normalizeAddress(address);
      const current = counts.get(ip);
      if (current === undefined) return;
      if (current <= 1) counts.delete(ip);
      else counts.set(ip, current - 1);
      total--;
    },
    count: (address) => counts.get(normalizeAddress(address)) ?? 0,
    get total() {
      return total;
    },
  };
}
