import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { passwordSignIn, type PasswordVerdict } from "../../src/login/password-sign-in.js";
import { hashPasswordSync, passwordChecker } from "../../src/login/passwords.js";
import { silentLogger } from "../../src/log.js";
import { backoffSeconds, RATE_RULES } from "../../src/ratelimit.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import { killAll, startRedis, tempDir, type RedisServer } from "../support/processes.js";

/** docs/security.md WP6, HI7, HI8: the sign-in limits on real stores and real scrypt. End to end: login.test.ts. */

const ADMIN = { username: "admin", password: "the admin's long password" };
/** A cheaper scrypt than the default, for speed: an unknown name is checked against a dummy of the same cost. */
const COST = { ln: 10, r: 8, p: 1 };
const BACKING_OFF = "Too many failed sign-ins for this user name.";
const WINDOW_MS = RATE_RULES.loginFailure.windowSeconds * 1000;

const dirs: string[] = [];
let redis: RedisServer;
let raw: Redis;
beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});
afterAll(async () => {
  raw?.disconnect();
  await redis?.close();
  killAll();
  dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});

/** Redis keeps real time: nothing here waits for a TTL, the windows and back-off follow the clock given. */
const backends: Record<string, (clock: ManualClock) => Promise<Store>> = {
  memory: async (clock) => new MemoryStore(clock),
  sqlite: (clock) => {
    dirs.push(tempDir("lockout"));
    return SqliteStore.open(dirs.at(-1)!, clock);
  },
  redis: async () => {
    await raw.flushdb();
    return RedisStore.open(redis.url, silentLogger);
  },
};

