import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Gateway } from "../../src/gateway.js";
import { MemoryStore } from "../../src/store/memory.js";
import { startTestGateway } from "../support/gateway.js";
import { grantFor } from "../support/oauth-steps.js";
import { startMcpUpstream, type McpUpstream } from "../support/mcp-upstream.js";
import { freePort } from "../support/processes.js";

const USERS = { alice: "alice's long password", bob: "bob's long password too" };

/** An upstream whose `announce` tool logs to its session's standalone GET stream, where every request of that session can be heard. */
function announcingServer(): McpServer {
  const server = new McpServer({ name: "announcer", version: "1.0.0" }, { capabilities: { logging: {} } });
  server.registerTool("announce", { inputSchema: { text: z.string() } }, async ({ text }) => {
    await server.server.sendLoggingMessage({ level: "info", data: text });
    return { content: [{ type: "text", text: "announced" }] };
  });
  return server;
}

/** The memory store, with every read of a session binding noted. */
class WatchedStore extends MemoryStore {
  readonly bindingReads: string[] = [];
  override get<T>(key: string): Promise<T | undefined> {
    if (key.startsWith("mcp-session:")) this.bindingReads.push(key);
    return super.get<T>(key);
  }
}

/**
 * docs/security.md MU9, issue 16 item 6: an upstream reached with one API key for everyone (it
 * cannot tell users apart), two gateway users, and two gateway instances sharing one store.
 */
