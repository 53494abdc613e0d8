import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import type { Clock } from "../clock.js";
import { CHANGES_SCHEMA, SqliteChanges } from "./sqlite-changes.js";
import { StoreUnavailableError, ttlMs, type Store, type Watcher } from "./store.js";
import { Watchers } from "./watchers.js";

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement<unknown[], { value: string } | undefined>;

export const DATABASE_FILE = "gateway.db";

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at);
  ${CHANGES_SCHEMA}
  PRAGMA user_version = 2;
`;

const SCAN_PAGE = 500;

/** Errors that mean "not now" rather than "never": busy or locked by another process, disk full, I/O. */
const TRANSIENT = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY)/;

/**
 * The embedded default: one SQLite file (WAL) in the data directory. Reads and writes are single
 * statements, so each is atomic even with several processes on one file; `take` is one
 * `DELETE … RETURNING`. Expired rows are ignored by every read and purged in small batches off the
 * request path, through the index on `expires_at`.
 */
export class SqliteStore implements Store {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #purgeTimer: NodeJS.Timeout;
  readonly #changes: SqliteChanges;
  readonly #watchers = new Watchers();
  readonly #unwatch = new Set<() => void>();
  readonly #sql: Record<"get" | "put" | "add" | "take" | "delete" | "increment" | "purge" | "scanFirst" | "scanNext", Statement>;

  constructor(Driver: typeof BetterSqlite3, file: string, clock: Clock) {
    this.#db = new Driver(file, { timeout: 2000 });
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL"); // with WAL: durable across process crashes; see docs/storage.md
    this.#db.exec(SCHEMA);
    this.#clock = clock;
    const prepare = (sql: string) => this.#db.prepare<unknown[], { value: string } | undefined>(sql);
    this.#sql = {
      get: prepare("SELECT value FROM kv WHERE key = ? AND expires_at > ?"),
      put: prepare("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)"),
      add: prepare(
        `INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at WHERE kv.expires_at <= ?`,
      ),
      take: prepare("DELETE FROM kv WHERE key = ? AND expires_at > ? RETURNING value"),
      delete: prepare("DELETE FROM kv WHERE key = ?"),
      // SET expressions all see the old row, so both CASEs test the same window
      increment: prepare(
        `INSERT INTO kv (key, value, expires_at) VALUES (?, '1', ?)
         ON CONFLICT (key) DO UPDATE SET
           value = CASE WHEN kv.expires_at <= ? THEN '1' ELSE CAST(CAST(kv.value AS INTEGER) + 1 AS TEXT) END,
           expires_at = CASE WHEN kv.expires_at <= ? THEN excluded.expires_at ELSE kv.expires_at END
         RETURNING value`,
      ),
      // a prefix's keys are one range of the primary key: [prefix, prefixEnd(prefix)), then after the last key read
      scanFirst: prepare(`SELECT key, value FROM kv WHERE key >= ? AND key < ? AND expires_at > ? ORDER BY key LIMIT ${SCAN_PAGE}`),
      scanNext: prepare(`SELECT key, value FROM kv WHERE key > ? AND key < ? AND expires_at > ? ORDER BY key LIMIT ${SCAN_PAGE}`),
      purge: prepare("DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires_at <= ? LIMIT 1000)"),
    };
    this.#changes = new SqliteChanges(this.#db, clock);
    this.purgeExpired();
    this.#purgeTimer = setInterval(() => this.purgeExpired(), 30_000).unref();
  }

  /** Open (creating if needed) the database in `dataDir`: directory 0700, files 0600. */
  static async open(dataDir: string, clock: Clock): Promise<SqliteStore> {
    const { default: Driver } = await import("better-sqlite3");
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const mode = statSync(dataDir).mode & 0o777;
    if (mode & 0o077) throw new Error(`the data directory ${dataDir} is open to other users (mode ${mode.toString(8)}): run \`chmod 700 ${dataDir}\``);
    const file = join(dataDir, DATABASE_FILE);
    closeSync(openSync(file, "a", 0o600)); // SQLite gives its -wal and -shm files the database file's mode
    chmodSync(file, 0o600);
    return new SqliteStore(Driver, file, clock);
  }

  async get<T>(key: string): Promise<T | undefined> {
    const row = this.#run(() => this.#sql.get.get(key, this.#clock.now()));
    return row === undefined ? undefined : (JSON.parse(row.value) as T);
  }

  async put<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    const expiresAt = this.#expiry(key, ttlSeconds);
    this.#run(() => this.#sql.put.run(key, JSON.stringify(value), expiresAt));
  }

  async add<T>(key: string, value: T, ttlSeconds: number): Promise<boolean> {
    const expiresAt = this.#expiry(key, ttlSeconds);
    return this.#run(() => this.#sql.add.run(key, JSON.stringify(value), expiresAt, this.#clock.now()).changes === 1);
  }

  async take<T>(key: string): Promise<T | undefined> {
    const row = this.#run(() => this.#sql.take.get(key, this.#clock.now()));
    return row === undefined ? undefined : (JSON.parse(row.value) as T);
  }

  async delete(key: string): Promise<void> {
    this.#run(() => this.#sql.delete.run(key));
  }

  async increment(key: string, windowSeconds: number): Promise<number> {
    const expiresAt = this.#expiry(key, windowSeconds);
    const now = this.#clock.now();
    return Number(this.#run(() => this.#sql.increment.get(key, expiresAt, now, now))!.value);
  }

  async *scan<T>(prefix: string): AsyncIterable<[string, T]> {
    const end = prefixEnd(prefix);
    let [statement, from] = [this.#sql.scanFirst, prefix];
    for (;;) {
      const rows = this.#run(() => statement.all(from, end, this.#clock.now())) as unknown as { key: string; value: string }[];
      for (const row of rows) yield [row.key, JSON.parse(row.value) as T];
      if (rows.length < SCAN_PAGE) return;
      [statement, from] = [this.#sql.scanNext, rows.at(-1)!.key];
    }
  }

  async publish<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    const expiresAt = this.#expiry(key, ttlSeconds);
    this.#run(() =>
      this.#db.transaction(() => {
        this.#sql.put.run(key, JSON.stringify(value), expiresAt);
        this.#changes.append(key, expiresAt);
      })(),
    );
    this.#watchers.record(key, expiresAt - this.#clock.now());
  }

  async watch(prefix: string, watcher: Watcher): Promise<() => Promise<void>> {
    const stopPolling = this.#changes.watch(prefix, prefixEnd(prefix), watcher);
    const remove = this.#watchers.add(prefix, watcher);
    const stop = () => {
      stopPolling();
      remove();
      this.#unwatch.delete(stop);
    };
    this.#unwatch.add(stop);
    return async () => stop();
  }

  async close(): Promise<void> {
    for (const stop of this.#unwatch) stop();
    clearInterval(this.#purgeTimer);
    if (this.#db.open) this.#db.close();
  }

  /** Delete expired rows a batch at a time (each its own short write), at most 20 batches per call. */
  purgeExpired(): number {
    let purged = 0;
    try {
      for (let batch = 0; batch < 20; batch++) {
        const { changes } = this.#sql.purge.run(this.#clock.now());
        purged += changes;
        if (changes < 1000) break;
      }
      this.#changes.purge(this.#clock.now());
    } catch (error) {
      if (!TRANSIENT.test((error as { code?: string }).code ?? "")) throw error;
    }
    return purged;
  }

  #expiry(key: string, ttlSeconds: number): number {
    return this.#clock.now() + ttlMs(key, ttlSeconds);
  }

  #run<R>(statement: () => R): R {
    try {
      return statement();
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (TRANSIENT.test(code)) throw new StoreUnavailableError(`SQLite: ${code}`, { cause: error });
      throw error;
    }
  }
}

/**
 * The least value above every key that starts with `prefix`, in SQLite's order for TEXT (bytewise
 * UTF-8, which is code point order): the prefix with its last code point raised by one. No string is
 * above every string, so the empty prefix gets a BLOB, which SQLite sorts above all TEXT.
 */
function prefixEnd(prefix: string): string | Buffer {
  const points = [...prefix];
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last === 0x10ffff) continue;
    const next = last + 1 >= 0xd800 && last + 1 <= 0xdfff ? 0xe000 : last + 1; // surrogates are not characters
    return points.join("") + String.fromCodePoint(next);
  }
  return Buffer.of(0xff);
}
