import { rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { silentLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import { killAll, startRedis, tempDir, type RedisServer } from "../support/processes.js";

/** One backend as the contract sees it: fresh stores on one shared state, and a way to let time pass. */
interface Harness {
  /** A store on this test's state; every store opened here sees the others' writes (memory: one store). */
  open(): Promise<Store>;
  /** Let `seconds` pass: the ManualClock moves, or (Redis, which keeps real time) real time passes. */
  elapse(seconds: number): Promise<void>;
  /** The TTL expiry tests write with: long under a ManualClock, short under Redis's real clock. */
  ttl: number;
}

let redis: RedisServer;
let raw: Redis;
const dirs: string[] = [];
const opened: Store[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  raw?.disconnect();
  await redis?.close();
  killAll();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const track = async (store: Promise<Store>): Promise<Store> => {
  opened.push(await store);
  return opened.at(-1)!;
};

const underManualClock = (open: (clock: ManualClock) => Promise<Store>): Harness => {
  const clock = new ManualClock();
  return {
    open: () => track(open(clock)),
    elapse: async (seconds) => clock.advance(seconds * 1000),
    ttl: 10,
  };
};

const BACKENDS: ReadonlyArray<{ name: string; shared: boolean; harness: () => Promise<Harness> }> = [
  { name: "memory", shared: false, harness: async () => underManualClock(async (clock) => new MemoryStore(clock)) },
  {
    name: "sqlite",
    shared: true,
    harness: async () => {
      const dir = tempDir("gateway-store");
      dirs.push(dir);
      return underManualClock((clock) => SqliteStore.open(join(dir, "data"), clock));
    },
  },
  {
    name: "redis",
    shared: true,
    harness: async () => {
      await raw.flushdb();
      return { open: () => track(RedisStore.open(redis.url, silentLogger)), elapse: (seconds) => sleep(seconds * 1000), ttl: 0.4 };
    },
  },
];

describe.each(BACKENDS)("Store contract: $name", ({ harness }) => {
  let h: Harness;
  let store: Store;
  beforeEach(async () => {
    h = await harness();
    store = await h.open();
  });

  it("returns what was put, as a copy that neither side can change", async () => {
    const value = { sub: "alice", scopes: ["repo"], n: 1.5, ok: true, none: null, text: "ü ✓" };
    await store.put("client:1", value, 60);
    value.scopes.push("mutated");
    const read = await store.get<typeof value>("client:1");
    expect(read).toEqual({ sub: "alice", scopes: ["repo"], n: 1.5, ok: true, none: null, text: "ü ✓" });
    read!.scopes.push("mutated");
    expect(await store.get("client:1")).toEqual({ sub: "alice", scopes: ["repo"], n: 1.5, ok: true, none: null, text: "ü ✓" });
  });

  it("round-trips plain JSON values: string, number, boolean, array", async () => {
    for (const [i, value] of ["text", 42, false, [1, "two"]].entries()) {
      await store.put(`k:${i}`, value, 60);
      expect(await store.get(`k:${i}`)).toEqual(value);
    }
  });

  it("answers undefined for a key never written, from get and take", async () => {
    expect(await store.get("client:none")).toBeUndefined();
    expect(await store.take("code:none")).toBeUndefined();
  });

  it("stops serving a value once its TTL has passed", async () => {
    await store.put("code:1", "v", h.ttl);
    await h.elapse(h.ttl * 0.5);
    expect(await store.get("code:1")).toBe("v");
    await h.elapse(h.ttl * 0.7);
    expect(await store.get("code:1")).toBeUndefined();
    expect(await store.take("code:1")).toBeUndefined();
  });

  it("restarts the TTL when a key is put again", async () => {
    await store.put("k", 1, h.ttl);
    await h.elapse(h.ttl * 0.6);
    await store.put("k", 2, h.ttl);
    await h.elapse(h.ttl * 0.6);
    expect(await store.get("k")).toBe(2);
    await h.elapse(h.ttl * 0.6);
    expect(await store.get("k")).toBeUndefined();
  });

  it("takes a value once", async () => {
    await store.put("code:1", { sub: "alice" }, 60);
    expect(await store.take("code:1")).toEqual({ sub: "alice" });
    expect(await store.take("code:1")).toBeUndefined();
    expect(await store.get("code:1")).toBeUndefined();
  });

  it("gives a value to exactly one of two racing takes (50 rounds)", async () => {
    for (let i = 0; i < 50; i++) {
      await store.put(`code:${i}`, i, 60);
      const results = await Promise.all([store.take(`code:${i}`), store.take(`code:${i}`)]);
      expect(results.filter((r) => r !== undefined)).toEqual([i]);
    }
  });

  it("adds only when the key is absent, first writer wins", async () => {
    expect(await store.add("lock:1", "first", 60)).toBe(true);
    expect(await store.add("lock:1", "second", 60)).toBe(false);
    expect(await store.get("lock:1")).toBe("first");
    await store.put("lock:2", "put", 60);
    expect(await store.add("lock:2", "added", 60)).toBe(false);
    expect(await store.get("lock:2")).toBe("put");
  });

  it("lets exactly one of ten racing adds win", async () => {
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => store.add("lock:race", i, 60)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await store.get("lock:race")).toBe(wins.indexOf(true));
  });

  it("adds over an expired entry, with the new TTL", async () => {
    await store.add("lock:1", "old", h.ttl);
    await h.elapse(h.ttl * 1.2);
    expect(await store.add("lock:1", "new", h.ttl)).toBe(true);
    expect(await store.get("lock:1")).toBe("new");
    await h.elapse(h.ttl * 0.5);
    expect(await store.get("lock:1")).toBe("new");
  });

  it("deletes, and deleting a missing key is fine", async () => {
    await store.put("k", 1, 60);
    await store.delete("k");
    expect(await store.get("k")).toBeUndefined();
    expect(await store.add("k", 2, 60)).toBe(true);
    await expect(store.delete("never-written")).resolves.toBeUndefined();
  });

  it("counts 1, 2, 3 in a window and restarts at 1 after it", async () => {
    expect(await store.increment("rate:a", h.ttl)).toBe(1);
    expect(await store.increment("rate:a", h.ttl)).toBe(2);
    expect(await store.increment("rate:a", h.ttl)).toBe(3);
    expect(await store.increment("rate:b", h.ttl)).toBe(1);
    await h.elapse(h.ttl * 1.2);
    expect(await store.increment("rate:a", h.ttl)).toBe(1);
  });

  it("does not extend a window on later hits: it ends a TTL after the first", async () => {
    expect(await store.increment("rate:a", h.ttl)).toBe(1);
    await h.elapse(h.ttl * 0.6);
    expect(await store.increment("rate:a", h.ttl)).toBe(2);
    await h.elapse(h.ttl * 0.6);
    expect(await store.increment("rate:a", h.ttl)).toBe(1);
  });

  it.each([[0], [-1], [Number.NaN], [Number.POSITIVE_INFINITY]])("refuses a write with TTL %s (RangeError), writing nothing", async (ttl) => {
    await expect(store.put("k", 1, ttl)).rejects.toThrow(RangeError);
    await expect(store.add("k", 1, ttl)).rejects.toThrow(RangeError);
    await expect(store.increment("k", ttl)).rejects.toThrow(RangeError);
    expect(await store.get("k")).toBeUndefined();
  });

  it("closes, and closing again is fine", async () => {
    await store.put("k", 1, 60);
    await expect(store.close()).resolves.toBeUndefined();
    await expect(store.close()).resolves.toBeUndefined();
  });
});

describe.each(BACKENDS.filter((b) => b.shared))("Store contract across two instances on one state: $name", ({ harness }) => {
  let h: Harness;
  let a: Store;
  let b: Store;
  beforeEach(async () => {
    h = await harness();
    [a, b] = [await h.open(), await h.open()];
  });

  it("sees the other instance's writes, deletes and expiry", async () => {
    await a.put("client:1", { n: 1 }, h.ttl);
    expect(await b.get("client:1")).toEqual({ n: 1 });
    await b.delete("client:1");
    expect(await a.get("client:1")).toBeUndefined();
    await b.put("client:2", "v", h.ttl);
    await h.elapse(h.ttl * 1.2);
    expect(await a.get("client:2")).toBeUndefined();
  });

  it("gives a value to exactly one of two racing takes, one per instance (100 rounds)", async () => {
    for (let i = 0; i < 100; i++) {
      await (i % 2 ? a : b).put(`code:${i}`, i, 60);
      const results = await Promise.all(i % 3 ? [a.take(`code:${i}`), b.take(`code:${i}`)] : [b.take(`code:${i}`), a.take(`code:${i}`)]);
      expect(results.filter((r) => r !== undefined)).toEqual([i]);
    }
  });

  it("lets exactly one of two racing adds win, one per instance (100 rounds)", async () => {
    for (let i = 0; i < 100; i++) {
      const wins = await Promise.all([a.add(`lock:${i}`, "a", 60), b.add(`lock:${i}`, "b", 60)]);
      expect(wins.filter(Boolean)).toHaveLength(1);
      expect(await a.get(`lock:${i}`)).toBe(wins[0] ? "a" : "b");
    }
  });

  it("counts 100 racing increments across both instances to exactly 100, each count once", async () => {
    const counts = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).increment("rate:shared", 60)));
    expect(counts.toSorted((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await a.increment("rate:shared", 60)).toBe(101);
  });
});

/** Everything a scan yields, in order, duplicates kept. */
const scanAll = async <T = unknown>(store: Store, prefix: string): Promise<Array<[string, T]>> => {
  const found: Array<[string, T]> = [];
  for await (const entry of store.scan<T>(prefix)) found.push(entry);
  return found;
};
const sortedKeys = (entries: Array<[string, unknown]>) => entries.map(([key]) => key).toSorted();
/** Writes many keys at once (Redis round trips overlap), in chunks so nothing queues without bound. */
const putMany = async (store: Store, entries: Array<[string, unknown]>, ttl = 600) => {
  for (let i = 0; i < entries.length; i += 500) await Promise.all(entries.slice(i, i + 500).map(([key, value]) => store.put(key, value, ttl)));
};

describe.each(BACKENDS)("Store.scan contract: $name", ({ harness }) => {
  let h: Harness;
  let store: Store;
  beforeEach(async () => {
    h = await harness();
    store = await h.open();
  });

  it("returns every live key with the prefix and its value, and none of another prefix, even one the prefix begins", async () => {
    await putMany(store, [
      ["ab:1", { n: 1 }],
      ["ab:2", [2]],
      ["ab:", "the prefix itself"],
      ["ab:x:3", 3],
      ["abc:1", "longer prefix"],
      ["ab", "shorter"],
      ["ab;1", "the next character"],
      ["a:1", "other"],
      ["xab:1", "inside"],
    ]);
    expect(new Map(await scanAll(store, "ab:"))).toEqual(
      new Map<string, unknown>([
        ["ab:1", { n: 1 }],
        ["ab:2", [2]],
        ["ab:", "the prefix itself"],
        ["ab:x:3", 3],
      ]),
    );
    expect(sortedKeys(await scanAll(store, "abc:"))).toEqual(["abc:1"]);
    expect(await scanAll(store, "none:")).toEqual([]);
    expect(await scanAll(store, "")).toHaveLength(9);
  });

  it("leaves out expired and deleted keys", async () => {
    await store.put("s:long", "kept", 600);
    await store.put("s:short", "gone", h.ttl);
    await store.add("s:lock", "gone", h.ttl);
    await store.increment("s:count", h.ttl);
    await store.put("s:deleted", "gone", 600);
    await store.put("s:taken", "gone", 600);
    await store.delete("s:deleted");
    await store.take("s:taken");
    expect(sortedKeys(await scanAll(store, "s:"))).toEqual(["s:count", "s:lock", "s:long", "s:short"]);
    await h.elapse(h.ttl * 1.2);
    expect(await scanAll(store, "s:")).toEqual([["s:long", "kept"]]);
  });

  it("takes glob and escape characters in a prefix literally", async () => {
    const keys = ["g*:1", "g?:1", "g[a]:1", "g[^a]:1", "g\\:1", "g\\*:1", "ga:1", "gb:1", "ga]:1", "g%:1", "g_:1"];
    await putMany(
      store,
      keys.map((key) => [key, key]),
    );
    for (const key of keys) {
      const prefix = key.slice(0, -1);
      expect(await scanAll(store, prefix), prefix).toEqual([[key, key]]);
    }
    expect(sortedKeys(await scanAll(store, "g"))).toEqual(keys.toSorted());
  });

  it("finds keys with characters beyond the Basic Multilingual Plane and at its end", async () => {
    const keys = ["u:é", "u:😀", "u:\uffff", "u:\uffffz", "u:\u{10ffff}", "u:😀:more"];
    await putMany(store, [...keys.map((key): [string, unknown] => [key, key]), ["u;", "next"], ["u", "shorter"]]);
    expect(sortedKeys(await scanAll(store, "u:"))).toEqual(keys.toSorted());
    expect(sortedKeys(await scanAll(store, "u:😀"))).toEqual(["u:😀", "u:😀:more"]);
    expect(sortedKeys(await scanAll(store, "u:\uffff"))).toEqual(["u:\uffff", "u:\uffffz"]);
  });

  it("reads more pages than one (SQLite: 500 a page, Redis: 1000 a SCAN), each key once", async () => {
    const wanted = Array.from({ length: 2_345 }, (_, i): [string, unknown] => [`page:${i}`, { i }]);
    await putMany(store, [...wanted, ...Array.from({ length: 1_000 }, (_, i): [string, unknown] => [`pag:${i}`, i]), ["page", "shorter"]]);
    const found = await scanAll(store, "page:");
    expect(found).toHaveLength(wanted.length);
    expect(new Map(found)).toEqual(new Map(wanted));
  });

  it("returns every key that lives through the scan once, with writes and deletes between pages", async () => {
    const stable = Array.from({ length: 1_500 }, (_, i): [string, unknown] => [`w:s:${i}`, i]);
    const doomed = Array.from({ length: 600 }, (_, i) => `w:d:${i}`);
    await putMany(store, [...stable, ...doomed.map((key): [string, unknown] => [key, "doomed"])]);

    const found: Array<[string, unknown]> = [];
    for await (const entry of store.scan("w:")) {
      const step = found.push(entry);
      if (step > doomed.length) continue; // new keys found would otherwise make more new keys, without end
      await Promise.all([
        store.put(`w:n:${step}`, "new", 600),
        store.put(`x:${step}`, "other prefix", 600),
        store.put(entry[0], "rewritten", 600),
        store.delete(doomed[step - 1]!),
      ]);
    }

    const keys = found.map(([key]) => key);
    expect(keys.length - new Set(keys).size, "keys returned twice").toBe(0);
    expect(keys.filter((key) => !key.startsWith("w:"))).toEqual([]);
    const byKey = new Map(found);
    for (const [key, value] of stable) expect(byKey.get(key), key).toEqual(value);
    for (const [key, value] of found.filter(([key]) => !key.startsWith("w:s:"))) expect(value).toBe(key.startsWith("w:n:") ? "new" : "doomed");
  });
});
