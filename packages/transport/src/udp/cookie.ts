// Stateless handshake cookies (the DTLS HelloVerifyRequest / QUIC Retry idea): the server answers a
// REQUEST with HMAC-SHA256(secret, address, port, salt, token nonce, time window) and keeps nothing;
// only a client that receives it at its address can echo it back.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { COOKIE_BYTES, writeU16, writeU32 } from './packet.js';

/** Issues and verifies handshake cookies; a cookie is valid in its time window and the next. */
export class CookieIssuer {
  readonly #secret: Uint8Array;
  readonly #windowMs: number;
  readonly #prefix = new Uint8Array(6);

  /** `secret`: random bytes kept by the server; `windowMs`: length of a time window. */
  constructor(secret: Uint8Array, windowMs: number) {
    this.#secret = secret;
    this.#windowMs = windowMs;
  }

  /** The cookie for a client at `address:port` with `salt` (and the nonce of its token). */
  issue(
    address: string,
    port: number,
    salt: Uint8Array,
    tokenNonce: Uint8Array | null,
    nowMs: number,
  ): Buffer {
    return this.#compute(Math.floor(nowMs / this.#windowMs), address, port, salt, tokenNonce);
  }

  /** True if `cookie` was issued for these values in the current or the previous window. */
  verify(
    cookie: Uint8Array,
    address: string,
    port: number,
    salt: Uint8Array,
    tokenNonce: Uint8Array | null,
    nowMs: number,
  ): boolean {
    if (cookie.length !== COOKIE_BYTES) return false;
    const window = Math.floor(nowMs / this.#windowMs);
    for (let back = 0; back <= 1; back++) {
      const expected = this.#compute(window - back, address, port, salt, tokenNonce);
      if (timingSafeEqual(expected, cookie)) return true;
    }
    return false;
  }

  #compute(
    window: number,
    address: string,
    port: number,
    salt: Uint8Array,
    tokenNonce: Uint8Array | null,
  ): Buffer {
    const prefix = this.#prefix;
    writeU32(prefix, 0, window >>> 0);
    writeU16(prefix, 4, port);
    const hmac = createHmac('sha256', this.#secret);
    hmac.update(prefix);
    hmac.update(address);
    hmac.update(salt);
    if (tokenNonce !== null) hmac.update(tokenNonce);
    return hmac.digest();
  }
}
