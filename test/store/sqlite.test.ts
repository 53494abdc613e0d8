import { chmodSync, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import Driver from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { ManualClock, systemClock } from "../../src/clock.js";
import { DATABASE_FILE, SqliteStore } from "../../src/store/sqlite.js";
import { killAll, launch, tempDir, waitForStdout, type Running } from "../support/processes.js";

const root = tempDir("gateway-sqlite");
let n = 0;
/** A data directory that does not exist yet, in this file's own temporary root. */
const freshDir = () => join(root, `data-${++n}`);
const mode = (path: string) => statSync(path).mode & 0o777;

const opened: SqliteStore[] = [];
const open = async (dir: string, clock = new ManualClock()) => {
  const store = await SqliteStore.open(dir, clock);
  opened.push(store);
  return store;
};
/** The database file as a second reader sees it: read-only, beside the open store. */
const readOnly = (dir: string) => new Driver(join(dir, DATABASE_FILE), { readonly: true, fileMustExist: true });

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
afterAll(() => {
  killAll();
  rmSync(root, { recursive: true, force: true });
});

describe("SqliteStore: files and permissions", () => {
  it("creates the data directory 0700 and the database files 0600", async () => {
    const dir = freshDir();
    const store = await open(dir);
    await store.put("client:1", { a: 1 }, 60);
    expect(mode(dir)).toBe(0o700);
    const files = [DATABASE_FILE, `${DATABASE_FILE}-wal`, `${DATABASE_FILE}-shm`].map((f) => join(dir, f));
    expect(existsSync(files[1]!)).toBe(true); // WAL mode: the -wal file is there while the store is open
    for (const file of files.filter((f) => existsSync(f))) expect(mode(file), file).toBe(0o600);
  });

  it.each([[0o755], [0o750], [0o705]])("refuses an existing data directory of mode %o, saying chmod 700", async (dirMode) => {
    const dir = freshDir();
    mkdirSync(dir);
    chmodSync(dir, dirMode);
    await expect(open(dir)).rejects.toThrow(`chmod 700 ${dir}`);
    expect(existsSync(join(dir, DATABASE_FILE))).toBe(false);
  });

  it("tightens a database file that was left readable by others", async () => {
    const dir = freshDir();
    await (await open(dir)).close();
    chmodSync(join(dir, DATABASE_FILE), 0o644);
    await open(dir);
    expect(mode(join(dir, DATABASE_FILE))).toBe(0o600);
  });
});

describe("SqliteStore: durability and purging", () => {
  it("keeps data across close and reopen, TTLs still honoured", async () => {
    const dir = freshDir();
    const clock = new ManualClock();
    const first = await open(dir, clock);
    await first.put("client:1", { name: "kept" }, 60);
    await first.put("code:1", "short", 5);
    expect(await first.increment("rate:a", 60)).toBe(1);
    await first.close();

    const second = await open(dir, clock);
    expect(await second.get("client:1")).toEqual({ name: "kept" });
    expect(await second.increment("rate:a", 60)).toBe(2);
    clock.advance(6_000);
    expect(await second.get("code:1")).toBeUndefined();
    expect(await second.get("client:1")).toEqual({ name: "kept" });
  });

  it("purges expired rows and leaves live ones", async () => {
    const dir = freshDir();
    const clock = new ManualClock();
    const store = await open(dir, clock);
    for (let i = 0; i < 30; i++) await store.put(`old:${i}`, i, 5);
    for (let i = 0; i < 10; i++) await store.put(`live:${i}`, i, 60);
    clock.advance(6_000);
    expect(store.purgeExpired()).toBe(30);
    expect(store.purgeExpired()).toBe(0);
    const db = readOnly(dir);
    const rows = db.prepare<[], { key: string }>("SELECT key FROM kv ORDER BY key").all();
    db.close();
    expect(rows.map((r) => r.key)).toEqual(Array.from({ length: 10 }, (_, i) => `live:${i}`));
    expect(await store.get("live:3")).toBe(3);
  });

  it("purges more than one batch of 1000 in a call", async () => {
    const dir = freshDir();
    const clock = new ManualClock();
    const store = await open(dir, clock);
    for (let i = 0; i < 2500; i++) await store.put(`old:${i}`, i, 5);
    clock.advance(6_000);
    expect(store.purgeExpired()).toBe(2500);
  });
});

describe("SqliteStore: query plans", () => {
  it("finds rows through the primary key or the kv_expires_at index, never a full scan of kv", async () => {
    const prepare = vi.spyOn(Driver.prototype, "prepare");
    const dir = freshDir();
    await open(dir);
    const statements = prepare.mock.calls.map(([sql]) => sql).filter((sql) => /\bkv\b/.test(sql));
    prepare.mockRestore();
    expect(statements.length).toBeGreaterThanOrEqual(7); // get, put, add, take, delete, increment, purge

    const db = readOnly(dir);
    const plans = statements.map((sql) => {
      const params = Array.from(sql.matchAll(/\?/g), () => 1);
      const details = db
        .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...params)
        .map((r) => r.detail);
      return { sql: sql.replace(/\s+/g, " "), details };
    });
    db.close();
    // an upsert's `DO UPDATE … WHERE` only filters the conflicting row, which the primary key found
    for (const { sql, details } of plans) {
      expect(
        details.filter((d) => /\bSCAN kv\b/.test(d)),
        sql,
      ).toEqual([]);
      if (/\bWHERE\b/.test(sql.replace(/ON CONFLICT.*$/, ""))) expect(details.join("\n"), sql).toMatch(/SEARCH kv USING (PRIMARY KEY|(COVERING )?INDEX)/);
    }
    const purge = plans.find((p) => /expires_at <= \?/.test(p.sql) && p.sql.startsWith("DELETE"));
    expect(purge?.details.join("\n")).toMatch(/USING (COVERING )?INDEX kv_expires_at/);
  });
});

