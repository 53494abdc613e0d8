import type BetterSqlite3 from "better-sqlite3";
import type { Clock } from "../clock.js";
import type { Watcher } from "./store.js";

type Database = BetterSqlite3.Database;

/**
 * The `changes` table: one row per `publish`, numbered in commit order (AUTOINCREMENT never reuses a
 * number, even after purging), written in the same transaction as the record. A watch reads the rows
 * after the last number it saw, every POLL_MS: a revocation reaches every process on the file within
 * one poll and one read.
 */
export const CHANGES_SCHEMA = `
  CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS changes_expires_at ON changes (expires_at);
`;

export const POLL_MS = 250;
const PAGE = 1000;

interface Row {
  seq: number;
  key: string;
  expires_at: number;
}

export class SqliteChanges {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #sql;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    this.#sql = {
      append: db.prepare("INSERT INTO changes (key, expires_at) VALUES (?, ?)"),
      last: db.prepare<[], { seq: number | null }>("SELECT max(seq) AS seq FROM changes"),
      // a prefix's keys: [prefix, end) of the primary key, as in SqliteStore.scan
      live: db.prepare<[string, string | Buffer, number], { key: string; expires_at: number }>(
        "SELECT key, expires_at FROM kv WHERE key >= ? AND key < ? AND expires_at > ?",
      ),
      since: db.prepare<[number, number], Row>(`SELECT seq, key, expires_at FROM changes WHERE seq > ? AND expires_at > ? ORDER BY seq LIMIT ${PAGE}`),
      purge: db.prepare("DELETE FROM changes WHERE seq IN (SELECT seq FROM changes WHERE expires_at <= ? LIMIT 1000)"),
    };
  }

  /** Inside the transaction that writes the record. */
  append(key: string, expiresAt: number): void {
    this.#sql.append.run(key, expiresAt);
  }

  purge(now: number): number {
    return this.#sql.purge.run(now).changes;
  }

  /** Load the prefix's live records and the last change number in one snapshot, then poll until stopped. */
  watch(prefix: string, end: string | Buffer, watcher: Watcher): () => void {
    let seq: number | undefined;
    const load = this.#db.transaction(() => {
      const now = this.#clock.now();
      const last = this.#sql.last.get()?.seq ?? 0;
      for (const row of this.#sql.live.all(prefix, end, now)) watcher.record(row.key, row.expires_at - now);
      return last;
    });
    const poll = () => {
      const at = performance.now();
      try {
        seq ??= load();
        for (let rows = this.#page(seq); rows.length; rows = rows.length < PAGE ? [] : this.#page(seq)) {
          const now = this.#clock.now();
          for (const row of rows) if (row.key.startsWith(prefix)) watcher.record(row.key, row.expires_at - now);
          seq = rows.at(-1)!.seq;
        }
        watcher.current(at);
      } catch (error) {
        watcher.lost(`SQLite read failed: ${(error as { code?: string }).code ?? (error as Error).message}`);
      }
    };
    poll();
    const timer = setInterval(poll, POLL_MS).unref();
    return () => clearInterval(timer);
  }

  #page(after: number): Row[] {
    return this.#sql.since.all(after, this.#clock.now());
  }
}
