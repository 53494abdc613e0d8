import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { helpText } from "../../../src/config/options.js";
import { RS, load, refused, scratch } from "../../support/config-load.js";

describe("loadConfig: --store and --data-dir", () => {
  const HOME = { HOME: "/home/tester" };

  it("defaults to sqlite in ~/.mcp-oauth-gateway, ~ being HOME", () => {
    expect(load(RS, HOME).store).toEqual({ kind: "sqlite", dataDir: "/home/tester/.mcp-oauth-gateway" });
    expect(load([...RS, "--data-dir", "~/state"], HOME).store).toEqual({ kind: "sqlite", dataDir: "/home/tester/state" });
    expect(load(RS, { ...HOME, MCP_GATEWAY_STORE: "" }).store.kind).toBe("sqlite"); // empty is unset
  });

  it("defaults to memory for demo, which can still choose sqlite", () => {
    expect(load(["demo"], HOME).store).toEqual({ kind: "memory" });
    expect(load(["demo", "--store", "sqlite"], HOME).store).toEqual({ kind: "sqlite", dataDir: "/home/tester/.mcp-oauth-gateway" });
  });

  it("takes --store memory, and the store from MCP_GATEWAY_STORE", () => {
    expect(load([...RS, "--store", "memory"]).store).toEqual({ kind: "memory" });
    expect(load(RS, { MCP_GATEWAY_STORE: "memory" }).store).toEqual({ kind: "memory" });
  });

  it.each([["redis://127.0.0.1:6379"], ["redis://:p%40ss@redis.internal:6380/2"], ["rediss://user:pw@redis.example.com:6380"]])(
    "takes --store %s as Redis",
    (url) => {
      expect(load([...RS, "--store", url]).store).toEqual({ kind: "redis", url });
    },
  );

  it.each([["postgres://db.example/gw"], ["Sqlite"], ["redis"], ["redis:/127.0.0.1"], ["redis://[bad"]])(
    "refuses --store=%j, naming --store (MCP_GATEWAY_STORE)",
    (value) => {
      expect(refused([...RS, `--store=${value}`])).toMatch(/^--store \(MCP_GATEWAY_STORE\) /);
    },
  );

  it("does not repeat a password in a mistyped Redis URL", () => {
    const message = refused(RS, { MCP_GATEWAY_STORE: "redis:/:hunter2hunter2@redis.internal" });
    expect(message).toContain("--store (MCP_GATEWAY_STORE)");
    expect(message).not.toContain("hunter2hunter2");
  });

  it("refuses --data-dir with a Redis or memory store, naming --data-dir", () => {
    expect(refused([...RS, "--store", "redis://127.0.0.1", "--data-dir", "/var/lib/gw"])).toContain("--data-dir (MCP_GATEWAY_DATA_DIR)");
    expect(refused([...RS, "--store", "memory", "--data-dir", "/var/lib/gw"])).toContain("--data-dir (MCP_GATEWAY_DATA_DIR)");
    expect(refused(RS, { MCP_GATEWAY_STORE: "redis://127.0.0.1", MCP_GATEWAY_DATA_DIR: "/var/lib/gw" })).toContain("--data-dir");
  });

  it("resolves a relative --data-dir against the working directory", () => {
    const store = load([...RS, "--data-dir", "state/gw"]).store;
    expect(store).toEqual({ kind: "sqlite", dataDir: resolve("state/gw") });
    expect(load([...RS, "--data-dir", "/srv/gw"]).store).toEqual({ kind: "sqlite", dataDir: "/srv/gw" });
    expect(load([...RS, "--data-dir", "/srv/gw/"]).store).toEqual({ kind: "sqlite", dataDir: "/srv/gw" });
  });
});

