import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../src/gateway.js";
import { LOGIN } from "../support/config.js";
import { startTestGateway } from "../support/gateway.js";
import { grantFor } from "../support/oauth-steps.js";
import { freePort, killAll, startGatewayProcess, tempDir } from "../support/processes.js";
import { contentOf, stdioClient } from "../support/stdio-clients.js";
import { alive, bin, processesUnder } from "../support/stdio-procs.js";
import { pollUntil } from "../support/waiting.js";

const BOB = { username: "bob", password: "a different correct horse" };
const INITIALIZE = { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } };

/** One POST of the initialize era by hand: its status, session id, and the JSON-RPC messages of its answer (event stream or JSON). */
async function post(url: string, token: string, message: Record<string, unknown>, sessionId?: string) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(sessionId ? { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", ...message }),
  });
  const text = await response.text();
  const messages = response.headers.get("content-type")?.startsWith("text/event-stream")
    ? text
        .split("\n")
        .filter((line) => line.startsWith("data: "))
        .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>)
    : text
      ? [JSON.parse(text) as Record<string, unknown>]
      : [];
  return { status: response.status, headers: response.headers, sessionId: response.headers.get("mcp-session-id") ?? undefined, messages };
}

describe("stdio processes come and go beneath the sessions", () => {
  let gateway: Gateway;
  const url = () => `${gateway.publicUrl}/mcp/everything`;
  const running = () => processesUnder(process.pid, "server-everything");

  beforeAll(async () => {
    gateway = await startTestGateway({
      mcpServers: { everything: { command: bin("mcp-server-everything") } },
      users: [LOGIN, BOB],
      stdio: { dir: tempDir("stdio-lifecycle"), idleTimeout: 1, maxProcesses: 1 },
    });
  });
  afterAll(async () => gateway?.close());

  it("ends an idle process after the timeout; the session that used it goes on in a new one, initialized again by the bridge", async () => {
    const { tokens } = await grantFor(gateway.publicUrl, url());
    const token = tokens.access_token!;
    const opened = await post(url(), token, { id: 1, method: "initialize", params: INITIALIZE });
    expect(opened.status).toBe(200);
    const sessionId = opened.sessionId!;
    await post(url(), token, { method: "notifications/initialized" }, sessionId);
    const first = await post(url(), token, { id: 2, method: "tools/call", params: { name: "echo", arguments: { message: "one" } } }, sessionId);
    expect(JSON.stringify(first.messages)).toContain("Echo: one");
    const [pid] = running();
    expect(pid).toBeDefined();

    const gone = await pollUntil(
      () => ({ pids: running(), pool: gateway.stdio.running }),
      (now) => now.pids.length + now.pool === 0,
      8000,
    );
    expect(gone).toEqual({ pids: [], pool: 0 });
    expect(alive(pid!)).toBe(false);

    const again = await post(url(), token, { id: 3, method: "tools/call", params: { name: "echo", arguments: { message: "two" } } }, sessionId);
    expect(again.status).toBe(200);
    expect(JSON.stringify(again.messages)).toContain("Echo: two");
    expect(running()).toHaveLength(1);
    expect(running()[0]).not.toBe(pid);
  });

  it("answers 503 with Retry-After and a JSON-RPC error naming the cap when no process may start", async () => {
    expect(
      await pollUntil(
        () => gateway.stdio.running,
        (n) => n === 0,
        8000,
      ),
    ).toBe(0);
    // the SDK client holds its process while its GET stream is open: the only one the cap allows
    const { client } = await stdioClient(gateway.publicUrl, url());
    try {
      expect(contentOf(await client.callTool({ name: "echo", arguments: { message: "held" } }))).toContain("held");
      const { tokens } = await grantFor(gateway.publicUrl, url(), undefined, BOB);
      const refused = await post(url(), tokens.access_token!, { id: 7, method: "initialize", params: INITIALIZE });
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(refused.messages[0]).toMatchObject({ id: 7, error: { message: expect.stringContaining("as many stdio server processes as it may (1)") } });
    } finally {
      await client.close();
    }
    // closed, the client's stream no longer holds the process: it ends when idle
    expect(await pollUntil(running, (pids) => pids.length === 0, 5000)).toEqual([]);
  });
});

describe("a gateway process ended with SIGTERM", () => {
  afterEach(() => killAll());

  it("leaves none of its stdio processes behind", async () => {
    const dir = tempDir("stdio-sigterm");
    const file = join(dir, "gateway.json");
    writeFileSync(
      file,
      JSON.stringify({ mcpServers: { everything: { command: bin("mcp-server-everything") }, memory: { command: bin("mcp-server-memory") } } }),
    );
    const port = await freePort();
    const gateway = await startGatewayProcess(
      ["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, "--store", "memory", "--config", file, "--stdio-dir", join(dir, "processes")],
      { HOME: dir, MCP_GATEWAY_USERNAME: LOGIN.username, MCP_GATEWAY_PASSWORD: LOGIN.password },
    );
    for (const name of ["everything", "memory"]) {
      const { client } = await stdioClient(gateway.url, `${gateway.url}/mcp/${name}`);
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    }
    const children = processesUnder(gateway.child.pid!, "mcp-server-");
    expect(children).toHaveLength(2);
    await gateway.kill("SIGTERM");
    expect(await gateway.exited).toMatchObject({ code: 0 });
    expect(children.filter(alive)).toEqual([]);
  });
});