/**
 * A separate gateway process on the same data directory: runs ROUNDS of take/add/increment when told
 * to go. better-sqlite3 is synchronous, so two stores in one process never overlap; two processes do.
 */
const RACER = `
import { SqliteStore } from "./src/store/sqlite.ts";
import { systemClock } from "./src/clock.ts";
const store = await SqliteStore.open(process.env.DATA_DIR, systemClock);
console.log("ready");
const at = Number(await new Promise((go) => process.stdin.once("data", go)));
while (Date.now() < at); // both start on the same millisecond
const taken = [], added = [], counts = [];
for (let i = 0; i < Number(process.env.ROUNDS); i++) {
  if ((await store.take("code:" + i)) !== undefined) taken.push(i);
  if (await store.add("lock:" + i, process.pid, 60)) added.push(i);
  counts.push(await store.increment("rate:shared", 60));
}
await store.close();
console.log("result " + JSON.stringify({ taken, added, counts }));
`;

describe("SqliteStore: two processes on one data directory", () => {
  it("gives each value, each lock and each count to exactly one of two racing processes", async () => {
    const rounds = 2000;
    const dir = freshDir();
    const store = await SqliteStore.open(dir, systemClock);
    for (let i = 0; i < rounds; i++) await store.put(`code:${i}`, i, 60);
    await store.close();

    const racers: Running[] = [1, 2].map(() =>
      launch(process.execPath, ["--import", "tsx", "--input-type=module", "--eval", RACER], { ...process.env, DATA_DIR: dir, ROUNDS: String(rounds) }),
    );
    await Promise.all(racers.map((r) => waitForStdout(r, /^ready$/m)));
    const at = Date.now() + 300;
    for (const r of racers) r.child.stdin.write(`${at}\n`);
    const results = await Promise.all(
      racers.map(async (r) => {
        const [, json] = await waitForStdout(r, /^result (.*)$/m, 20_000);
        return JSON.parse(json!) as { taken: number[]; added: number[]; counts: number[] };
      }),
    );

    const all = Array.from({ length: rounds }, (_, i) => i);
    const merged = (pick: (r: (typeof results)[number]) => number[]) => results.flatMap(pick).toSorted((x, y) => x - y);
    expect(merged((r) => r.taken)).toEqual(all);
    expect(merged((r) => r.added)).toEqual(all);
    expect(merged((r) => r.counts)).toEqual(all.flatMap((i) => [2 * i + 1, 2 * i + 2]));
  });
});
