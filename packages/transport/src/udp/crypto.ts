// Packet encryption of token-authenticated connections: chacha20-poly1305 (node:crypto) with a
// 64-bit per-direction packet counter as nonce, the cleartext header as associated data, and a
// replay window on the receiving side.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import {
  AEAD_TAG_BYTES,
  NONCE_OFFSET,
  readU64,
  SEALED_HEADER_BYTES,
  writeU32,
  writeU64,
} from './packet.js';
import { ReplayWindow } from './replay.js';

/** Bytes of a chacha20-poly1305 key. */
export const KEY_BYTES = 32;
/** Bytes of a chacha20-poly1305 nonce. */
export const NONCE_BYTES = 12;
/** Largest packet counter (nonces stay exact JavaScript integers). */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

const ALGORITHM = 'chacha20-poly1305';

/** Seals `plaintext`: returns ciphertext followed by the 16-byte tag. */
export function aeadSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Buffer {
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: AEAD_TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const head = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([head, cipher.getAuthTag()]);
}

/** Opens ciphertext-plus-tag `sealed`; null if it does not authenticate. */
export function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Buffer | null {
  if (sealed.length < AEAD_TAG_BYTES) return null;
  const textLength = sealed.length - AEAD_TAG_BYTES;
  try {
    const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: AEAD_TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(textLength));
    decipher.setAAD(aad, { plaintextLength: textLength });
    const plain = decipher.update(sealed.subarray(0, textLength));
    decipher.final();
    return plain;
  } catch {
    return null;
  }
}

/** The 12-byte nonce of packet counter `counter`: `[u32 0][u64 counter]`. */
export function counterNonce(
  counter: number,
  out: Uint8Array = new Uint8Array(NONCE_BYTES),
): Uint8Array {
  writeU32(out, 0, 0);
  writeU64(out, 4, counter);
  return out;
}

/** Why {@link PacketCipher.open} refused a packet. */
export type OpenFailure = 'malformed' | 'replayed' | 'tampered';

/**
 * Seals and opens the connected packets of one connection. Plain layout in:
 * `[header 10][sequence, ack, ackBits, body]`; sealed layout out: `[header 10][nonce u64]
 * [ciphertext of sequence..body][tag 16]`, the first 18 bytes authenticated as associated data.
 */
export class PacketCipher {
  /** Why the last `open` returned null. */
  failure: OpenFailure = 'malformed';
  readonly #sendKey: Uint8Array;
  readonly #receiveKey: Uint8Array;
  readonly #sendNonce = new Uint8Array(NONCE_BYTES);
  readonly #receiveNonce = new Uint8Array(NONCE_BYTES);
  readonly #replay = new ReplayWindow();
  // Counter 0 sealed the ACCEPTED packet.
  #nextCounter = 1;

  constructor(sendKey: Uint8Array, receiveKey: Uint8Array) {
    this.#sendKey = sendKey;
    this.#receiveKey = receiveKey;
  }

  /** Seals the plain packet `bytes[0, length)` into a new buffer. */
  seal(bytes: Uint8Array, length: number): Buffer {
    const counter = this.#nextCounter;
    this.#nextCounter = counter < MAX_COUNTER ? counter + 1 : counter;
    const textLength = length - NONCE_OFFSET;
    const out = Buffer.allocUnsafe(SEALED_HEADER_BYTES + textLength + AEAD_TAG_BYTES);
    out.set(bytes.subarray(0, NONCE_OFFSET), 0);
    writeU64(out, NONCE_OFFSET, counter);
    const cipher = createCipheriv(
      ALGORITHM,
      this.#sendKey,
      counterNonce(counter, this.#sendNonce),
      { authTagLength: AEAD_TAG_BYTES },
    );
    cipher.setAAD(out.subarray(0, SEALED_HEADER_BYTES), { plaintextLength: textLength });
    const text = cipher.update(bytes.subarray(NONCE_OFFSET, length));
    cipher.final();
    out.set(text, SEALED_HEADER_BYTES);
    out.set(cipher.getAuthTag(), SEALED_HEADER_BYTES + textLength);
    return out;
  }

  /**
   * Opens a sealed packet; returns its `[sequence, ack, ackBits, body]` or null (see `failure`).
   * A nonce is accepted once and only inside the replay window.
   */
  open(sealed: Uint8Array): Buffer | null {
    const textLength = sealed.length - SEALED_HEADER_BYTES - AEAD_TAG_BYTES;
    if (textLength < 8) {
      this.failure = 'malformed';
      return null;
    }
    const counter = readU64(sealed, NONCE_OFFSET);
    if (counter > MAX_COUNTER || this.#replay.isReplayed(counter)) {
      this.failure = 'replayed';
      return null;
    }
    try {
      const decipher = createDecipheriv(
        ALGORITHM,
        this.#receiveKey,
        counterNonce(counter, this.#receiveNonce),
        { authTagLength: AEAD_TAG_BYTES },
      );
      decipher.setAuthTag(sealed.subarray(SEALED_HEADER_BYTES + textLength));
      decipher.setAAD(sealed.subarray(0, SEALED_HEADER_BYTES), { plaintextLength: textLength });
      const plain = decipher.update(
        sealed.subarray(SEALED_HEADER_BYTES, SEALED_HEADER_BYTES + textLength),
      );
      decipher.final();
      this.#replay.accept(counter);
      return plain;
    } catch {
      this.failure = 'tampered';
      return null;
    }
  }
}
