import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock, systemClock, type Clock } from "../../src/clock.js";
import { parseUpstreamsFile } from "../../src/config/file.js";
import { loadConfig } from "../../src/config/load.js";
import type { StdioConfig } from "../../src/config/types.js";
import { createLogger } from "../../src/log.js";
import type { Acquired, StdioChild } from "../../src/stdio/child.js";
import { INHERITED_VARIABLES } from "../../src/stdio/env.js";
import { StdioPool } from "../../src/stdio/pool.js";
import { openFiles } from "../support/fds.js";
import { withDeadline } from "../support/waiting.js";

const MEMORY = join(process.cwd(), "node_modules/.bin/mcp-server-memory");
const fixture = (name: string) => ({ command: process.execPath, args: [join(process.cwd(), "test/fixtures", `${name}.mjs`)] });
const ALICE = { user: "alice", clientId: "client-1", grantId: "g1" };
const BOB = { user: "bob", clientId: "client-1", grantId: "g2" };
const SECRET = "Zq9Wx4Tt-a-gateway-secret-of-32-chars";

let pools: StdioPool[] = [];
let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(pools.map((p) => p.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  pools = [];
  dirs = [];
});

interface Made {
  pool: StdioPool;
  root: string;
  lines: string[];
}

/** A pool of the config file's `mcpServers`, its directory under a fresh temp dir, its environment the CLI's (a secret in it). */
function makePool(servers: Record<string, unknown>, options: Partial<StdioConfig> = {}, clock: Clock = systemClock): Made {
  const dir = mkdtempSync(join(tmpdir(), "stdio-pool-"));
  dirs.push(dir);
  const env = { ...process.env, MCP_GATEWAY_SECRET: SECRET, GITHUB_CLIENT_SECRET: SECRET, MCP_GATEWAY_ENV_FILE: "/dev/null" };
  const config = loadConfig(["--upstream-rs", "http://127.0.0.1/unused", "--stdio-dir", join(dir, "stdio")], env);
  const upstreams = parseUpstreamsFile(JSON.stringify({ mcpServers: servers }), join(dir, "gateway.json"), { SECRET }, "http://127.0.0.1:1");
  const lines: string[] = [];
  const pool = new StdioPool(upstreams, { ...config.stdio, ...options }, { log: createLogger((l) => lines.push(l)), clock });
  pools.push(pool);
  return { pool, root: join(dir, "stdio"), lines };
}

function child(acquired: Acquired): StdioChild {
  if ("refused" in acquired) throw new Error(`refused: ${acquired.refused}`);
  return acquired.child;
}

let nextId = 1;
/** One request to the process and its answer's result. */
function ask<T = Record<string, unknown>>(process: StdioChild, method: string, params: Record<string, unknown> = {}): Promise<T> {
  const id = nextId++;
  return withDeadline(
    new Promise<T>((resolve) => {
      process.onmessage = (m) => {
        if ("id" in m && m.id === id && "result" in m) resolve(m.result as T);
      };
      void process.send({ jsonrpc: "2.0", id, method, params });
    }),
    10_000,
    method,
  );
}

const alive = (pid: number | undefined): boolean => {
  try {
    process.kill(pid!, 0);
    return true;
  } catch {
    return false;
  }
};
const exited = (process: StdioChild) => withDeadline(new Promise<string>((resolve) => (process.onexit = resolve)), 10_000, "exit");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Echo {
  env: Record<string, string>;
  cwd: string;
  argv: string[];
}