describe.each(Object.keys(backends))("sign-in limits on the %s store", (backend) => {
  let clock: ManualClock;
  let store: Store;
  /** Passwords checked so far, and the most checked at once. */
  let checks: { total: number; running: number; most: number };
  beforeEach(async () => {
    clock = new ManualClock();
    store = await backends[backend]!(clock);
    checks = { total: 0, running: 0, most: 0 };
  });
  afterEach(() => store.close());

  const check = passwordChecker([{ username: ADMIN.username, passwordHash: hashPasswordSync(ADMIN.password, COST) }]);
  const deps = () => ({
    store,
    clock,
    checkPassword: async (username: unknown, password: unknown) => {
      checks.total++;
      checks.most = Math.max(checks.most, ++checks.running);
      try {
        return await check(username, password);
      } finally {
        checks.running--;
      }
    },
  });
  const signIn = (address: string, username: string, password = "wrong"): Promise<PasswordVerdict> => passwordSignIn(deps(), address, username, password);

  /** Fail for `name` from four addresses in turn until it has `failures`, waiting out every back-off; the verdicts seen. */
  async function drive(name: string, failures: number, addresses = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]) {
    const seen: PasswordVerdict[] = [];
    for (let i = 0; seen.filter((v) => "wrong" in v).length < failures; i++) {
      const verdict = await signIn(addresses[i % addresses.length]!, name);
      seen.push(verdict);
      if ("wait" in verdict) clock.advance(verdict.wait * 1000);
    }
    return seen;
  }

  it("HI7 guesses from other addresses never hold the user back on a clean address", async () => {
    await drive(ADMIN.username, 13);
    const held = { wait: 900, message: BACKING_OFF };
    // an address that failed twice for the name waits with the name, even with the right password
    expect(await signIn("198.51.100.1", ADMIN.username, ADMIN.password)).toEqual(held);
    expect(await signIn("203.0.113.9", ADMIN.username, ADMIN.password)).toEqual({ user: ADMIN.username });
    // the user's sign-in does not reset the name's back-off for the others
    expect(await signIn("198.51.100.2", ADMIN.username)).toEqual(held);
    // a new address gets its two free failures, then waits with the others
    expect([await signIn("192.0.2.7", ADMIN.username), await signIn("192.0.2.7", ADMIN.username)]).toEqual([{ wrong: true }, { wrong: true }]);
    expect(await signIn("192.0.2.7", ADMIN.username, ADMIN.password)).toEqual(held);
    // a success forgets only its own address's failures
    expect(await signIn("203.0.113.9", ADMIN.username)).toEqual({ wrong: true });
    expect(await signIn("203.0.113.9", ADMIN.username, ADMIN.password)).toEqual({ user: ADMIN.username });
  });

  it("HI7 a held address waits 1 s, 2 s, 4 s… up to 15 minutes from the name's 3rd failure", async () => {
    expect(Array.from({ length: 14 }, (_, i) => backoffSeconds(i))).toEqual([0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]);
    // one address alone meets the schedule from its 3rd failure, as before
    const one = await drive(ADMIN.username, 5, ["198.51.100.1"]);
    expect(one.map((v) => ("wait" in v ? v.wait : "wrong"))).toEqual(["wrong", "wrong", "wrong", 1, "wrong", 2, "wrong"]);
  });

  it("HI7 an unknown user name meets exactly the limits a real one does", async () => {
    const script = async (name: string, prefix: string) => [
      ...(await drive(
        name,
        14,
        [1, 2, 3].map((i) => `${prefix}.${i}`),
      )),
      await signIn(`${prefix}.1`, name),
      await signIn(`${prefix}.9`, name),
    ];
    const real = await script(ADMIN.username, "198.51.100");
    expect(real.some((v) => "wait" in v)).toBe(true);
    expect(await script("no-such-user", "192.0.2")).toEqual(real);
  });

  it("HI7 parallel guesses are checked one at a time per address, and per name once held", async () => {
    const held = Array.from({ length: 8 }, (_, i) => `198.51.100.${i}`);
    for (const address of held) for (let i = 0; i < 2; i++) expect(await signIn(address, ADMIN.username)).toEqual({ wrong: true });
    clock.advance(900_000);
    checks.total = 0;
    const together = await Promise.all(held.map((address) => signIn(address, ADMIN.username)));
    expect(together.filter((v) => "wrong" in v)).toHaveLength(1);
    expect(checks.total).toBe(1);

    // one clean address, six guesses at once: one is checked, the others wait their turn
    const burst = await Promise.all(Array.from({ length: 6 }, () => signIn("203.0.113.9", "someone")));
    expect(burst.filter((v) => "wrong" in v)).toHaveLength(1);
    expect(burst.filter((v) => "wait" in v && v.wait === 1)).toHaveLength(5);
  });

  it("HI7 a held address that queued for the name's lock reads the back-off again under it", async () => {
    const held = ["198.51.100.1", "198.51.100.2"];
    for (const address of held) for (let i = 0; i < 2; i++) expect(await signIn(address, ADMIN.username)).toEqual({ wrong: true });
    clock.advance(900_000);
    // both read "no wait"; the second reaches the name's lock only after the first has failed and let go of it
    const slow = lateSecondClaim(store, "rate:login-user-busy:", 200);
    const both = await Promise.all(held.map((address) => passwordSignIn({ ...deps(), store: slow }, address, ADMIN.username, "wrong")));
    expect(both).toEqual(expect.arrayContaining([{ wrong: true }, { wait: backoffSeconds(5), message: BACKING_OFF }]));
  });

  it("HI8 of 40 parallel wrong sign-ins with distinct names from one address, at most the limit are checked", async () => {
    const verdicts = await Promise.all(Array.from({ length: 40 }, (_, i) => signIn("198.51.100.40", `guess-${i}`)));
    expect(verdicts.filter((v) => "wrong" in v)).toHaveLength(RATE_RULES.loginFailure.limit);
    expect(checks.total).toBe(RATE_RULES.loginFailure.limit);
    expect(checks.most).toBeLessThanOrEqual(RATE_RULES.loginFailure.limit);
    for (const v of verdicts.filter((v) => "wait" in v)) expect(v).toMatchObject({ message: RATE_RULES.loginFailure.message });
  });

  it("HI8 a success gives its reservation back: the limit counts failures, in the clock's 15-minute windows", async () => {
    clock.advance(WINDOW_MS - (clock.now() % WINDOW_MS) + 100_000);
    const address = "198.51.100.50";
    for (let i = 0; i < RATE_RULES.loginFailure.limit - 1; i++) expect(await signIn(address, `guess-${i}`)).toEqual({ wrong: true });
    for (let i = 0; i < 5; i++) expect(await signIn(address, ADMIN.username, ADMIN.password)).toEqual({ user: ADMIN.username });
    expect(await signIn(address, "guess-last")).toEqual({ wrong: true });
    expect(await signIn(address, ADMIN.username, ADMIN.password)).toEqual({ wait: 800, message: RATE_RULES.loginFailure.message });
    expect(await signIn("198.51.100.51", ADMIN.username, ADMIN.password)).toEqual({ user: ADMIN.username });
    clock.advance(800_000);
    expect(await signIn(address, ADMIN.username, ADMIN.password)).toEqual({ user: ADMIN.username });
  });
});

/** The real store, with every claim (`add`) of a key under `prefix` after the first held back `ms`: a slow instance. */
function lateSecondClaim(store: Store, prefix: string, ms: number): Store {
  let claims = 0;
  return new Proxy(store, {
    get(target, property) {
      if (property !== "add") return (Reflect.get(target, property, target) as (...args: unknown[]) => unknown).bind(target);
      return async (key: string, value: unknown, ttl: number) => {
        if (key.startsWith(prefix) && claims++ > 0) await sleep(ms);
        return target.add(key, value, ttl);
      };
    },
  });
}
