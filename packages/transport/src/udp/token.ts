// netcode.io-style connect tokens: issued by the game's backend with a secret shared with the
// server, carried by the client, opened only by the server. The private part (client id, keys,
// user data) is sealed with chacha20-poly1305; the public part gives the client its packet keys.
import { randomBytes } from 'node:crypto';
import { type Clock, ErrorCode, TickwireError } from '@tickwire/core';
import { aeadOpen, aeadSeal, KEY_BYTES, NONCE_BYTES } from './crypto.js';
import {
  DEFAULT_PROTOCOL_ID,
  MAX_TOKEN_BYTES,
  readU16,
  readU32,
  readU64,
  writeU16,
  writeU32,
  writeU64,
} from './packet.js';

/** Version byte of the token layout. */
export const CONNECT_TOKEN_VERSION = 1;
/** Largest client id in UTF-8 bytes. */
export const MAX_CLIENT_ID_BYTES = 64;
/** Largest user data in bytes. */
export const MAX_USER_DATA_BYTES = 256;

// Public layout: version u8, protocolId u32, expiresAtMs u64, nonce 12, c2s key 32, s2c key 32,
// private length u16, private part. The whole public part is the private part's associated data.
const PROTOCOL_AT = 1;
const EXPIRES_AT = 5;
const NONCE_AT = 13;
const CLIENT_KEY_AT = NONCE_AT + NONCE_BYTES;
const SERVER_KEY_AT = CLIENT_KEY_AT + KEY_BYTES;
const PRIVATE_LENGTH_AT = SERVER_KEY_AT + KEY_BYTES;
const PRIVATE_AT = PRIVATE_LENGTH_AT + 2;
const AAD_BYTES = PRIVATE_AT;

/** The wall clock (ms since the Unix epoch) tokens expire on: tokens cross machines. */
export const systemWallClock: Clock = { now: () => Date.now() };

/** Options of {@link generateConnectToken}. */
export interface ConnectTokenOptions {
  /** Who the token is for; the server exposes it as `connection.clientId` (≤ 64 UTF-8 bytes). */
  clientId: string;
  /** The token is refused this many ms after it was issued. */
  expiresInMs: number;
  /** 32-byte key shared with the server (its `connectTokenKey`). */
  secretKey: Uint8Array;
  /** Protocol id of the server. @default 0x54575544 */
  protocolId?: number;
  /** Opaque bytes for the server (`connection.userData`), at most 256. */
  userData?: Uint8Array;
  /** Wall clock of the expiry. @default systemWallClock (Date.now) */
  wallClock?: Clock;
}

/** What the client reads from a token: its packet keys. */
export interface ConnectTokenPublic {
  protocolId: number;
  expiresAtMs: number;
  /** Unique id of the token (its nonce), the key of replay detection. */
  nonce: Uint8Array;
  clientToServerKey: Uint8Array;
  serverToClientKey: Uint8Array;
}

/** What the server reads from a valid token. */
export interface ConnectTokenPrivate extends ConnectTokenPublic {
  clientId: string;
  userData: Uint8Array;
}

/** Outcome of {@link openConnectToken}. */
export type OpenTokenResult =
  | { status: 'ok'; token: ConnectTokenPrivate }
  | { status: 'invalid' | 'expired'; token: null };

function invalidArgument(message: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message);
}

function checkKey(name: string, key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw invalidArgument(`${name} must be a Uint8Array of ${KEY_BYTES} bytes`);
  }
  return key;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Issues a connect token for `clientId`, valid for `expiresInMs` (server-side code only: it needs
 * the secret key). Hand the bytes to the client over a secure channel (e.g. your HTTPS login API).
 */