describe("StdioPool: the process's environment and directory", () => {
  it("gives the process only the allowlisted variables and the entry's env: the gateway's secrets stay out", async () => {
    process.env.GITHUB_CLIENT_SECRET_OF_TEST = SECRET; // in the real environment too, which the SDK also reads
    try {
      const { pool } = makePool({ echo: { ...fixture("stdio-echo"), env: { API_KEY: "key-${SECRET}" } } });
      const { env } = await ask<Echo>(child(await pool.acquire("echo", ALICE)), "env");
      expect(Object.keys(env).filter((name) => !INHERITED_VARIABLES.includes(name))).toEqual(["API_KEY"]);
      expect(env.API_KEY).toBe(`key-${SECRET}`);
      expect(env.PATH).toBe(process.env.PATH);
      for (const name of ["MCP_GATEWAY_SECRET", "GITHUB_CLIENT_SECRET", "GITHUB_CLIENT_SECRET_OF_TEST", "MCP_GATEWAY_USER"])
        expect(env).not.toHaveProperty(name);
    } finally {
      delete process.env.GITHUB_CLIENT_SECRET_OF_TEST;
    }
  });

  it("names the gateway user and client with identityEnv", async () => {
    const { pool } = makePool({ echo: { ...fixture("stdio-echo"), identityEnv: true } });
    const { env } = await ask<Echo>(child(await pool.acquire("echo", ALICE)), "env");
    expect(env).toMatchObject({ MCP_GATEWAY_USER: "alice", MCP_GATEWAY_CLIENT_ID: "client-1" });
  });

  it("runs each user's process in <stdio-dir>/<server>/<user>, 0700, and puts that path for {{userDir}}", async () => {
    const entry = fixture("stdio-echo");
    const { pool, root } = makePool({ echo: { ...entry, args: [...entry.args, "--dir={{userDir}}"], env: { FILE: "{{userDir}}/memory.jsonl" } } });
    const echo = await ask<Echo>(child(await pool.acquire("echo", ALICE)), "env");
    const userDir = join(root, "echo", "alice");
    expect(echo).toMatchObject({ cwd: userDir, argv: [`--dir=${userDir}`], env: { FILE: `${userDir}/memory.jsonl` } });
    for (const dir of [root, join(root, "echo"), userDir]) expect(statSync(dir).mode & 0o777, dir).toBe(0o700);
  });

  it("hashes a user name that is not a plain lowercase file name, and gives a shared server the server's directory", async () => {
    const { pool, root } = makePool({ echo: fixture("stdio-echo"), both: { ...fixture("stdio-echo"), shared: true } });
    const odd = await ask<Echo>(child(await pool.acquire("echo", { ...ALICE, user: "../evil name" })), "env");
    expect(odd.cwd).toMatch(new RegExp(`^${root}/echo/@[0-9a-f]{32}$`));
    const capital = await ask<Echo>(child(await pool.acquire("echo", { ...ALICE, user: "Alice" })), "env");
    expect(capital.cwd).toMatch(new RegExp(`^${root}/echo/@[0-9a-f]{32}$`)); // not alice's on a case-insensitive file system
    expect(capital.cwd).not.toBe(odd.cwd);
    const shared = await ask<Echo>(child(await pool.acquire("both", ALICE)), "env");
    expect(shared.cwd).toBe(join(root, "both"));
  });
});

