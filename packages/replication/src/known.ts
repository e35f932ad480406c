import type { EntityType } from './entity-type.js';

/**
 * What one client is known to hold, as of its acknowledged baseline: per entity id its
 * generation, type, change version, visible fields, tick and field values. Kept in flat typed
 * arrays (the encoder reads them for every visible entity of every client each tick, so they
 * must be dense), with the numeric fields as integer images (see field-coding.ts) and only
 * the other fields as values.
 */
export class KnownTable {
  private capacity = 0;
  private stride: number;
  present = new Uint8Array(0);
  generation = new Int32Array(0);
  typeIndex = new Int32Array(0);
  /**
   * World change version the client's copy is current at; 0 or −1 for an id it does not hold,
   * so that an entity changed at or before it is always one the client holds.
   */
  version = new Float64Array(0);
  /** Fields the client has (its visible fields when they were sent). */
  fieldMask = new Uint32Array(0);
  /** Server tick of the snapshot the values came from (dead reckoning). */
  tick = new Float64Array(0);
  /** Integer images (unsigned 32-bit at most, see `Packed`) by `id * stride + field`. */
  images = new Uint32Array(0);
  /** Values of fields without an integer image, by id (undefined when there are none). */
  readonly values: (unknown[] | undefined)[] = [];

  constructor(
    private readonly types: readonly EntityType[],
    stride: number,
  ) {
    this.stride = Math.max(1, stride);
  }

  /** Makes room for ids below `size` and images of `fields` fields per entity. */
  reserve(size: number, fields: number): void {
    if (fields > this.stride) this.relayout(fields);
    if (size <= this.capacity) return;
    const capacity = Math.max(64, size * 2);
    const grow = <A extends Uint8Array | Int32Array | Uint32Array | Float64Array>(
      old: A,
      next: A,
    ): A => {
      next.set(old);
      return next;
    };
    this.present = grow(this.present, new Uint8Array(capacity));
    this.generation = grow(this.generation, new Int32Array(capacity));
    this.typeIndex = grow(this.typeIndex, new Int32Array(capacity));
    this.version = grow(this.version, new Float64Array(capacity));
    this.fieldMask = grow(this.fieldMask, new Uint32Array(capacity));
    this.tick = grow(this.tick, new Float64Array(capacity));
    this.images = grow(this.images, new Uint32Array(capacity * this.stride));
    this.capacity = capacity;
  }

  private relayout(stride: number): void {
    const images = new Uint32Array(this.capacity * stride);
    for (let id = 0; id < this.capacity; id++)
      images.set(this.images.subarray(id * this.stride, (id + 1) * this.stride), id * stride);
    this.images = images;
    this.stride = stride;
  }

  /** Index of a field's image. */
  at(id: number, field: number): number {
    return id * this.stride + field;
  }

  has(id: number): boolean {
    return id < this.capacity && this.present[id] === 1;
  }

  /** Entities held. */
  size = 0;

  /** Marks an entity held (its generation, type, fields and values are set by the caller). */
  hold(id: number): void {
    if (this.present[id] !== 1) this.size++;
    this.present[id] = 1;
  }

  /** Forgets an entity (its version becomes −1: older than any change, see `version`). */
  clear(id: number): void {
    if (id >= this.capacity) return;
    if (this.present[id] === 1) this.size--;
    this.present[id] = 0;
    this.version[id] = -1;
    this.values[id] = undefined;
  }

  /** Ids of every entity held, ascending. */
  *ids(): IterableIterator<number> {
    for (let id = 0; id < this.capacity; id++) if (this.present[id] === 1) yield id;
  }

  /**
   * The client's value of a field, at wire precision: numeric fields from their image, the
   * others as stored; undefined for a field the client does not see.
   */
  value(id: number, field: number): unknown {
    if (((this.fieldMask[id]! >>> field) & 1) === 0) return undefined;
    const packed = this.types[this.typeIndex[id]!]!.fieldTypes[field]!.packed;
    if (packed !== undefined) return packed.unpack(this.images[id * this.stride + field]!);
    return this.values[id]?.[field];
  }

  /** Every field's client value (see {@link value}). */
  valuesOf(id: number): unknown[] {
    const type = this.types[this.typeIndex[id]!]!;
    const out: unknown[] = [];
    for (let field = 0; field < type.fieldNames.length; field++) out[field] = this.value(id, field);
    return out;
  }
}
