import { BinaryReader, BinaryWriter } from '@tickwire/serialization';
import { decodeError, toDecodeError } from './decode-error.js';
import { bitsFor, type EntityType } from './entity-type.js';
import { readIds, writeIds } from './id-coding.js';

/**
 * Messages about client-owned fields, both ways, with one layout:
 * sequence (varuint) · snapshot id (varuint) · entity ids (sorted, Golomb-Rice) · per entity:
 * generation (varuint), type index, field mask, the fields (plain, validated on read).
 *
 * Client → server ("changes"): the owner's writes; the sequence is the owner's latest write
 * and the snapshot id the last snapshot it had applied (what it based the writes on).
 * Server → client ("corrections"): authoritative values of owned fields — a rejected change
 * rolled back, or a value the server itself wrote; the sequence is the latest owner write the
 * server had processed, so the owner keeps writes it made after that.
 */
export interface OwnedEntry {
  id: number;
  generation: number;
  typeIndex: number;
  mask: number;
  /** Values by wire index (only the masked ones are set). */
  values: unknown[];
}

/** A decoded changes or corrections message. */
export interface OwnedMessage {
  sequence: number;
  snapshotId: number;
  entries: OwnedEntry[];
}

const SUBJECT = 'owned fields';
const writer = /* @__PURE__ */ new BinaryWriter({ initialBytes: 256 });
const reader = /* @__PURE__ */ new BinaryReader();
const ids: number[] = [];

/** Encodes an owned-fields message (entries in any order). */
export function encodeOwned(types: readonly EntityType[], message: OwnedMessage): Uint8Array {
  const entries = [...message.entries].sort((a, b) => a.id - b.id);
  const typeBits = bitsFor(types.length);
  writer.reset();
  writer.writeVarUint(message.sequence);
  writer.writeVarUint(message.snapshotId);
  for (let i = 0; i < entries.length; i++) ids[i] = entries[i]!.id;
  writeIds(writer, ids, entries.length);
  for (const entry of entries) {
    const type = types[entry.typeIndex]!;
    writer.writeVarUint(entry.generation);
    writer.writeBits(entry.typeIndex, typeBits);
    writer.writeBits(entry.mask, type.fieldNames.length);
    for (let field = 0; field < type.fieldTypes.length; field++)
      if ((entry.mask >>> field) & 1) type.fieldTypes[field]!.write(writer, entry.values[field]);
  }
  return writer.toBytes();
}

/**
 * Decodes an owned-fields message; throws DECODE_FAILED on malformed bytes. Entries without
 * fields are refused unless `allowEmpty` (a diagnosis lists entities whose fields are hidden).
 */
export function decodeOwned(
  types: readonly EntityType[],
  bytes: Uint8Array,
  allowEmpty = false,
): OwnedMessage {
  if (!(bytes instanceof Uint8Array)) throw decodeError('expected bytes', undefined, SUBJECT);
  try {
    reader.reset(bytes);
    const sequence = reader.readVarUint();
    const snapshotId = reader.readVarUint();
    const count = readIds(reader, ids);
    const typeBits = bitsFor(types.length);
    const entries: OwnedEntry[] = [];
    for (let i = 0; i < count; i++) {
      const generation = reader.readVarUint();
      const typeIndex = reader.readBits(typeBits);
      const type = types[typeIndex];
      if (type === undefined)
        throw decodeError(`unknown type index ${typeIndex}`, undefined, SUBJECT);
      const mask = reader.readBits(type.fieldNames.length) >>> 0;
      if (mask === 0 && !allowEmpty)
        throw decodeError('an entry without fields', undefined, SUBJECT);
      const values: unknown[] = [];
      for (let field = 0; field < type.fieldTypes.length; field++)
        if ((mask >>> field) & 1) values[field] = type.fieldTypes[field]!.read(reader);
      entries.push({ id: ids[i]!, generation, typeIndex, mask, values });
    }
    reader.end();
    return { sequence, snapshotId, entries };
  } catch (error) {
    throw toDecodeError(error, SUBJECT);
  }
}