describe("StdioPool: which process a caller gets", () => {
  it("keeps one process per user and client, one per shared server, and one for concurrent first calls", async () => {
    const { pool } = makePool({ echo: fixture("stdio-echo"), both: { ...fixture("stdio-echo"), shared: true } });
    const first = await Promise.all([1, 2, 3].map(() => pool.acquire("echo", ALICE)));
    expect(new Set(first.map((a) => child(a)))).toHaveProperty("size", 1);
    expect(child(await pool.acquire("echo", { ...ALICE, grantId: "other" })).pid).toBe(child(first[0]!).pid);
    expect(child(await pool.acquire("echo", { ...ALICE, clientId: "client-2" })).pid).not.toBe(child(first[0]!).pid);
    expect(child(await pool.acquire("echo", BOB)).pid).not.toBe(child(first[0]!).pid);
    expect(child(await pool.acquire("both", ALICE)).pid).toBe(child(await pool.acquire("both", BOB)).pid);
    expect(pool.running).toBe(4);
    expect(pool.keyOf("both", ALICE)).toBe(pool.keyOf("both", BOB));
    expect(pool.keyOf("echo", ALICE)).not.toBe(pool.keyOf("echo", BOB));
  });

  it("serves server-memory over the SDK's stdio transport", async () => {
    const { pool } = makePool({ memory: { command: MEMORY } });
    const memory = child(await pool.acquire("memory", ALICE));
    const init = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "test", version: "1" } };
    expect(await ask(memory, "initialize", init)).toMatchObject({ serverInfo: { name: "memory-server" } });
  });

  it("refuses past the global cap and the per-user cap with a Retry-After; shared processes count toward no user", async () => {
    const { pool } = makePool({ echo: fixture("stdio-echo"), both: { ...fixture("stdio-echo"), shared: true } }, { maxProcesses: 3, maxPerUser: 1 });
    child(await pool.acquire("both", ALICE));
    child(await pool.acquire("echo", ALICE));
    expect(await pool.acquire("echo", { ...ALICE, clientId: "client-2" })).toEqual({
      refused: "You have as many stdio server processes as one user may (1); try again later.",
      retryAfterSeconds: 60,
    });
    child(await pool.acquire("echo", BOB));
    expect(await pool.acquire("echo", { ...BOB, user: "carol" })).toEqual({
      refused: "The gateway runs as many stdio server processes as it may (3); try again later.",
      retryAfterSeconds: 60,
    });
    expect(pool.running).toBe(3);
  });
});

