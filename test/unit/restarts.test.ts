import { describe, expect, it } from "vitest";
import { FIRST_DELAY_MS, HEALTHY_MS, MAX_DELAY_MS, restartDelay } from "../../src/cluster/restarts.js";

describe("restartDelay: when a worker that ended is replaced", () => {
  it("replaces one that ran for a minute at once, whatever the waits before", () => {
    expect(restartDelay(0, HEALTHY_MS)).toBe(0);
    expect(restartDelay(MAX_DELAY_MS, HEALTHY_MS + 1)).toBe(0);
  });

  it("backs off a crash loop: 250 ms, then doubling, never past 30 s", () => {
    const waits: number[] = [];
    for (let wait = 0, i = 0; i < 10; i++) waits.push((wait = restartDelay(wait, 1000)));
    expect(waits).toEqual([FIRST_DELAY_MS, 500, 1000, 2000, 4000, 8000, 16_000, MAX_DELAY_MS, MAX_DELAY_MS, MAX_DELAY_MS]);
  });
});