export function generateConnectToken(options: ConnectTokenOptions): Uint8Array {
  const secretKey = checkKey('secretKey', options.secretKey);
  const protocolId = options.protocolId ?? DEFAULT_PROTOCOL_ID;
  if (!Number.isInteger(protocolId) || protocolId < 0 || protocolId > 0xffff_ffff) {
    throw invalidArgument(`protocolId must be a u32, got ${String(protocolId)}`);
  }
  if (!Number.isFinite(options.expiresInMs) || options.expiresInMs <= 0) {
    throw invalidArgument(`expiresInMs must be a number > 0, got ${String(options.expiresInMs)}`);
  }
  if (typeof options.clientId !== 'string') throw invalidArgument('clientId must be a string');
  const clientId = encoder.encode(options.clientId);
  if (clientId.length > MAX_CLIENT_ID_BYTES) {
    throw invalidArgument(`clientId is over ${MAX_CLIENT_ID_BYTES} UTF-8 bytes`);
  }
  const userData = options.userData ?? new Uint8Array(0);
  if (!(userData instanceof Uint8Array) || userData.length > MAX_USER_DATA_BYTES) {
    throw invalidArgument(`userData must be a Uint8Array of at most ${MAX_USER_DATA_BYTES} bytes`);
  }
  const expiresAtMs = Math.floor(
    (options.wallClock ?? systemWallClock).now() + options.expiresInMs,
  );
  const clientKey = randomBytes(KEY_BYTES);
  const serverKey = randomBytes(KEY_BYTES);
  const plain = new Uint8Array(1 + clientId.length + 2 * KEY_BYTES + 2 + userData.length);
  let at = 0;
  plain[at++] = clientId.length;
  plain.set(clientId, at);
  at += clientId.length;
  plain.set(clientKey, at);
  at += KEY_BYTES;
  plain.set(serverKey, at);
  at += KEY_BYTES;
  writeU16(plain, at, userData.length);
  plain.set(userData, at + 2);
  const token = new Uint8Array(PRIVATE_AT + plain.length + 16);
  token[0] = CONNECT_TOKEN_VERSION;
  writeU32(token, PROTOCOL_AT, protocolId);
  writeU64(token, EXPIRES_AT, expiresAtMs);
  token.set(randomBytes(NONCE_BYTES), NONCE_AT);
  token.set(clientKey, CLIENT_KEY_AT);
  token.set(serverKey, SERVER_KEY_AT);
  writeU16(token, PRIVATE_LENGTH_AT, plain.length + 16);
  const sealed = aeadSeal(
    secretKey,
    token.subarray(NONCE_AT, NONCE_AT + NONCE_BYTES),
    token.subarray(0, AAD_BYTES),
    plain,
  );
  token.set(sealed, PRIVATE_AT);
  return token;
}

/** Reads the public part of a token (client side); throws INVALID_ARGUMENT if malformed. */
export function readConnectTokenPublic(token: Uint8Array): ConnectTokenPublic {
  if (
    !(token instanceof Uint8Array) ||
    token.length < PRIVATE_AT ||
    token.length > MAX_TOKEN_BYTES
  ) {
    throw invalidArgument('connectToken is not a connect token (wrong size)');
  }
  if (token[0] !== CONNECT_TOKEN_VERSION) {
    throw invalidArgument(
      `connectToken has version ${token[0]}, expected ${CONNECT_TOKEN_VERSION}`,
    );
  }
  if (PRIVATE_AT + readU16(token, PRIVATE_LENGTH_AT) !== token.length) {
    throw invalidArgument('connectToken is truncated or has trailing bytes');
  }
  return {
    protocolId: readU32(token, PROTOCOL_AT),
    expiresAtMs: readU64(token, EXPIRES_AT),
    nonce: token.slice(NONCE_AT, NONCE_AT + NONCE_BYTES),
    clientToServerKey: token.slice(CLIENT_KEY_AT, CLIENT_KEY_AT + KEY_BYTES),
    serverToClientKey: token.slice(SERVER_KEY_AT, SERVER_KEY_AT + KEY_BYTES),
  };
}

/** The nonce of a token without opening it (for the handshake cookie); null if too short. */
export function peekTokenNonce(token: Uint8Array): Uint8Array | null {
  return token.length < PRIVATE_AT ? null : token.subarray(NONCE_AT, NONCE_AT + NONCE_BYTES);
}

/**
 * Opens a token with the server's secret key (server side): `invalid` if malformed, for another
 * protocol or not authentic, `expired` if authentic but past its expiry at `nowMs` (wall clock).
 */
export function openConnectToken(
  token: Uint8Array,
  secretKey: Uint8Array,
  protocolId: number,
  nowMs: number,
): OpenTokenResult {
  const invalid: OpenTokenResult = { status: 'invalid', token: null };
  let header: ConnectTokenPublic;
  try {
    header = readConnectTokenPublic(token);
  } catch {
    return invalid;
  }
  if (header.protocolId !== protocolId) return invalid;
  const plain = aeadOpen(
    secretKey,
    token.subarray(NONCE_AT, NONCE_AT + NONCE_BYTES),
    token.subarray(0, AAD_BYTES),
    token.subarray(PRIVATE_AT),
  );
  if (plain === null || plain.length < 1) return invalid;
  const idLength = plain[0]!;
  const keysAt = 1 + idLength;
  const userDataAt = keysAt + 2 * KEY_BYTES + 2;
  if (idLength > MAX_CLIENT_ID_BYTES || plain.length < userDataAt) return invalid;
  const userDataLength = readU16(plain, userDataAt - 2);
  if (plain.length !== userDataAt + userDataLength) return invalid;
  let clientId: string;
  try {
    clientId = decoder.decode(plain.subarray(1, keysAt));
  } catch {
    return invalid;
  }
  if (header.expiresAtMs <= nowMs) return { status: 'expired', token: null };
  return {
    status: 'ok',
    token: {
      ...header,
      clientId,
      clientToServerKey: plain.slice(keysAt, keysAt + KEY_BYTES),
      serverToClientKey: plain.slice(keysAt + KEY_BYTES, keysAt + 2 * KEY_BYTES),
      userData: plain.slice(userDataAt, userDataAt + userDataLength),
    },
  };
}
