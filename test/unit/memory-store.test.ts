import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { MemoryStore } from "../../src/store/memory.js";

const setup = () => {
  const clock = new ManualClock();
  return { clock, store: new MemoryStore(clock) };
};


describe("MemoryStore", () => {
  it("returns what was put, as a copy", async () => {
    const { store } = setup();
    const value = { a: 1, list: ["x"] };
    await store.put("client:1", value, 60);
    value.list.push("mutated");
    const read = await store.get<typeof value>("client:1");
    expect(read).toEqual({ a: 1, list: ["x"] });
    read!.a = 2;
    expect(await store.get("client:1")).toEqual({ a: 1, list: ["x"] });
  });

  it("returns undefined for a key never written", async () => {
    expect(await setup().store.get("client:none")).toBeUndefined();
  });

  it("expires an entry by the injected clock", async () => {
    const { store, clock } = setup();
    await store.put("code:1", "v", 10);
    clock.advance(9_000);
    expect(await store.get("code:1")).toBe("v");
    clock.advance(1_500);
    expect(await store.get("code:1")).toBeUndefined();
    expect(await store.take("code:1")).toBeUndefined();
  });

  it("restarts the TTL when a key is put again", async () => {
    const { store, clock } = setup();
    await store.put("k", 1, 10);
    clock.advance(8_000);
    await store.put("k", 2, 10);
    clock.advance(8_000);
    expect(await store.get("k")).toBe(2);
  });

  it("takes a value once", async () => {
    const { store } = setup();
    await store.put("code:1", { sub: "alice" }, 60);
    expect(await store.take("code:1")).toEqual({ sub: "alice" });
    expect(await store.take("code:1")).toBeUndefined();
    expect(await store.get("code:1")).toBeUndefined();
  });

  it("gives a value to exactly one of two racing takes", async () => {
    const { store } = setup();
    for (let i = 0; i < 50; i++) {
      await store.put(`code:${i}`, i, 60);
      const results = await Promise.all([store.take(`code:${i}`), store.take(`code:${i}`)]);
      expect(results.filter((r) => r !== undefined)).toEqual([i]);
    }
  });

  it("adds first-writer-wins", async () => {
    const { store } = setup();
    expect(await store.add("lock:1", "first", 60)).toBe(true);
    expect(await store.add("lock:1", "second", 60)).toBe(false);
    expect(await store.get("lock:1")).toBe("first");
  });

  it("lets exactly one of many racing adds win", async () => {
    const { store } = setup();
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => store.add("lock:race", i, 60)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await store.get("lock:race")).toBe(wins.indexOf(true));
  });

  it("adds over an expired entry", async () => {
    const { store, clock } = setup();
    await store.add("lock:1", "old", 5);
    clock.advance(6_000);
    expect(await store.add("lock:1", "new", 5)).toBe(true);
    expect(await store.get("lock:1")).toBe("new");
  });

  it("deletes", async () => {
    const { store } = setup();
    await store.put("k", 1, 60);
    await store.delete("k");
    expect(await store.get("k")).toBeUndefined();
    await expect(store.delete("never-written")).resolves.toBeUndefined();
  });

  it.each([[0], [-1], [Number.NaN]])("refuses a write with TTL %s", async (ttl) => {
    const { store } = setup();
    await expect(store.put("k", 1, ttl)).rejects.toThrow(RangeError);
    await expect(store.add("k", 1, ttl)).rejects.toThrow(RangeError);
    expect(await store.get("k")).toBeUndefined();
  });

  it("sweeps expired entries as it is written to, without reads", async () => {
    const { store, clock } = setup();
    for (let i = 0; i < 64; i++) await store.put(`old:${i}`, i, 1);
    clock.advance(2_000);
    for (let i = 0; i < 256; i++) await store.put(`new:${i}`, i, 60);
    expect(store.size).toBeLessThanOrEqual(256);
  });

  it("empties on close", async () => {
    const { store } = setup();
    await store.put("k", 1, 60);
    await store.close();
    expect(store.size).toBe(0);
  });
});
