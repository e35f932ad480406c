// Allocation-free FIFO queues of the send path: references with a number stamp, and bytes.

/** A growable ring FIFO of items, each with a number stamp. */
export class StampedQueue<T> {
  #items: (T | undefined)[];
  #stamps: Float64Array;
  #head = 0;
  #size = 0;

  constructor(initialCapacity = 64) {
    this.#items = new Array(initialCapacity);
    this.#stamps = new Float64Array(initialCapacity);
  }

  /** Items queued. */
  get size(): number {
    return this.#size;
  }

  /** Appends `item` with `stamp`. */
  push(item: T, stamp = 0): void {
    if (this.#size === this.#items.length) this.#grow();
    const index = (this.#head + this.#size) % this.#items.length;
    this.#items[index] = item;
    this.#stamps[index] = stamp;
    this.#size++;
  }

  /** The oldest item, or undefined. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** The stamp of the oldest item (NaN if empty). */
  peekStamp(): number {
    return this.#size === 0 ? Number.NaN : this.#stamps[this.#head]!;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }

  /** Removes everything. */
  clear(): void {
    this.#items.fill(undefined);
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    const capacity = this.#items.length * 2;
    const items: (T | undefined)[] = new Array(capacity);
    const stamps = new Float64Array(capacity);
    for (let i = 0; i < this.#size; i++) {
      const from = (this.#head + i) % this.#items.length;
      items[i] = this.#items[from];
      stamps[i] = this.#stamps[from]!;
    }
    this.#items = items;
    this.#stamps = stamps;
    this.#head = 0;
  }
}

/** A growable FIFO of bytes: writers reserve space at the tail, readers consume from the head. */
export class ByteQueue {
  /** The storage; valid bytes are `[readOffset, writeOffset)`. */
  buffer: Uint8Array;
  readOffset = 0;
  writeOffset = 0;

  constructor(initialCapacity = 4096) {
    this.buffer = new Uint8Array(initialCapacity);
  }

  /** Bytes queued. */
  get length(): number {
    return this.writeOffset - this.readOffset;
  }

  /** Makes room for `bytes` at the tail; returns the offset to write at (then call `commit`). */
  reserve(bytes: number): number {
    if (this.writeOffset + bytes > this.buffer.length) {
      const used = this.writeOffset - this.readOffset;
      if (used + bytes <= this.buffer.length / 2) {
        this.buffer.copyWithin(0, this.readOffset, this.writeOffset);
      } else {
        let capacity = this.buffer.length * 2;
        while (capacity < used + bytes) capacity *= 2;
        const next = new Uint8Array(capacity);
        next.set(this.buffer.subarray(this.readOffset, this.writeOffset));
        this.buffer = next;
      }
      this.readOffset = 0;
      this.writeOffset = used;
    }
    return this.writeOffset;
  }

  /** Marks `bytes` written at the tail. */
  commit(bytes: number): void {
    this.writeOffset += bytes;
  }

  /** Consumes `bytes` from the head. */
  consume(bytes: number): void {
    this.readOffset += bytes;
    if (this.readOffset >= this.writeOffset) {
      this.readOffset = 0;
      this.writeOffset = 0;
    }
  }

  /** Drops everything (shrinking a large buffer back). */
  clear(): void {
    this.readOffset = 0;
    this.writeOffset = 0;
    if (this.buffer.length > 65_536) this.buffer = new Uint8Array(4096);
  }
}
