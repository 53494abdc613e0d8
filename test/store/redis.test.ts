import { createServer, type AddressInfo, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Logger } from "../../src/log.js";
import { KEY_PREFIX, RedisStore } from "../../src/store/redis.js";
import { StoreUnavailableError, type Store } from "../../src/store/store.js";
import { freePort, killAll, startRedis, type RedisServer } from "../support/processes.js";

/** A logger that keeps its lines, to check what an outage says (and that no password is in it). */
const recordingLogger = () => {
  const lines: string[] = [];
  const log: Logger = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
  return { log, lines };
};

const servers: RedisServer[] = [];
const stores: Store[] = [];
const raws: Redis[] = [];
const start = async () => servers[servers.push(await startRedis()) - 1]!;
const open = async (url: string, log = recordingLogger().log) => stores[stores.push(await RedisStore.open(url, log)) - 1]!;
/** How a call ended (its rejection, or undefined) and how long it took to. */
const settle = async (call: () => Promise<unknown>) => {
  const started = performance.now();
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, ms: performance.now() - started };
};
/** A plain connection without the gateway's key prefix: sees the keys as they are in Redis. */
const rawClient = (url: string) => raws[raws.push(new Redis(url)) - 1]!;

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const raw of raws.splice(0)) raw.disconnect();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  killAll();
});

describe("RedisStore: keys as written to Redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await start();
  });
  beforeEach(async () => {
    const raw = rawClient(redis.url);
    await raw.flushdb();
    await raw.config("SET", "hz", "10");
  });

  it(`writes every key under the ${KEY_PREFIX} prefix, the value as JSON text`, async () => {
    const store = await open(redis.url);
    const raw = rawClient(redis.url);
    await store.put("client:1", { name: "a" }, 60);
    await store.add("lock:1", true, 60);
    await store.increment("rate:login:1.2.3.4", 60);
    await store.put("code:1", "gone soon", 60);
    await store.take("code:1");
    expect((await raw.keys("*")).toSorted()).toEqual([`${KEY_PREFIX}client:1`, `${KEY_PREFIX}lock:1`, `${KEY_PREFIX}rate:login:1.2.3.4`]);
    expect(await raw.get(`${KEY_PREFIX}client:1`)).toBe('{"name":"a"}');
    await store.delete("client:1");
    expect(await raw.exists(`${KEY_PREFIX}client:1`)).toBe(0);
  });

  it("sets a TTL on every key it writes: put, add and increment", async () => {
    const store = await open(redis.url);
    const raw = rawClient(redis.url);
    await store.put("client:1", 1, 60);
    await store.add("lock:1", 1, 30);
    await store.increment("rate:a", 10);
    for (const [key, ttlMs] of [
      ["client:1", 60_000],
      ["lock:1", 30_000],
      ["rate:a", 10_000],
    ] as const) {
      const pttl = await raw.pttl(`${KEY_PREFIX}${key}`);
      expect(pttl, key).toBeGreaterThan(0);
      expect(pttl, key).toBeLessThanOrEqual(ttlMs);
    }
  });

  it("keeps the window's TTL on later increments instead of restarting it", async () => {
    const store = await open(redis.url);
    const raw = rawClient(redis.url);
    await store.increment("rate:b", 10);
    const first = await raw.pttl(`${KEY_PREFIX}rate:b`);
    await sleep(50);
    await store.increment("rate:b", 10);
    expect(await raw.pttl(`${KEY_PREFIX}rate:b`)).toBeLessThanOrEqual(first - 40);
  });

  it("leaves keys without the prefix alone", async () => {
    const store = await open(redis.url);
    const raw = rawClient(redis.url);
    await raw.set("client:1", "someone else's", "EX", 60);
    expect(await store.get("client:1")).toBeUndefined();
    await store.put("client:1", "ours", 60);
    expect(await raw.get("client:1")).toBe("someone else's");
  });

  it("scans each key once when Redis shrinks its table between SCAN calls, which makes SCAN repeat keys", async () => {
    const store = await open(redis.url);
    const raw = rawClient(redis.url);
    await raw.config("SET", "hz", "100"); // the table is resized by the server's cron: every 10 ms, not 100 (set back by beforeEach)
    // with 2,000 filler keys the table has 4,096 buckets; without them 200 keys are under a tenth of it: it shrinks to 256
    const fill = async (command: "set" | "del") => {
      const pipeline = raw.pipeline();
      for (let i = 0; i < 2_000; i++)
        if (command === "set") pipeline.set(`filler:${i}`, 0);
        else pipeline.del(`filler:${i}`);
      await pipeline.exec();
    };
    // where keys land depends on their names: each round's names give another chance to land across a resize (about 1 in 2)
    let repeated = 0;
    for (let round = 0; round < 12; round++) {
      const wanted = Array.from({ length: 200 }, (_, i) => `w:${round}:${i}`);
      await raw.flushdb();
      await Promise.all(wanted.map((key) => store.put(key, key, 60)));
      await fill("set");
      const keys: string[] = [];
      for await (const [key] of store.scan("w:")) {
        if (keys.push(key) > 1) continue;
        await fill("del"); // after the first SCAN call's batch, before the next call
        await sleep(50);
      }
      repeated += keys.length - new Set(keys).size;
      expect(new Set(keys)).toEqual(new Set(wanted));
    }
    expect(repeated).toBe(0);
  });
});

