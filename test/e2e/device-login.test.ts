import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StoreConfig } from "../../src/config/types.js";
import type { Gateway } from "../../src/gateway.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { callGetMe } from "../support/connect.js";
import { approveOnBrowser } from "../support/device-steps.js";
import { simulatorServer, startTestGateway } from "../support/gateway.js";
import { cleanEnv, killAll, launch, startRedis, tempDir, type RedisServer, type Running } from "../support/processes.js";

interface LoginWorld {
  simulator: Simulator;
  gateway: Gateway;
  mcpUrl: string;
  redis?: RedisServer;
}

/** A gateway in this process on `kind` (the real clock: the command waits real polling intervals), and the command as a process. */
function useLoginWorld(kind: "sqlite" | "redis") {
  const world = {} as LoginWorld;
  const dir = tempDir("device-login");
  beforeAll(async () => {
    world.simulator = await startSimulator();
    if (kind === "redis") world.redis = await startRedis();
    const storeConfig: StoreConfig = world.redis ? { kind: "redis", url: world.redis.url } : { kind: "sqlite", dataDir: dir };
    world.gateway = await startTestGateway({ mcpServers: { github: simulatorServer(world.simulator) }, atMcp: true, storeConfig });
    world.mcpUrl = `${world.gateway.publicUrl}/mcp`;
  });
  afterAll(async () => {
    await world.gateway?.close();
    await world.simulator?.close();
    await world.redis?.close();
  });
  afterEach(killAll);
  const login = (...args: string[]): Running => launch(process.execPath, ["--import", "tsx", "src/main.ts", "login", ...args], cleanEnv({ HOME: dir }));
  return { world, dir, login };
}

/** The code the command printed on stderr, and its verification URI. */
async function shownCode(p: Running): Promise<{ uri: string; code: string }> {
  for (let i = 0; i < 600; i++) {
    const m = /open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})/.exec(p.stderr());
    if (m) return { uri: m[1]!, code: m[2]! };
    if (p.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no code shown; stderr: ${p.stderr()}`);
}

/** `mcp-oauth-gateway login <mcp-url>` as a real process against a running gateway, the user approving on a scripted browser. */
describe.each(["sqlite", "redis"] as const)("the login command (RFC 8628 client), %s store", (kind) => {
  const { world, login } = useLoginWorld(kind);

  it("discovers, registers, shows a code, polls, and prints a token response whose token works", async () => {
    const p = login(world.mcpUrl);
    const { uri, code } = await shownCode(p);
    expect(uri).toBe(`${world.gateway.publicUrl}/device`);
    const { end } = await approveOnBrowser(uri, code);
    expect(end.text).toContain("Device connected");
    expect((await p.exited).code).toBe(0);
    const tokens = JSON.parse(p.stdout()) as Record<string, string>;
    expect(tokens).toMatchObject({ token_type: "Bearer" });
    expect(tokens.refresh_token).toBeTruthy();
    expect((await callGetMe(world.gateway.publicUrl, tokens.access_token!)).login).toBe("octocat");
  }, 60_000);
});

describe("the login command's other answers (SQLite store)", () => {
  const { world, dir, login } = useLoginWorld("sqlite");

  it("--write-config merges an mcpServers entry with the bearer token into a 0600 file", async () => {
    const file = join(dir, "mcp.json");
    writeFileSync(file, JSON.stringify({ mcpServers: { other: { command: "x" } }, theme: "dark" }), { mode: 0o644 });
    const p = login(world.mcpUrl, "--write-config", file, "--name", "gw");
    const { uri, code } = await shownCode(p);
    await approveOnBrowser(uri, code);
    expect((await p.exited).code).toBe(0);
    expect(p.stdout()).toBe("");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const written = JSON.parse(readFileSync(file, "utf8")) as { theme: string; mcpServers: Record<string, { url: string; headers: Record<string, string> }> };
    expect(written.theme).toBe("dark");
    expect(written.mcpServers.other).toEqual({ command: "x" });
    expect(written.mcpServers.gw!.url).toBe(world.mcpUrl);
    const bearer = written.mcpServers.gw!.headers.Authorization!;
    expect(bearer).toMatch(/^Bearer /);
    expect((await callGetMe(world.gateway.publicUrl, bearer.slice("Bearer ".length))).login).toBe("octocat");
  }, 60_000);

  it("ends with exit 1 and says so when the user denies", async () => {
    const p = login(world.mcpUrl);
    const { uri, code } = await shownCode(p);
    await approveOnBrowser(uri, code, { decision: "deny" });
    expect((await p.exited).code).toBe(1);
    expect(p.stderr()).toContain("The sign-in was denied.");
    expect(p.stdout()).toBe("");
  }, 60_000);

  it("refuses a URL that asks for no OAuth, and a missing URL, with a clear message", async () => {
    const open = login(`${world.simulator.webOrigin}/`);
    expect((await open.exited).code).toBe(1);
    expect(open.stderr()).toMatch(/answered \d+, not 401/);
    const none = login();
    expect((await none.exited).code).toBe(2);
    expect(none.stderr()).toContain("login needs the MCP server's URL");
  }, 30_000);
});
