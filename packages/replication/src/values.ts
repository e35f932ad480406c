/**
 * Field values are stored as deeply frozen copies: a caller can neither change a world's
 * state behind its change tracking nor change what was already sent, and snapshots can keep
 * references to the values they carried without copying them.
 */

/** A frozen deep copy of `value` (primitives are returned as they are). */
export function frozenCopy<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Object.isFrozen(value) && isDeeplyFrozen(value)) return value;
  return deepFreeze(structuredClone(value));
}

function isDeeplyFrozen(value: object): boolean {
  // Typed arrays cannot be frozen; a frozen wrapper never holds one, so the check is cheap.
  if (ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set) return false;
  for (const key of Object.keys(value)) {
    const inner = (value as Record<string, unknown>)[key];
    if (typeof inner === 'object' && inner !== null && !Object.isFrozen(inner)) return false;
  }
  return true;
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  // Typed arrays and maps cannot be frozen in place; their copies are private to the world.
  if (ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set) return value;
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return Object.freeze(value);
}

/** Structural equality of field values (numbers by `Object.is`). */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length)
      return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map) || !(b instanceof Map) || a.size !== b.size) return false;
    for (const [key, value] of a) if (!b.has(key) || !valuesEqual(value, b.get(key))) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys)
    if (
      !Object.hasOwn(b, key) ||
      !valuesEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
    )
      return false;
  return true;
}