describe("RedisStore: when Redis goes away", () => {
  const operations: ReadonlyArray<[string, (s: Store) => Promise<unknown>]> = [
    ["get", (s) => s.get("client:kept")],
    ["put", (s) => s.put("client:new", 1, 60)],
    ["add", (s) => s.add("lock:new", 1, 60)],
    ["take", (s) => s.take("code:1")],
    ["delete", (s) => s.delete("client:kept")],
    ["increment", (s) => s.increment("rate:a", 60)],
  ];

  it("rejects every operation with StoreUnavailableError within 3 s, then serves again on the same instance", async () => {
    const redis = await start();
    const { log, lines } = recordingLogger();
    const store = await open(redis.url, log);
    await store.put("client:kept", { name: "acknowledged before the outage" }, 600);

    await redis.stop();
    for (const [name, operation] of operations) {
      const { error, ms } = await settle(() => operation(store));
      expect(error, name).toBeInstanceOf(StoreUnavailableError);
      expect(ms, `${name} took ${Math.round(ms)} ms`).toBeLessThan(3000);
    }

    await redis.start();
    const deadline = Date.now() + 10_000;
    let kept: unknown;
    for (;;) {
      try {
        kept = await store.get("client:kept");
        break;
      } catch (error) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        if (Date.now() > deadline) throw new Error("the store did not serve again within 10 s of Redis coming back", { cause: error });
        await sleep(100);
      }
    }
    expect(kept).toEqual({ name: "acknowledged before the outage" });
    expect(await store.increment("rate:after", 60)).toBe(1);
    expect(
      lines.filter((l) => l.startsWith("warn redis store unreachable")),
      "one warning per outage",
    ).toHaveLength(1);
    expect(lines).toContain("info redis store reachable again");
  });

  it("rejects an operation a hung Redis does not answer within 3 s, and pairs later replies with their calls", async () => {
    const redis = await start();
    const store = await open(redis.url);
    await store.put("client:1", "one", 60);
    await store.put("client:2", "two", 60);
    redis.pause();
    const { error, ms } = await settle(() => store.get("client:1"));
    redis.resume(); // the late reply to the timed-out get arrives first: it must not be taken for the next call's
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(ms).toBeLessThan(3000);
    expect(await store.get("client:2")).toBe("two");
    expect(await store.increment("rate:a", 60)).toBe(1);
    expect(await store.get("client:1")).toBe("one");
  });
});

describe("RedisStore.open", () => {
  it("refuses a Redis nobody listens on, saying so, without the password of the URL", async () => {
    const port = await freePort();
    const { log, lines } = recordingLogger();
    const { error, ms } = await settle(() => RedisStore.open(`redis://:hunter2hunter2@127.0.0.1:${port}`, log).then((store) => store.close()));
    expect(error).toBeInstanceOf(Error);
    const { message } = error as Error;
    expect(message).toContain("cannot reach the Redis store");
    expect(message).toContain(`127.0.0.1:${port}`);
    expect(message).not.toContain("hunter2hunter2");
    expect(lines.join("\n")).not.toContain("hunter2hunter2");
    expect(ms).toBeLessThan(3000);
  });

  it("gives up on a server that accepts the connection but never answers, instead of hanging", async () => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const { error, ms } = await settle(() => RedisStore.open(`redis://127.0.0.1:${port}`, recordingLogger().log).then((store) => store.close()));
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain("cannot reach the Redis store");
      expect(ms).toBeLessThan(10_000); // about 4 s: two command timeouts of 2 s in the handshake
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});