describe("Mcp-Session-Id bound to its client and user", () => {
  let upstream: McpUpstream;
  const watched = new WatchedStore();
  const gateways: Gateway[] = [];
  /** The MCP endpoint of each instance, both under the first one's public URL. */
  const endpoints: string[] = [];
  const tokens: Record<string, string> = {};
  let alice: { client: Client; transport: StreamableHTTPClientTransport; heard: unknown[] };

  beforeAll(async () => {
    const apiKey = randomBytes(24).toString("base64url");
    upstream = await startMcpUpstream(announcingServer, { requireHeader: { name: "x-api-key", value: apiKey } });
    const [first, second] = [await freePort(), await freePort()];
    for (const port of [first, second]) {
      const gateway = await startTestGateway({
        mcpServers: { team: { url: upstream.url, auth: { header: "X-API-Key", value: "${TEAM_KEY}" } } },
        env: { TEAM_KEY: apiKey },
        port,
        publicUrl: `http://127.0.0.1:${first}`,
        users: Object.entries(USERS).map(([username, password]) => ({ username, password })),
        secret: "a shared master secret of at least thirty-two characters",
        store: watched,
      });
      gateways.push(gateway);
      endpoints.push(`http://127.0.0.1:${port}/mcp/team`);
    }
    for (const [name, password] of Object.entries(USERS)) tokens[name] = await accessToken(gateways[0]!.publicUrl, name, password);

    // Alice's real SDK client, on the first instance, with its GET stream open at the upstream
    const transport = new StreamableHTTPClientTransport(new URL(endpoints[0]!), { requestInit: { headers: { authorization: `Bearer ${tokens.alice}` } } });
    const client = new Client({ name: "alice", version: "1.0.0" });
    const heard: unknown[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void heard.push(n.params.data));
    await client.connect(transport);
    await upstream.openStreams.until((id) => id === transport.sessionId, "alice's GET stream at the upstream");
    alice = { client, transport, heard };
  }, 60_000);

  afterAll(async () => {
    await alice?.client.close();
    for (const gateway of gateways) await gateway.close();
    await upstream?.close();
  });

  /** A raw call of `announce` on the session given, as any client could make it. */
  const announce = (endpoint: string, token: string, sessionId: string, text: string) =>
    fetch(endpoint, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": "2025-06-18",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "announce", arguments: { text } } }),
    });
  const toSession = (sessionId: string) => upstream.requests.filter((r) => r.sessionId === sessionId).length;

  it("MU9 another user presenting a user's session id gets 404, and nothing of it reaches the upstream or the user's stream", async () => {
    const sessionId = alice.transport.sessionId!;
    const before = toSession(sessionId);
    for (const endpoint of endpoints) {
      const response = await announce(endpoint, tokens.bob!, sessionId, "from bob");
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } });
      const stream = await fetch(endpoint, { headers: { authorization: `Bearer ${tokens.bob}`, accept: "text/event-stream", "mcp-session-id": sessionId } });
      expect(stream.status).toBe(404);
      await stream.body?.cancel();
      const end = await fetch(endpoint, { method: "DELETE", headers: { authorization: `Bearer ${tokens.bob}`, "mcp-session-id": sessionId } });
      expect(end.status).toBe(404);
    }
    expect(toSession(sessionId)).toBe(before);

    // the premise: alice's own call on her session, on either instance, is heard on her stream
    for (const endpoint of endpoints) {
      const own = await announce(endpoint, tokens.alice!, sessionId, `from alice at ${endpoint}`);
      expect(own.status).toBe(200);
      await own.text();
    }
    await expect.poll(() => alice.heard.length).toBe(2);
    expect(alice.heard).toEqual(endpoints.map((endpoint) => `from alice at ${endpoint}`));
    await expect(alice.client.callTool({ name: "announce", arguments: { text: "still hers" } })).resolves.toMatchObject({ content: [{ text: "announced" }] });
  });

  it("MU9 another user's session id under another spelling (mcp_session_id) never reaches the upstream, which could read it as Mcp-Session-Id", async () => {
    const sessionId = alice.transport.sessionId!;
    const before = upstream.requests.length;
    for (const spelling of ["mcp_session_id", "Mcp_Session_Id", "mcp-session_id"]) {
      const response = await fetch(endpoints[0]!, {
        method: "POST",
        headers: {
          authorization: `Bearer ${tokens.bob}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          [spelling]: sessionId,
          "mcp-protocol-version": "2025-06-18",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "announce", arguments: { text: "from bob" } } }),
      });
      expect(response.status).toBeLessThan(500);
      await response.body?.cancel();
    }
    const seen = upstream.requests.slice(before);
    // the premise: the requests went on, as sessionless ones, so what the upstream was sent can be read
    expect(seen).toHaveLength(3);
    for (const { headers } of seen) {
      expect(Object.keys(headers).filter((name) => name.replaceAll("_", "-") === "mcp-session-id")).toEqual([]);
      expect(Object.values(headers)).not.toContain(sessionId);
    }
    await alice.client.callTool({ name: "announce", arguments: { text: "after bob's tries" } });
    // her stream is ordered: once her own call is heard, anything of bob's on her session would have been
    await expect.poll(() => alice.heard).toContain("after bob's tries");
    expect(alice.heard).not.toContain("from bob");
  });

  it("MU9 a session id the gateway never saw is 404 without reaching the upstream", async () => {
    const requests = upstream.requests.length;
    const response = await announce(endpoints[0]!, tokens.alice!, "8d3bf2e5-0d2c-4c4e-9f55-1f5c2e2b7a11", "guessed");
    expect(response.status).toBe(404);
    await response.body?.cancel();
    expect(upstream.requests.length).toBe(requests);
  });

  it("MU9 a request on a known session reads no binding from the store (local cache); without a session id, none is read", async () => {
    const sessionId = alice.transport.sessionId!;
    const reads = watched.bindingReads.length;
    for (let i = 0; i < 5; i++) await alice.client.callTool({ name: "announce", arguments: { text: `cached ${i}` } });
    const stateless = await fetch(endpoints[1]!, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.alice}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
    });
    await stateless.body?.cancel();
    expect(watched.bindingReads.length).toBe(reads);
    expect(toSession(sessionId)).toBeGreaterThan(5);
  });

  it("MU9 a DELETE of the session drops its binding on every instance that reads the store", async () => {
    const transport = new StreamableHTTPClientTransport(new URL(endpoints[0]!), { requestInit: { headers: { authorization: `Bearer ${tokens.bob}` } } });
    const client = new Client({ name: "bob", version: "1.0.0" });
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    await transport.terminateSession();
    await client.close();
    // the second instance never cached it: it asks the store, which no longer has it
    const requests = upstream.requests.length;
    const response = await announce(endpoints[1]!, tokens.bob!, sessionId, "after the end");
    expect(response.status).toBe(404);
    await response.body?.cancel();
    expect(upstream.requests.length).toBe(requests);
  });
});

/** A token for `resource` of the first instance, by `username`'s sign-in through the browser step. */
const accessToken = async (base: string, username: string, password: string): Promise<string> =>
  (await grantFor(base, `${base}/mcp/team`, undefined, { username, password })).tokens.access_token!;
