import { systemClock, type Clock } from "../clock.js";
import { ttlMs, type Store } from "./store.js";

interface Entry {
  json: string;
  expiresAt: number;
}

/**
 * In-process store for tests and throwaway runs. Values are stored as JSON so callers never share
 * mutable objects with the store, exactly as with a real backend. Expired entries are dropped on
 * read and swept in batches on write, never by a full scan on the hot path.
 */
export class MemoryStore implements Store {
  readonly #entries = new Map<string, Entry>();
  readonly #clock: Clock;
  #writes = 0;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  async get<T>(key: string): Promise<T | undefined> {
    const entry = this.#live(key);
    return entry === undefined ? undefined : (JSON.parse(entry.json) as T);
  }

  async put<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    this.#write(key, value, ttlSeconds);
  }

  async add<T>(key: string, value: T, ttlSeconds: number): Promise<boolean> {
    if (this.#live(key)) return false;
    this.#write(key, value, ttlSeconds);
    return true;
  }

  async take<T>(key: string): Promise<T | undefined> {
    const entry = this.#live(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    return JSON.parse(entry.json) as T;
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  async increment(key: string, windowSeconds: number): Promise<number> {
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

  async close(): Promise<void> {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt <= this.#clock.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #write(key: string, value: unknown, ttlSeconds: number): void {
    const expiresAt = this.#clock.now() + ttlMs(key, ttlSeconds);
    this.#entries.delete(key);
    this.#entries.set(key, { json: JSON.stringify(value), expiresAt });
    if (++this.#writes % 256 === 0) this.#sweep(64);
  }

  /** Look at the oldest-written entries only; a bounded amount of work per write. */
  #sweep(budget: number): void {
    const now = this.#clock.now();
    for (const [key, entry] of this.#entries) {
      if (budget-- <= 0) break;
      if (entry.expiresAt <= now) this.#entries.delete(key);
    }
  }
}
