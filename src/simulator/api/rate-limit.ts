import type { Clock } from "../../clock.js";

export interface RateWindow {
  limit: number;
  used: number;
  remaining: number;
  /** Epoch seconds. */
  reset: number;
}

const WINDOW_MS = 3_600_000;

/** docs rate-limits-for-the-rest-api: 5,000/h per user, 60/h unauthenticated, hourly window. */
export class RateLimiter {
  readonly #clock: Clock;
  readonly #windows = new Map<string, { start: number; used: number }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  hit(key: string, limit: number): RateWindow {
    return this.#read(key, limit, 1);
  }

  peek(key: string, limit: number): RateWindow {
    return this.#read(key, limit, 0);
  }

  #read(key: string, limit: number, cost: number): RateWindow {
    const now = this.#clock.now();
    let window = this.#windows.get(key);
    if (!window || now - window.start >= WINDOW_MS) {
      window = { start: now, used: 0 };
      this.#windows.set(key, window);
    }
    window.used += cost;
    return {
      limit,
      used: window.used,
      remaining: Math.max(0, limit - window.used),
      reset: Math.floor((window.start + WINDOW_MS) / 1000),
    };
  }
}

export const rateLimitHeaders = (w: RateWindow): Record<string, string> => ({
  "x-ratelimit-limit": String(w.limit),
  "x-ratelimit-remaining": String(w.remaining),
  "x-ratelimit-reset": String(w.reset),
  "x-ratelimit-used": String(w.used),
  "x-ratelimit-resource": "core",
});
