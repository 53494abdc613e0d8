/** The one source of time. Injected everywhere so tests can move it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export const nowSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);

/** A clock tests can move by hand; it starts at real time so TLS-free HTTP dates look sane. */
export class ManualClock implements Clock {
  #offsetMs = 0;
  now(): number {
    return Date.now() + this.#offsetMs;
  }
  advance(ms: number): void {
    this.#offsetMs += ms;
  }
}
