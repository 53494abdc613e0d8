import type { Watcher } from "./store.js";

/** The watches of one process, by prefix: what a backend tells of a record published here or elsewhere. */
export class Watchers {
  readonly #all = new Set<{ prefix: string; watcher: Watcher }>();

  add(prefix: string, watcher: Watcher): () => void {
    const entry = { prefix, watcher };
    this.#all.add(entry);
    return () => void this.#all.delete(entry);
  }

  get size(): number {
    return this.#all.size;
  }

  /** The prefixes watched, each once. */
  get prefixes(): string[] {
    return [...new Set([...this.#all].map((e) => e.prefix))];
  }

  record(key: string, ttlMs: number): void {
    for (const { prefix, watcher } of this.#all) if (key.startsWith(prefix)) watcher.record(key, ttlMs);
  }

  current(at: number): void {
    for (const { watcher } of this.#all) watcher.current(at);
  }

  lost(reason: string): void {
    for (const { watcher } of this.#all) watcher.lost(reason);
  }
}