describe("StdioPool: how processes end", () => {
  it("ends a process idle for --stdio-idle-timeout, never one in use", async () => {
    const { pool, lines } = makePool({ echo: fixture("stdio-echo") }, { idleTimeout: 1 });
    const echo = child(await pool.acquire("echo", ALICE));
    const release = echo.hold();
    const exit = exited(echo);
    await sleep(1500);
    expect(alive(echo.pid)).toBe(true);
    release();
    expect(await exit).toBe("idle");
    expect(alive(echo.pid)).toBe(false);
    expect(pool.running).toBe(0);
    expect(lines.some((l) => /info stdio echo: pid \d+ ended \(idle\) with code 0 after \d/.test(l))).toBe(true);
  });

  it("gives a caller a new process, not one being ended, while it still counts toward the caps", async () => {
    const { pool, lines } = makePool({ stubborn: fixture("stdio-stubborn") }, { idleTimeout: 1, maxPerUser: 2 });
    const old = child(await pool.acquire("stubborn", ALICE));
    await withDeadline(
      waitFor(() => lines.some((l) => l.includes("stdio-stubborn: stdin ended, staying"))),
      5000,
      "idle end begun",
    );
    const exit = exited(old);
    const fresh = child(await pool.acquire("stubborn", ALICE));
    expect(fresh.pid).not.toBe(old.pid);
    expect(alive(old.pid)).toBe(true);
    expect(pool.running).toBe(2);
    expect(await pool.acquire("stubborn", { ...ALICE, clientId: "client-2" })).toMatchObject({ refused: expect.stringContaining("as one user may (2)") });
    expect(await exit).toBe("idle");
    expect(pool.running).toBe(1);
  });

  it("restarts a crashed process at once, then backs off 1 s, 2 s, 4 s while it keeps dying; a long run resets", async () => {
    const clock = new ManualClock();
    const { pool, lines } = makePool({ crash: fixture("stdio-crash") }, {}, clock);
    const crashOnce = async () => {
      const crash = child(await pool.acquire("crash", ALICE));
      expect(await exited(crash)).toBe("crashed");
      return crash.generation;
    };
    const first = await crashOnce();
    expect(await crashOnce()).toBeGreaterThan(first); // the first restart is at once
    for (const seconds of [1, 2, 4]) {
      expect(await pool.acquire("crash", ALICE)).toMatchObject({ retryAfterSeconds: seconds });
      clock.advance(seconds * 1000);
      await crashOnce();
    }
    expect(lines.filter((l) => l.includes("warn stdio crash: pid") && l.includes("ended (crashed) with code 3"))).toHaveLength(5);
    expect(lines.some((l) => l.includes("info stdio crash: stdio-crash: cannot find my configuration"))).toBe(true);

    const { pool: pool2 } = makePool({ echo: fixture("stdio-echo") }, {}, clock);
    for (let i = 0; i < 2; i++) {
      const echo = child(await pool2.acquire("echo", ALICE));
      const exit = exited(echo);
      void echo.send({ jsonrpc: "2.0", id: 0, method: "exit", params: { code: 1 } });
      await exit;
    }
    expect(await pool2.acquire("echo", ALICE)).toMatchObject({ retryAfterSeconds: 1 });
    clock.advance(1000);
    const long = child(await pool2.acquire("echo", ALICE));
    clock.advance(11_000);
    const exit = exited(long);
    void long.send({ jsonrpc: "2.0", id: 0, method: "exit", params: { code: 1 } });
    await exit;
    expect(child(await pool2.acquire("echo", ALICE)).generation).toBeGreaterThan(long.generation); // ran long: at once again
  });

  it("refuses a program it cannot start, and logs why", async () => {
    const { pool, lines } = makePool({ gone: { command: "/nonexistent/mcp-server" } });
    expect(await pool.acquire("gone", ALICE)).toEqual({ refused: "The stdio server gone cannot be started.", retryAfterSeconds: 1 });
    expect(lines.some((l) => l.includes('error stdio gone: cannot start /nonexistent/mcp-server (check "command" and "cwd"): Error: spawn'))).toBe(true);
    expect(pool.running).toBe(0);
    expect(await pool.acquire("gone", ALICE)).toMatchObject({ refused: "The stdio server gone cannot be started." });
    expect(await pool.acquire("gone", ALICE)).toMatchObject({ refused: expect.stringContaining("keeps exiting right after it starts") });
  });

  it("close() ends every process, one that ignores SIGTERM too, and starts none afterwards", async () => {
    const { pool, lines } = makePool({ memory: { command: MEMORY }, stubborn: fixture("stdio-stubborn") });
    const memory = child(await pool.acquire("memory", ALICE));
    const stubborn = child(await pool.acquire("stubborn", ALICE));
    await withDeadline(
      waitFor(() => lines.some((l) => l.includes("stdio-stubborn: ready"))),
      5000,
      "stubborn ready",
    );
    const pids = [memory.pid, stubborn.pid];
    expect(pids.every(alive)).toBe(true);
    await pool.close();
    expect(pids.filter(alive)).toEqual([]);
    expect(lines.some((l) => /stdio stubborn: pid \d+ ended \(shutdown\) with signal SIGKILL/.test(l))).toBe(true);
    expect(await pool.acquire("memory", ALICE)).toEqual({ refused: "The gateway is shutting down.", retryAfterSeconds: 5 });
    expect(pool.running).toBe(0);
  });

  it("gives back every pipe: after 20 processes end, the gateway holds as many file descriptors as before", async () => {
    const { pool } = makePool({ echo: fixture("stdio-echo") }, { idleTimeout: 1 });
    const before = openFiles(process.pid).fds;
    const users = Array.from({ length: 20 }, (_, i) => ({ ...ALICE, user: `user-${i}` }));
    const children = await Promise.all(users.map(async (owner) => child(await pool.acquire("echo", owner))));
    expect(openFiles(process.pid).fds).toBeGreaterThanOrEqual(before + 3 * 20);
    const exits = children.map(exited);
    await Promise.all(children.map((c) => ask(c, "env")));
    await Promise.all(exits);
    expect(pool.running).toBe(0);
    await withDeadline(
      waitFor(() => openFiles(process.pid).fds <= before),
      5000,
      `fds back to ${before}`,
    );
  });

  it("kill() sends SIGKILL to every process at once, for a gateway exiting without close()", async () => {
    const { pool, lines } = makePool({ stubborn: fixture("stdio-stubborn") });
    const stubborn = child(await pool.acquire("stubborn", ALICE));
    await withDeadline(
      waitFor(() => lines.some((l) => l.includes("stdio-stubborn: ready"))),
      5000,
      "stubborn ready",
    );
    const exit = exited(stubborn);
    pool.kill();
    expect(await withDeadline(exit, 1000, "SIGKILL")).toBe("crashed");
    expect(alive(stubborn.pid)).toBe(false);
  });
});

