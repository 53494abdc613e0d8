import { describe, expect, it } from "vitest";
import { DEFAULT_COST, hashPassword, hashPasswordSync, parsePasswordHash, passwordChecker, verifyPassword } from "../../src/login/passwords.js";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const timed = async (f: () => Promise<unknown>) => {
  const start = performance.now();
  await f();
  return performance.now() - start;
};

describe("scrypt password hashes", () => {
  it("writes a self-describing hash with a fresh salt, and verifies only the right password", async () => {
    const a = await hashPassword("correct horse");
    const b = hashPasswordSync("correct horse");
    expect(a).toMatch(/^scrypt\$ln=14,r=8,p=1\$[\w-]{22}\$[\w-]{43}$/);
    expect(a).not.toBe(b);
    for (const hash of [a, b]) {
      const parsed = parsePasswordHash(hash)!;
      expect(parsed).toMatchObject(DEFAULT_COST);
      expect(await verifyPassword("correct horse", parsed)).toBe(true);
      expect(await verifyPassword("correct horsf", parsed)).toBe(false);
      expect(await verifyPassword("", parsed)).toBe(false);
    }
  });

  it("treats canonically equal Unicode passwords alike", async () => {
    const parsed = parsePasswordHash(await hashPassword("caf\u00e9"))!;
    expect(await verifyPassword("cafe\u0301", parsed)).toBe(true);
  });

  it.each([
    ["another algorithm", "bcrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    ["a cost too high to be honest", "scrypt$ln=31,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    ["a cost too low to protect", "scrypt$ln=4,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    ["no salt", "scrypt$ln=14,r=8,p=1$$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    ["a plain password", "correct horse battery staple"],
  ])("does not take %s for a hash", (_what, text) => {
    expect(parsePasswordHash(text)).toBeUndefined();
  });

  it("leaves the event loop free while it checks", async () => {
    const parsed = parsePasswordHash(hashPasswordSync("pw"))!;
    const start = performance.now();
    const check = verifyPassword("pw", parsed);
    const returned = performance.now() - start;
    expect(await check).toBe(true);
    const finished = performance.now() - start;
    // the scrypt runs on the libuv pool: the call returns long before the answer
    expect(returned).toBeLessThan(finished / 4);
  });
});

describe("passwordChecker", () => {
  const users = [
    { username: "alice", passwordHash: hashPasswordSync("alice's password") },
    { username: "bob", passwordHash: hashPasswordSync("bob's password") },
  ];
  const check = passwordChecker(users);

  it("answers the name of the user whose password matches, and nothing otherwise", async () => {
    expect(await check("alice", "alice's password")).toBe("alice");
    expect(await check("bob", "bob's password")).toBe("bob");
    expect(await check("alice", "bob's password")).toBeUndefined();
    expect(await check("carol", "alice's password")).toBeUndefined();
    expect(await check("Alice", "alice's password")).toBeUndefined();
    expect(await check(["alice"], "alice's password")).toBeUndefined();
    expect(await check("alice", undefined)).toBeUndefined();
  });

  it("spends a full scrypt on an unknown user name, as on a known one", async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 5; i++) {
      known.push(await timed(() => check("alice", `wrong ${i}`)));
      unknown.push(await timed(() => check(`nobody-${i}`, `wrong ${i}`)));
    }
    // a lookup that skipped scrypt would take microseconds; scrypt at N=2^14 takes tens of milliseconds
    expect(median(unknown)).toBeGreaterThan(Math.min(...known) / 2);
    expect(median(unknown)).toBeGreaterThan(5);
  });
});
