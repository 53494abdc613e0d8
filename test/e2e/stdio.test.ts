import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../src/gateway.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { LOGIN } from "../support/config.js";
import { connectWithOAuth, getMe } from "../support/connect.js";
import { simulatorServer, startTestGateway } from "../support/gateway.js";
import { contentOf, stdioClient } from "../support/stdio-clients.js";
import { alive, bin, cwdOf, processesUnder } from "../support/stdio-procs.js";

const BOB = { username: "bob", password: "a different correct horse" };

/**
 * Issue 18 acceptance, the bridge's part: a --config gateway with the GitHub simulator and two stdio
 * servers from npm (server-everything; server-memory with a per-user file, and once more shared), each
 * used by the real MCP SDK client through /mcp/<name>.
 */
describe("stdio servers behind the gateway", () => {
  let simulator: Simulator;
  let gateway: Gateway;
  let sharedFile: string;
  let dir: string;
  const clients: Client[] = [];
  const url = (name: string) => `${gateway.publicUrl}/mcp/${name}`;
  const connect = async (name: string, login = LOGIN) => {
    const connected = await stdioClient(gateway.publicUrl, url(name), login);
    clients.push(connected.client);
    return connected;
  };
  const entities = async (client: Client) => JSON.parse(contentOf(await client.callTool({ name: "read_graph", arguments: {} }))) as unknown;

  beforeAll(async () => {
    simulator = await startSimulator();
    dir = mkdtempSync(join(tmpdir(), "stdio-e2e-"));
    sharedFile = join(dir, "shared-memory.jsonl");
    gateway = await startTestGateway({
      mcpServers: {
        github: simulatorServer(simulator),
        everything: { command: bin("mcp-server-everything") },
        memory: { command: bin("mcp-server-memory"), env: { MEMORY_FILE_PATH: "{{userDir}}/memory.jsonl" } },
        notes: { command: bin("mcp-server-memory"), shared: true, env: { MEMORY_FILE_PATH: sharedFile } },
      },
      users: [LOGIN, BOB],
      // every grant of these tests is a client of its own, and so a process of its own
      stdio: { dir, maxPerUser: 20 },
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await gateway?.close();
    await simulator?.close();
  });

  it("the SDK client signs in to the GitHub upstream and to both stdio servers, and calls their tools", async () => {
    const github = await connectWithOAuth(`${gateway.publicUrl}/mcp/github`);
    clients.push(github.client);
    expect((await getMe(github.client)).login).toBe("octocat");
    // discovery and sign-in as for any upstream: 401, metadata, registration, the browser, the code
    const memory = await connectWithOAuth(url("memory"));
    clients.push(memory.client);
    expect(await entities(memory.client)).toBeDefined();
    const { client } = await connect("everything");
    expect(contentOf(await client.callTool({ name: "echo", arguments: { message: "through the gateway" } }))).toContain("Echo: through the gateway");
  });

  it("streams progress notifications of a long call to the client", async () => {
    const { client } = await connect("everything");
    const steps: number[] = [];
    const result = await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 1, steps: 4 } }, undefined, {
      onprogress: ({ progress }) => steps.push(progress),
    });
    expect(contentOf(result)).toContain("completed");
    expect(steps).toEqual([1, 2, 3, 4]);
  });

  it("carries the server's sampling and elicitation requests to the client's handlers and their answers back", async () => {
    const { client } = await connect("everything");
    expect(contentOf(await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "a haiku" } }))).toContain("sampled by the client");
    expect(contentOf(await client.callTool({ name: "trigger-elicitation-request", arguments: {} }))).toContain("Ada Lovelace");
  });

  it("keeps each user's memory apart ({{userDir}}), and shares it on a shared server with a fixed file", async () => {
    const alice = (await connect("memory")).client;
    const bob = (await connect("memory", BOB)).client;
    await alice.callTool({ name: "create_entities", arguments: { entities: [{ name: "alice-secret", entityType: "note", observations: ["only alice"] }] } });
    expect(JSON.stringify(await entities(alice))).toContain("alice-secret");
    expect(JSON.stringify(await entities(bob))).not.toContain("alice-secret");
    expect(readFileSync(join(dir, "memory", LOGIN.username, "memory.jsonl"), "utf8")).toContain("alice-secret");

    const aliceNotes = (await connect("notes")).client;
    const bobNotes = (await connect("notes", BOB)).client;
    await aliceNotes.callTool({ name: "create_entities", arguments: { entities: [{ name: "team-note", entityType: "note", observations: ["for all"] }] } });
    expect(JSON.stringify(await entities(bobNotes))).toContain("team-note");
    expect(readFileSync(sharedFile, "utf8")).toContain("team-note");
  });

  it("answers a session of another user on a shared server as unknown (404)", async () => {
    const { transport } = await connect("notes");
    const { token: bobsToken } = await connect("notes", BOB);
    const response = await fetch(url("notes"), {
      method: "POST",
      headers: {
        authorization: `Bearer ${bobsToken}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": transport.sessionId!,
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 5, method: "tools/list" }),
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ id: 5, error: { code: -32001 } });
  });

  it("gives a call a JSON-RPC error when its process is killed mid-call, and the next call works in a new process", async () => {
    const { client } = await connect("everything", BOB);
    // bob's process, told by its working directory (the pool starts each in its user's directory)
    const [bobs] = processesUnder(process.pid, "server-everything").filter((pid) => cwdOf(pid).endsWith(join("everything", BOB.username)));
    let progressed!: () => void;
    const running = new Promise<void>((resolve) => (progressed = resolve));
    const call = client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 20, steps: 20 } }, undefined, {
      onprogress: () => progressed(),
    });
    await running;
    process.kill(bobs!, "SIGKILL");
    await expect(call).rejects.toMatchObject({ code: -32603, message: expect.stringContaining("The stdio server everything exited") });
    expect(contentOf(await client.callTool({ name: "echo", arguments: { message: "after the crash" } }))).toContain("after the crash");
    expect(alive(bobs!)).toBe(false);
  });

  it("speaks MCP 2026-07-28 by hand: server/discover and tools/call without a session; a version header unlike _meta's is 400", async () => {
    const { token } = await connect("everything", BOB);
    const meta = {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": {},
      "io.modelcontextprotocol/clientInfo": { name: "by-hand", version: "1.0.0" },
    };
    const post = (method: string, params: Record<string, unknown>, version = "2026-07-28") =>
      fetch(url("everything"), {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          accept: "application/json",
          "mcp-protocol-version": version,
          "mcp-method": method,
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: { ...params, _meta: meta } }),
      });
    const discover = await post("server/discover", {});
    expect(discover.status).toBe(200);
    expect(await discover.json()).toMatchObject({ result: { supportedVersions: ["2026-07-28"], serverInfo: { name: expect.stringMatching(/everything/) } } });
    const call = await post("tools/call", { name: "get-sum", arguments: { a: 2, b: 3 } });
    expect(call.status).toBe(200);
    expect(call.headers.get("mcp-session-id")).toBeNull();
    expect(JSON.stringify(await call.json())).toContain("5");
    const mismatch = await post("tools/list", {}, "2025-11-25");
    expect(mismatch.status).toBe(400);
    expect(await mismatch.json()).toMatchObject({ id: 1, error: { code: -32020 } });
  });
});
