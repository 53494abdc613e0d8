/** What the heap orders: an expiry time, and the slot the heap keeps the node in (its own bookkeeping). */
export interface Expiring {
  expiresAt: number;
  slot: number;
}

/**
 * A binary min-heap by `expiresAt` that knows where each node sits, so a node whose expiry changed
 * is moved and a deleted one is removed in O(log n): the heap holds exactly the store's entries, never
 * stale copies of rewritten or deleted ones.
 */
export class ExpiryHeap<T extends Expiring> {
  readonly #nodes: T[] = [];

  get size(): number {
    return this.#nodes.length;
  }

  push(node: T): void {
    node.slot = this.#nodes.push(node) - 1;
    this.#up(node.slot);
  }

  /** Put back in order a node whose `expiresAt` was changed in place. */
  reorder(node: T): void {
    this.#down(this.#up(node.slot));
  }

  remove(node: T): void {
    const last = this.#nodes.pop()!;
    if (last === node) return;
    this.#place(last, node.slot);
    this.reorder(last);
  }

  /** The node that expires first, if its time is at or before `now`, taken out of the heap. */
  popExpired(now: number): T | undefined {
    const first = this.#nodes[0];
    if (first === undefined || first.expiresAt > now) return undefined;
    this.remove(first);
    return first;
  }

  clear(): void {
    this.#nodes.length = 0;
  }

  #up(slot: number): number {
    const node = this.#nodes[slot]!;
    while (slot > 0) {
      const parent = (slot - 1) >> 1;
      if (this.#nodes[parent]!.expiresAt <= node.expiresAt) break;
      this.#place(this.#nodes[parent]!, slot);
      slot = parent;
    }
    this.#place(node, slot);
    return slot;
  }

  #down(slot: number): void {
    const node = this.#nodes[slot]!;
    for (;;) {
      let child = 2 * slot + 1;
      const right = this.#nodes[child + 1];
      if (right !== undefined && right.expiresAt < this.#nodes[child]!.expiresAt) child++;
      const smaller = this.#nodes[child];
      if (smaller === undefined || smaller.expiresAt >= node.expiresAt) break;
      this.#place(smaller, slot);
      slot = child;
    }
    this.#place(node, slot);
  }

  #place(node: T, slot: number): void {
    this.#nodes[slot] = node;
    node.slot = slot;
  }
}
