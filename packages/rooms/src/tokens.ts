import { createHmac, timingSafeEqual } from 'node:crypto';
import { ErrorCode, TickwireError } from '@tickwire/core';

/** What a reconnect token carries; signed, not encrypted (anyone holding it can read it). */
export interface TokenPayload {
  /** Session id. */
  sid: string;
  /** User id, when the session belongs to an authenticated user. */
  uid?: string;
  /** Expiry, wall-clock ms since the Unix epoch. */
  exp: number;
  /** Unique id of this token. */
  jti: string;
  /** Rotation generation: the session accepts only the token of its current generation. */
  gen: number;
}

/** Why {@link TokenSigner.verify} refused a token (`details.reason` of the UNAUTHORIZED error). */
export type TokenRejection = 'malformed' | 'signature' | 'expired';

/** Options of {@link createTokenSigner}. */
export interface TokenSignerOptions {
  /** HMAC-SHA256 key, at least 32 bytes (a string counts its UTF-8 bytes). Keep it out of the code. */
  secret: string | Uint8Array;
  /**
   * Wall clock in ms since the Unix epoch: expiry must mean the same on every process.
   * @default Date.now
   */
  clock?: () => number;
  /**
   * Longest token `verify` looks at; longer ones are refused as malformed before any hashing.
   * @default 4096
   */
  maxTokenLength?: number;
}

/** Signs and verifies reconnect tokens (`base64url(payload).base64url(HMAC-SHA256)`). */
export interface TokenSigner {
  /** Signs `payload`; INVALID_ARGUMENT if a field has the wrong type. */
  sign(payload: TokenPayload): string;
  /** The payload of a valid, unexpired token; UNAUTHORIZED with `details.reason` otherwise. */
  verify(token: string): TokenPayload;
  /** The signer's wall clock (ms since the Unix epoch), for expiries computed elsewhere. */
  now(): number;
}

/** Smallest secret accepted, in bytes (the HMAC-SHA256 output size). */
export const MIN_TOKEN_SECRET_BYTES = 32;

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function unauthorized(reason: TokenRejection, message: string): TickwireError {
  return new TickwireError(ErrorCode.UNAUTHORIZED, message, { details: { reason } });
}

// The one place payload shape is checked, for both sign (caller bug) and verify (forgery).
function payloadProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const p = value as Record<string, unknown>;
  if (typeof p.sid !== 'string' || p.sid.length === 0) return 'sid must be a non-empty string';
  if (p.uid !== undefined && typeof p.uid !== 'string') return 'uid must be a string';
  if (typeof p.exp !== 'number' || !Number.isFinite(p.exp)) return 'exp must be a finite number';
  if (typeof p.jti !== 'string' || p.jti.length === 0) return 'jti must be a non-empty string';
  if (!Number.isSafeInteger(p.gen) || (p.gen as number) < 0) return 'gen must be an integer >= 0';
  return undefined;
}

// Known fields only, in a fixed order: equal payloads give equal tokens.
function pick(payload: TokenPayload): TokenPayload {
  return {
    sid: payload.sid,
    ...(payload.uid === undefined ? {} : { uid: payload.uid }),
    exp: payload.exp,
    jti: payload.jti,
    gen: payload.gen,
  };
}

/** Creates a {@link TokenSigner}; INVALID_ARGUMENT if the secret is shorter than 32 bytes. */
export function createTokenSigner(options: TokenSignerOptions): TokenSigner {
  const secret = options?.secret;
  let key: Uint8Array;
  if (typeof secret === 'string') key = new TextEncoder().encode(secret);
  else if (secret instanceof Uint8Array) key = secret.slice();
  else
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'token secret must be a string or a Uint8Array',
    );
  if (key.byteLength < MIN_TOKEN_SECRET_BYTES) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `token secret must be at least ${MIN_TOKEN_SECRET_BYTES} bytes, got ${key.byteLength}: generate one with crypto.randomBytes(32)`,
      { details: { bytes: key.byteLength, minimum: MIN_TOKEN_SECRET_BYTES } },
    );
  }
  const clock = options.clock ?? (() => Date.now());
  const maxTokenLength = options.maxTokenLength ?? 4096;
  if (!Number.isInteger(maxTokenLength) || maxTokenLength <= 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `maxTokenLength must be a positive integer, got ${maxTokenLength}`,
    );
  }
  const mac = (text: string): Buffer => createHmac('sha256', key).update(text).digest();

  return {
    sign(payload) {
      const problem = payloadProblem(payload);
      if (problem !== undefined) {
        throw new TickwireError(ErrorCode.INVALID_ARGUMENT, `token payload: ${problem}`);
      }
      const body = Buffer.from(JSON.stringify(pick(payload))).toString('base64url');
      return `${body}.${mac(body).toString('base64url')}`;
    },
    verify(token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > maxTokenLength) {
        throw unauthorized(
          'malformed',
          `token must be a non-empty string of at most ${maxTokenLength} characters`,
        );
      }
      const dot = token.indexOf('.');
      const body = token.slice(0, dot);
      const signature = token.slice(dot + 1);
      if (dot <= 0 || !BASE64URL.test(body) || !BASE64URL.test(signature)) {
        throw unauthorized('malformed', 'token must be `payload.signature` in base64url');
      }
      const given = Buffer.from(signature, 'base64url');
      const expected = mac(body);
      // Length first: timingSafeEqual throws on unequal lengths, and the length is public anyway.
      if (given.byteLength !== expected.byteLength || !timingSafeEqual(given, expected)) {
        throw unauthorized('signature', 'token signature does not match: forged or tampered');
      }
      let payload: unknown;
      try {
        payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
      } catch {
        payload = undefined;
      }
      const problem = payloadProblem(payload);
      if (problem !== undefined) throw unauthorized('malformed', `token payload: ${problem}`);
      const valid = pick(payload as TokenPayload);
      const now = clock();
      if (valid.exp <= now) {
        throw new TickwireError(
          ErrorCode.UNAUTHORIZED,
          `token of session ${valid.sid} expired ${Math.round(now - valid.exp)} ms ago`,
          { details: { reason: 'expired', sessionId: valid.sid, expiredAt: valid.exp } },
        );
      }
      return valid;
    },
    now: clock,
  };
}
