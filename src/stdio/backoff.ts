import type { Clock } from "../clock.js";

/** A process that dies sooner than this after its spawn died quickly: restarts back off. */
export const QUICK_DEATH_MS = 10_000;
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 60_000;

/**
 * Restart back-off per process key: after an unexpected exit the next start is at once; after quick
 * deaths in a row it waits 1 s, 2 s, 4 s … at most 60 s. A process that ran long starts the count again.
 */
export class Backoff {
  readonly #keys = new Map<string, { deaths: number; until: number }>();

  constructor(private readonly clock: Clock) {}

  /** Milliseconds until the key may start again; 0: now. */
  waitMs(key: string): number {
    const state = this.#keys.get(key);
    return state ? Math.max(0, state.until - this.clock.now()) : 0;
  }

  /** An unexpected exit (or a failed start) after `ranMs`. */
  died(key: string, ranMs: number): void {
    const deaths = ranMs < QUICK_DEATH_MS ? (this.#keys.get(key)?.deaths ?? 0) + 1 : 1;
    const delay = deaths < 2 ? 0 : Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (deaths - 2));
    this.#keys.set(key, { deaths, until: this.clock.now() + delay });
  }

  /** An exit the gateway asked for: a process that ran long forgets the key's deaths. */
  ended(key: string, ranMs: number): void {
    if (ranMs >= QUICK_DEATH_MS) this.#keys.delete(key);
  }
}
