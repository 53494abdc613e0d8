import { rmSync } from "node:fs";
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
const BACKING_OFF = "Too many failed sign-ins for this user name from this address.";
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

  /** Every address guesses wrong for `name` as soon as its waits allow, for `ms` of the clock: the guesses checked. */
  async function attack(addresses: string[], name: string, ms: number) {
    const end = clock.now() + ms;
    const next = new Map(addresses.map((address) => [address, clock.now()]));
    let checked = 0;
    for (;;) {
      const [address, at] = [...next].reduce((soonest, entry) => (entry[1] < soonest[1] ? entry : soonest));
      if (at >= end) break;
      clock.advance(at - clock.now());
      const verdict = await signIn(address, name);
      if ("wrong" in verdict) checked++;
      next.set(address, clock.now() + ("wait" in verdict ? verdict.wait * 1000 : 0));
    }
    clock.advance(end - clock.now());
    return checked;
  }

  it("HI7 a user who mistyped at their own address is not held there by another address's guessing: after their own back-off the right password passes", async () => {
    const own = "10.0.0.1";
    for (let i = 0; i < 3; i++) expect(await signIn(own, ADMIN.username)).toEqual({ wrong: true });
    // what the address's own three failures earn, and no more
    expect(await signIn(own, ADMIN.username, ADMIN.password)).toEqual({ wait: 1, message: BACKING_OFF });
    let guessed = 0;
    const answers: PasswordVerdict[] = [];
    for (let i = 0; i < 36; i++) {
      guessed += await attack(["198.51.100.66"], ADMIN.username, 300_000);
      answers.push(await signIn(own, ADMIN.username, ADMIN.password));
    }
    expect(guessed).toBeGreaterThan(15);
    expect(answers).toEqual(Array(36).fill({ user: ADMIN.username }));
  });

  it("HI7 guesses from other addresses never hold the user back on a clean address", async () => {
    await drive(ADMIN.username, 13, ["198.51.100.1"]);
    const held = { wait: 900, message: BACKING_OFF };
    expect(await signIn("198.51.100.1", ADMIN.username, ADMIN.password)).toEqual(held);
    expect(await signIn("203.0.113.9", ADMIN.username, ADMIN.password)).toEqual({ user: ADMIN.username });
    // the user's sign-in does not reset the back-off another address earned
    expect(await signIn("198.51.100.1", ADMIN.username)).toEqual(held);
    // a new address starts its own count: two free failures, a third, then its own 1 s
    const fresh = [await signIn("192.0.2.7", ADMIN.username), await signIn("192.0.2.7", ADMIN.username), await signIn("192.0.2.7", ADMIN.username)];
    expect(fresh).toEqual(Array(3).fill({ wrong: true }));
    expect(await signIn("192.0.2.7", ADMIN.username, ADMIN.password)).toEqual({ wait: 1, message: BACKING_OFF });
    // a success forgets only its own address's failures
    clock.advance(1000);
    expect(await signIn("192.0.2.7", ADMIN.username, ADMIN.password)).toEqual({ user: ADMIN.username });
    for (let i = 0; i < 3; i++) expect(await signIn("192.0.2.7", ADMIN.username)).toEqual({ wrong: true });
    expect(await signIn("198.51.100.1", ADMIN.username)).toMatchObject({ message: BACKING_OFF });
  });

  it("HI7 an address waits 1 s, 2 s, 4 s… up to 15 minutes from its own 3rd failure for a name", async () => {
    expect(Array.from({ length: 14 }, (_, i) => backoffSeconds(i))).toEqual([0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]);
    const one = await drive(ADMIN.username, 5, ["198.51.100.1"]);
    expect(one.map((v) => ("wait" in v ? v.wait : "wrong"))).toEqual(["wrong", "wrong", "wrong", 1, "wrong", 2, "wrong"]);
    // counted per name: the same address is not held for another name
    expect(await signIn("198.51.100.1", "someone")).toEqual({ wrong: true });
  });

  it("HI7 each address gets at most 15 guesses at one name in the first hour, then 4 an hour", async () => {
    const addresses = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
    expect(await attack(addresses, ADMIN.username, 3_600_000)).toBe(15 * addresses.length);
    expect(await attack(addresses, ADMIN.username, 3_600_000)).toBe(4 * addresses.length);
    expect(await attack(addresses, ADMIN.username, 3_600_000)).toBe(4 * addresses.length);
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

  it("HI7 parallel guesses for one name from one address are checked one at a time", async () => {
    const burst = await Promise.all(Array.from({ length: 6 }, () => signIn("203.0.113.9", ADMIN.username)));
    expect(burst.filter((v) => "wrong" in v)).toHaveLength(1);
    expect(burst.filter((v) => "wait" in v && v.wait === 1)).toHaveLength(5);
    expect(checks.total).toBe(1);
    // held, a burst is refused unchecked: the lock holder reads the back-off under it
    for (let i = 0; i < 2; i++) expect(await signIn("203.0.113.9", ADMIN.username)).toEqual({ wrong: true });
    checks.total = 0;
    const held = await Promise.all(Array.from({ length: 6 }, () => signIn("203.0.113.9", ADMIN.username)));
    expect(held.every((v) => "wait" in v)).toBe(true);
    expect(checks.total).toBe(0);
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
