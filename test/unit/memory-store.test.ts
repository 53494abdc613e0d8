import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { MemoryStore } from "../../src/store/memory.js";

/** What only the memory backend does; the Store contract itself is test/store/contract.test.ts. */
const setup = () => {
  const clock = new ManualClock();
  return { clock, store: new MemoryStore(clock) };
};

describe("MemoryStore", () => {
  it("drops an expired entry when it is read", async () => {
    const { store, clock } = setup();
    await store.put("code:1", "v", 1);
    clock.advance(2_000);
    expect(store.size).toBe(1);
    expect(await store.get("code:1")).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it("sweeps expired entries as it is written to, without reads", async () => {
    const { store, clock } = setup();
    for (let i = 0; i < 64; i++) await store.put(`old:${i}`, i, 1);
    clock.advance(2_000);
    for (let i = 0; i < 256; i++) await store.put(`new:${i}`, i, 60);
    expect(store.size).toBeLessThanOrEqual(256);
  });

  it("holds no expired entry after a write, whatever was written first (HI6: test/store/memory.test.ts)", async () => {
    const { store, clock } = setup();
    for (let i = 0; i < 192; i++) await store.put(`old:${i}`, i, 1);
    clock.advance(2_000);
    for (let i = 0; i < 64; i++) await store.put(`new:${i}`, i, 60);
    expect(store.size).toBe(64);
  });

  it("empties on close", async () => {
    const { store } = setup();
    await store.put("k", 1, 60);
    await store.close();
    expect(store.size).toBe(0);
  });
});
