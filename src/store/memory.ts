import { systemClock, type Clock } from "../clock.js";
import { ExpiryHeap } from "./expiry-heap.js";
import { ttlMs, type Store, type Watcher } from "./store.js";
import { Watchers } from "./watchers.js";

interface Entry {
  key: string;
  json: string;
  expiresAt: number;
  slot: number;
}

/**
 * In-process store for tests and throwaway runs. Values are stored as JSON so callers never share
 * mutable objects with the store, exactly as with a real backend. Expired entries are dropped on
 * read, and every write first removes all that have expired, in expiry order from a min-heap: after
 * any write the store holds no expired entry, whatever order keys were written in. Each entry enters
 * and leaves the heap once, so a write costs O(log n) amortised.
 */
export class MemoryStore implements Store {
  readonly #entries = new Map<string, Entry>();
  readonly #expiries = new ExpiryHeap<Entry>();
  readonly #clock: Clock;
  readonly #watchers = new Watchers();
  #examined = 0;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  async get<T>(key: string): Promise<T | undefined> {
    const entry = this.#live(key);
    return entry === undefined ? undefined : (JSON.parse(entry.json) as T);
  }

  async put<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    this.#sweep();
    this.#write(key, value, ttlSeconds);
  }

  async add<T>(key: string, value: T, ttlSeconds: number): Promise<boolean> {
    this.#sweep();
    if (this.#live(key)) return false;
    this.#write(key, value, ttlSeconds);
    return true;
  }

  async take<T>(key: string): Promise<T | undefined> {
    const entry = this.#live(key);
    if (entry === undefined) return undefined;
    this.#remove(entry);
    return JSON.parse(entry.json) as T;
  }

  async delete(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry) this.#remove(entry);
  }

  async increment(key: string, windowSeconds: number): Promise<number> {
    this.#sweep();
    const entry = this.#live(key);
    if (entry === undefined) {
      this.#write(key, 1, windowSeconds);
      return 1;
    }
    const count = (JSON.parse(entry.json) as number) + 1;
    entry.json = String(count);
    return count;
  }

  async *scan<T>(prefix: string): AsyncIterable<[string, T]> {
    for (const key of [...this.#entries.keys()].filter((k) => k.startsWith(prefix))) {
      const entry = this.#live(key);
      if (entry) yield [key, JSON.parse(entry.json) as T];
    }
  }

  async publish<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    await this.put(key, value, ttlSeconds);
    this.#watchers.record(key, ttlMs(key, ttlSeconds));
  }

  /** One process holds all the state: a watch is current from the start, for good. */
  async watch(prefix: string, watcher: Watcher): Promise<() => Promise<void>> {
    const now = this.#clock.now();
    for (const key of this.#entries.keys()) {
      const entry = key.startsWith(prefix) ? this.#live(key) : undefined;
      if (entry) watcher.record(key, entry.expiresAt - now);
    }
    watcher.current(Number.POSITIVE_INFINITY);
    const remove = this.#watchers.add(prefix, watcher);
    return async () => remove();
  }

  async close(): Promise<void> {
    this.#entries.clear();
    this.#expiries.clear();
  }

  /** Entries held, live or expired since the last write. */
  get size(): number {
    return this.#entries.size;
  }

  /** Entries the expiry sweep has looked at so far: each one it removes, plus one look per write. */
  get examined(): number {
    return this.#examined;
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt <= this.#clock.now()) {
      this.#remove(entry);
      return undefined;
    }
    return entry;
  }

  #write(key: string, value: unknown, ttlSeconds: number): void {
    const expiresAt = this.#clock.now() + ttlMs(key, ttlSeconds);
    const json = JSON.stringify(value);
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      const created: Entry = { key, json, expiresAt, slot: -1 };
      this.#entries.set(key, created);
      this.#expiries.push(created);
      return;
    }
    entry.json = json;
    entry.expiresAt = expiresAt;
    this.#expiries.reorder(entry);
  }

  #remove(entry: Entry): void {
    this.#entries.delete(entry.key);
    this.#expiries.remove(entry);
  }

  /** Remove every expired entry, soonest first; stops at the first that is still live. */
  #sweep(): void {
    const now = this.#clock.now();
    this.#examined++;
    for (let entry = this.#expiries.popExpired(now); entry; entry = this.#expiries.popExpired(now)) {
      this.#examined++;
      this.#entries.delete(entry.key);
    }
  }
}
