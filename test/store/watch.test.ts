import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { silentLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import { DATABASE_FILE, SqliteStore } from "../../src/store/sqlite.js";
import type { Store, Watcher } from "../../src/store/store.js";
import { killAll, startRedis, tempDir, type RedisServer } from "../support/processes.js";

/** What a watch was told, in order. */
class Recorder implements Watcher {
  readonly records = new Map<string, number>();
  readonly lostReasons: string[] = [];
  confirmedAt = Number.NEGATIVE_INFINITY;
  record(key: string, ttlMs: number): void {
    this.records.set(key, ttlMs);
  }
  current(at: number): void {
    this.confirmedAt = Math.max(this.confirmedAt, at);
  }
  lost(reason: string): void {
    this.confirmedAt = Number.NEGATIVE_INFINITY;
    this.lostReasons.push(reason);
  }
}

let redis: RedisServer;
let admin: Redis;
const dirs: string[] = [];
const opened: Store[] = [];
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.close();
  killAll();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const track = async (store: Promise<Store>): Promise<Store> => {
  opened.push(await store);
  return opened.at(-1)!;
};

/** Each backend: a function opening another store on one shared state (memory: the same store). */
const BACKENDS: ReadonlyArray<{ name: string; shared: boolean; state: () => Promise<() => Promise<Store>> }> = [
  {
    name: "memory",
    shared: false,
    state: async () => {
      const store = new MemoryStore(new ManualClock());
      return () => track(Promise.resolve(store));
    },
  },
  {
    name: "sqlite",
    shared: true,
    state: async () => {
      const dir = tempDir("gateway-watch");
      dirs.push(dir);
      const clock = new ManualClock();
      return () => track(SqliteStore.open(join(dir, "data"), clock));
    },
  },
  {
    name: "redis",
    shared: true,
    state: async () => {
      await admin.flushdb();
      return () => track(RedisStore.open(redis.url, silentLogger));
    },
  },
];

/** Poll every 5 ms until `condition` holds: how long it took; fails past `ms`. */
async function within(what: string, condition: () => boolean, ms: number): Promise<number> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - started;
}

async function watching(store: Store, prefix: string): Promise<Recorder> {
  const recorder = new Recorder();
  stops.push(await store.watch(prefix, recorder));
  return recorder;
}

describe.each(BACKENDS)("Store.publish and Store.watch contract: $name", ({ state }) => {
  it("a watch starts with every live record under its prefix, none of another, and is current", async () => {
    const store = await (await state())();
    await store.publish("revoked:a", { n: 1 }, 60);
    await store.put("revoked:b", { n: 2 }, 60);
    await store.publish("revokedX", { n: 3 }, 60);
    await store.publish("other:c", { n: 4 }, 60);
    const before = performance.now();
    const recorder = await watching(store, "revoked:");
    expect([...recorder.records.keys()].sort()).toEqual(["revoked:a", "revoked:b"]);
    for (const ttl of recorder.records.values()) expect(ttl).toBeGreaterThan(50_000);
    expect(recorder.confirmedAt).toBeGreaterThanOrEqual(before);
  });

  it("tells this store's own watches of a publish before it resolves, and stores the value as put does", async () => {
    const store = await (await state())();
    const recorder = await watching(store, "revoked:");
    await store.publish("revoked:g1", { revokedAt: 1 }, 60);
    expect(recorder.records.get("revoked:g1")).toBeGreaterThan(59_000);
    expect(await store.get("revoked:g1")).toEqual({ revokedAt: 1 });
    await store.publish("other:x", 1, 60);
    expect(recorder.records.has("other:x")).toBe(false);
  });

  it("stays current while nothing happens: confirmed again well within 1 s", async () => {
    const store = await (await state())();
    const recorder = await watching(store, "revoked:");
    await new Promise((r) => setTimeout(r, 1200));
    expect(performance.now() - recorder.confirmedAt).toBeLessThan(1000);
    expect(recorder.lostReasons).toEqual([]);
  });

  it("stops telling once the watch is stopped", async () => {
    const store = await (await state())();
    const recorder = new Recorder();
    const stop = await store.watch("revoked:", recorder);
    await stop();
    await store.publish("revoked:late", 1, 60);
    expect(recorder.records.has("revoked:late")).toBe(false);
  });
});

describe.each(BACKENDS.filter((b) => b.shared))("Store.watch across two instances on one state: $name", ({ name, state }) => {
  it("a publish on one instance reaches the other's watch within 1 s, and the watch is confirmed after it", async () => {
    const open = await state();
    const [a, b] = [await open(), await open()];
    const recorder = await watching(b, "revoked:");
    for (let round = 0; round < 5; round++) {
      const published = performance.now();
      await a.publish(`revoked:g${round}`, { round }, 60);
      await within(`round ${round}`, () => recorder.records.has(`revoked:g${round}`), 1000);
      expect(performance.now() - published, `round ${round}`).toBeLessThan(1000);
    }
    const after = performance.now();
    await within("confirmed after the last publish", () => recorder.confirmedAt > after, 1000);
  });

  if (name === "sqlite")
    it("a poll that cannot read is reported lost, and the watch is current again once it can", async () => {
      const open = await state();
      const store = await open();
      const recorder = await watching(store, "revoked:");
      const dir = dirs.at(-1)!;
      const raw = new Database(join(dir, "data", DATABASE_FILE));
      try {
        raw.exec("ALTER TABLE changes RENAME TO changes_away");
        await within("reported lost", () => recorder.lostReasons.length > 0, 1000);
        expect(recorder.lostReasons[0]).toMatch(/^SQLite read failed/);
        expect(recorder.confirmedAt).toBe(Number.NEGATIVE_INFINITY);
        raw.exec("ALTER TABLE changes_away RENAME TO changes");
        const back = performance.now();
        await within("current again", () => recorder.confirmedAt > back, 1000);
      } finally {
        raw.close();
      }
    });

  if (name === "redis")
    it("a killed subscription is reported lost at once, and on reconnecting catches up on what was published meanwhile", async () => {
      await state();
      // A publishes as a user of its own; B, the default user, is then denied every channel, so its subscription cannot come back
      await admin.acl("SETUSER", "publisher", "on", ">publisher-password", "~*", "&*", "+@all");
      const a = await track(RedisStore.open(redis.url.replace("//", "//publisher:publisher-password@"), silentLogger));
      const b = await track(RedisStore.open(redis.url, silentLogger));
      const recorder = await watching(b, "revoked:");
      try {
        await admin.acl("SETUSER", "default", "resetchannels");
        await admin.client("KILL", "TYPE", "pubsub");
        await within("reported lost", () => recorder.lostReasons.length > 0, 2000);
        await a.publish("revoked:while-away", 1, 60);
        await new Promise((r) => setTimeout(r, 1500)); // B retries its subscription, and is refused
        expect(recorder.records.has("revoked:while-away")).toBe(false);
        expect(recorder.confirmedAt).toBe(Number.NEGATIVE_INFINITY);
      } finally {
        await admin.acl("SETUSER", "default", "allchannels");
      }
      const back = performance.now();
      await within("current again", () => recorder.confirmedAt > back, 5000);
      expect(recorder.records.has("revoked:while-away")).toBe(true);
      expect(recorder.lostReasons[0]).toMatch(/subscription/);
    });
});