describe("loadConfig: --workers", () => {
  it("defaults to 1, takes a count from the flag or MCP_GATEWAY_WORKERS, and auto as one per CPU", () => {
    expect(load(RS).workers).toBe(1);
    expect(load([...RS, "--workers", "4"]).workers).toBe(4);
    expect(load(RS, { MCP_GATEWAY_WORKERS: "3", MCP_GATEWAY_STORE: "redis://127.0.0.1" }).workers).toBe(3);
    expect(load([...RS, "--workers", "auto"]).workers).toBe(availableParallelism());
  });

  it.each([["0"], ["-1"], ["two"], ["1.5"], ["257"]])("refuses --workers %s, naming the flag and auto", (value) => {
    expect(refused([...RS, `--workers=${value}`])).toMatch(/^--workers \(MCP_GATEWAY_WORKERS\) ".*" is not valid: .*auto/);
  });

  it("refuses more than one worker on the memory store, and for the demo, naming the fix", () => {
    expect(refused([...RS, "--workers", "2", "--store", "memory"])).toMatch(
      /--store memory lives inside one process: use --store sqlite or a redis:\/\/ URL, or --workers 1$/,
    );
    expect(refused(["demo", "--workers", "2"])).toMatch(/the demo runs in one process .*: drop --workers$/);
    expect(refused(["demo", "--workers", "2", "--store", "sqlite"])).toContain("drop --workers");
    expect(load(["demo", "--workers", "1"]).workers).toBe(1);
    expect(load([...RS, "--workers", "1", "--store", "memory"]).workers).toBe(1);
  });

  it("refuses more than one worker with a local (stdio) server, naming it: its sessions and processes live in one process", () => {
    const { dir } = scratch();
    const file = join(dir, "gateway.json");
    writeFileSync(file, JSON.stringify({ mcpServers: { notes: { command: "node", args: ["notes.js"] }, remote: { url: "https://a.example/mcp" } } }));
    expect(refused(["--config", file, "--workers", "2"])).toBe(
      "--workers (MCP_GATEWAY_WORKERS) 2 cannot serve local (stdio) servers (notes): their sessions and processes live in one process: use --workers 1",
    );
    expect(load(["--config", file, "--workers", "1"]).workers).toBe(1);
    writeFileSync(file, JSON.stringify({ mcpServers: { remote: { url: "https://a.example/mcp" } } }));
    expect(load(["--config", file, "--workers", "2"]).workers).toBe(2);
  });
});

describe("loadConfig: --trust-proxy", () => {
  it.each([
    [undefined, false],
    ["false", false],
    ["true", true],
    ["1", 1],
    ["2", 2],
    ["loopback", "loopback"],
    ["10.0.0.0/8, 192.168.1.7", "10.0.0.0/8, 192.168.1.7"],
  ])("takes --trust-proxy %j as %j", (value, expected) => {
    expect(load([...RS, ...(value === undefined ? [] : ["--trust-proxy", value])]).trustProxy).toEqual(expected);
  });

  it("takes it from MCP_GATEWAY_TRUST_PROXY", () => {
    expect(load(RS, { MCP_GATEWAY_TRUST_PROXY: "uniquelocal" }).trustProxy).toBe("uniquelocal");
  });
});

describe("helpText and --help", () => {
  /** The flags of DESIGN §2, plus the ones config adds, each with its variable. */
  const FLAGS = [
    "port",
    "host",
    "public-url",
    "upstream-rs",
    "upstream-as",
    "upstream-client-id",
    "upstream-client-secret",
    "upstream-authorize-endpoint",
    "upstream-token-endpoint",
    "upstream-scope",
    "access-token-ttl",
    "refresh-token-ttl",
    "env-file",
    "username",
    "store",
    "data-dir",
    "trust-proxy",
    "upstream-header",
    "upstream-timeout",
    "sse-heartbeat",
    "shutdown-grace",
    "config",
  ];
  const variable = (flag: string) => `MCP_GATEWAY_${flag.toUpperCase().replace(/-/g, "_")}`;

  it.each(FLAGS)("lists --%s with its variable on the same line", (flag) => {
    const line = helpText()
      .split("\n")
      .find((l) => l.trimStart().startsWith(`--${flag} `));
    expect(line, `--${flag} missing from --help`).toBeDefined();
    expect(line).toContain(variable(flag));
  });

  it("lists the environment-only secrets as such", () => {
    for (const name of ["MCP_GATEWAY_PASSWORD", "MCP_GATEWAY_SECRET", "MCP_GATEWAY_PREVIOUS_SECRETS"]) {
      const line = helpText()
        .split("\n")
        .find((l) => l.includes(name));
      expect(line).toMatch(/\(env only\)/);
    }
  });

  it("lists the demo command, --help and --version", () => {
    expect(helpText()).toMatch(/^\s+demo\s/m);
    expect(helpText()).toMatch(/^\s+--help\s/m);
    expect(helpText()).toMatch(/^\s+--version\s/m);
  });

  it("is what --help and -h ask for, before any validation", () => {
    expect(load(["--help"]).command).toBe("help");
    expect(load(["-h", "--port", "abc"]).command).toBe("help");
    expect(load(["--version"]).command).toBe("version");
  });
});