describe("StdioPool: the log", () => {
  it("logs each spawn, and stderr lines under the server's name, redacted and cut short", async () => {
    const { pool, lines } = makePool({ echo: fixture("stdio-echo") });
    const echo = child(await pool.acquire("echo", ALICE));
    await ask(echo, "stderr", { text: `starting with token=${SECRET} and Bearer ${SECRET}\n${"x".repeat(5000)}\nlast\n` });
    await withDeadline(
      waitFor(() => lines.some((l) => l.endsWith("stdio echo: last"))),
      5000,
      "stderr lines",
    );
    expect(lines.some((l) => new RegExp(`info stdio echo: started pid ${echo.pid} for user alice, client client-1$`).test(l))).toBe(true);
    expect(lines.some((l) => l.endsWith("info stdio echo: starting with token=[redacted] and Bearer [redacted]"))).toBe(true);
    expect(lines.some((l) => l.endsWith(`info stdio echo: ${"x".repeat(1000)}…`))).toBe(true);
    expect(lines.join("\n")).not.toContain(SECRET);
  });

  it("logs at most 100 stderr lines a second per process, then one line saying how many were dropped", async () => {
    const clock = new ManualClock();
    const { pool, lines } = makePool({ echo: fixture("stdio-echo") }, {}, clock);
    const echo = child(await pool.acquire("echo", ALICE));
    const flood = Array.from({ length: 250 }, (_, i) => `flood ${i}`).join("\n");
    await ask(echo, "stderr", { text: `${flood}\n` });
    const logged = () => lines.filter((l) => l.includes("stdio echo: flood "));
    await withDeadline(
      waitFor(() => logged().length >= 100),
      5000,
      "the first 100 lines",
    );
    await sleep(300); // the other 150 arrive, and are dropped
    expect(logged().length).toBe(100);
    expect(logged().at(-1)).toMatch(/flood 99$/);
    clock.advance(1000);
    await ask(echo, "stderr", { text: "after the flood\n" });
    await withDeadline(
      waitFor(() => lines.some((l) => l.endsWith("stdio echo: after the flood"))),
      5000,
      "the line after the flood",
    );
    const notice = lines.findIndex((l) => l.endsWith("stdio echo: 150 stderr line(s) dropped (over 100 a second)"));
    expect(notice).toBeGreaterThan(-1);
    expect(notice).toBeLessThan(lines.findIndex((l) => l.endsWith("stdio echo: after the flood")));
    expect(logged().length).toBe(100);
    // in the same second: 99 more lines, the rest said when the process ends
    await ask(echo, "stderr", { text: `${flood}\n` });
    await withDeadline(
      waitFor(() => logged().length >= 199),
      5000,
      "99 more lines",
    );
    const exit = exited(echo);
    void echo.send({ jsonrpc: "2.0", id: 0, method: "exit", params: { code: 0 } });
    await exit;
    await withDeadline(
      waitFor(() => lines.some((l) => l.endsWith("stdio echo: 151 stderr line(s) dropped (over 100 a second)"))),
      5000,
      "the count at the end",
    );
    expect(logged().length).toBe(199);
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(20);
}
