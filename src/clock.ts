/** The one source of time. Injected everywhere so tests can move it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export const nowSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);

/** A clock that stands still until a test moves it; it starts at the real time of its creation. */
export class ManualClock implements Clock {
  #nowMs = Date.now();
  now(): number {
    return this.#nowMs;
  }
  advance(ms: number): void {
    this.#nowMs += ms;
  }
}
