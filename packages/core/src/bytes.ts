/**
 * A copy of `data` that owns its memory. `Buffer.prototype.slice` returns a view, so
 * `data.slice()` is not a copy when a Node Buffer is passed; this always is.
 */
export function copyBytes(data: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(data);
}
