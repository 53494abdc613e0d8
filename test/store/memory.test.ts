import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { MemoryStore } from "../../src/store/memory.js";
import { mulberry32 } from "../support/fuzz.js";

/**
 * HI6: what the memory backend holds as time passes, whatever order keys were written in. The bound:
 * right after any write (put, add, increment) it holds no expired entry; between writes, only those
 * that expired since the last one. The Store contract itself is in contract.test.ts.
 */
const setup = () => {
  const clock = new ManualClock();
  return { clock, store: new MemoryStore(clock) };
};
const YEAR = 365 * 24 * 3600;

describe("MemoryStore expiry", () => {
  it.each([[65], [0]])("HI6 %i long-lived keys, then 100,000 of 1 s: held never exceeds the live ones after a write", async (longLived) => {
    const { store, clock } = setup();
    for (let i = 0; i < longLived; i++) await store.put(`client:${i}`, i, YEAR);
    // ten writes a millisecond for 10 s: at any moment the last second's 10,000 are live
    let mostHeld = 0;
    for (let i = 0; i < 100_000; i++) {
      if (i % 10 === 0 && i > 0) clock.advance(1);
      await store.put(`code:${i}`, i, 1);
      const expired = Math.max(0, 10 * (Math.floor(i / 10) - 999));
      if (i % 1_000 === 999) expect(store.size, `after write ${i}`).toBe(longLived + i + 1 - expired);
      mostHeld = Math.max(mostHeld, store.size);
    }
    expect(mostHeld).toBe(longLived + 10_000);

    clock.advance(1_000);
    const before = store.examined;
    await store.put("sess:0", "first write after all expired", 60);
    expect(store.size).toBe(longLived + 1);
    expect(store.examined - before).toBe(10_000 + 1); // each expired entry once, plus the live one it stopped at
    for (let i = 0; i < longLived; i++) expect(await store.get(`client:${i}`)).toBe(i);
  });

  it("HI6 a write looks at one entry when nothing has expired, however many long-lived keys sit first", async () => {
    const { store } = setup();
    for (let i = 0; i < 65; i++) await store.put(`client:${i}`, i, YEAR);
    for (let i = 0; i < 50_000; i++) await store.put(`code:${i}`, i, 600);
    const before = store.examined;
    for (let i = 0; i < 1_000; i++) await store.put(`sess:${i}`, i, 60);
    expect(store.examined - before).toBe(1_000);
  });

  it("HI6 random writes, rewrites, deletes and takes over random TTLs: after every write exactly the live entries are held", async () => {
    const { store, clock } = setup();
    const rand = mulberry32(16_07);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
    const TTLS = [0.001, 0.05, 0.5, 1, 3, 60, YEAR];
    /** What each key should hold: its value and when it expires. */
    const model = new Map<string, { value: number; expiresAt: number }>();
    const live = (key: string) => {
      const entry = model.get(key);
      return entry && entry.expiresAt > clock.now() ? entry : undefined;
    };
    const liveCount = () => [...model.keys()].filter((key) => live(key)).length;

    for (let step = 0; step < 20_000; step++) {
      const key = `k:${Math.floor(rand() * 1_500)}`;
      const ttl = pick(TTLS);
      const expiresAt = clock.now() + Math.ceil(ttl * 1000);
      switch (pick(["put", "put", "add", "increment", "delete", "take", "get", "advance"] as const)) {
        case "put":
          await store.put(key, step, ttl);
          model.set(key, { value: step, expiresAt });
          break;
        case "add": {
          const wrote = live(key) === undefined;
          expect(await store.add(key, step, ttl)).toBe(wrote);
          if (wrote) model.set(key, { value: step, expiresAt });
          break;
        }
        case "increment": {
          const entry = live(key);
          const counted = entry ? { value: entry.value + 1, expiresAt: entry.expiresAt } : { value: 1, expiresAt };
          model.set(key, counted);
          expect(await store.increment(key, ttl)).toBe(counted.value);
          break;
        }
        case "delete":
          await store.delete(key);
          model.delete(key);
          continue;
        case "take":
          expect(await store.take(key)).toBe(live(key)?.value);
          model.delete(key);
          continue;
        case "get":
          expect(await store.get(key)).toBe(live(key)?.value);
          continue;
        case "advance":
          clock.advance(Math.floor(rand() * 700));
          continue;
      }
      expect(store.size, `step ${step}`).toBe(liveCount());
    }
    clock.advance(5_000);
    await store.put("last", 0, 60);
    expect(store.size).toBe(liveCount() + 1);
    for (const key of model.keys()) expect(await store.get(key), key).toBe(live(key)?.value);
  });
});
