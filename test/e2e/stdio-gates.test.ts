import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../src/gateway.js";
import { JSONRPC } from "../../src/rs/jsonrpc.js";
import type { McpPolicy } from "../../src/rs/policy.js";
import { startTestGateway } from "../support/gateway.js";
import { tempDir } from "../support/processes.js";
import { contentOf, stdioClient } from "../support/stdio-clients.js";
import { bin } from "../support/stdio-procs.js";

/** /mcp/<name> of a stdio server keeps the gates of every /mcp: bearer, Origin, body limit, the policy; bad input gets a 4xx, never a 5xx. */
describe("the gates in front of a stdio server", () => {
  let gateway: Gateway;
  const url = () => `${gateway.publicUrl}/mcp/everything`;
  const noSums: McpPolicy = (_access, call) => (call?.tool === "get-sum" ? { allow: false, reason: "no sums here" } : { allow: true });
  let token: string;

  beforeAll(async () => {
    gateway = await startTestGateway({
      mcpServers: { everything: { command: bin("mcp-server-everything") } },
      policy: noSums,
      stdio: { dir: tempDir("stdio-gates") },
    });
    const { client, token: bearer } = await stdioClient(gateway.publicUrl, url());
    token = bearer;
    await client.close();
  });
  afterAll(async () => gateway?.close());

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(url(), {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body,
    });

  it("asks the installed policy: a refused tool gets JSON-RPC forbiddenByPolicy, an allowed one runs", async () => {
    const { client } = await stdioClient(gateway.publicUrl, url());
    try {
      expect(contentOf(await client.callTool({ name: "echo", arguments: { message: "allowed" } }))).toContain("allowed");
      const refused = await client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(McpError);
      expect(refused).toMatchObject({ code: JSONRPC.forbiddenByPolicy, message: expect.stringContaining("no sums here") });
    } finally {
      await client.close();
    }
  });

  it("refuses a JSON-RPC batch 400 (-32600) while a policy is installed: the refused tool inside it never runs", async () => {
    const { client, transport, token: own } = await stdioClient(gateway.publicUrl, url());
    try {
      const sessionId = transport.sessionId!;
      const sum = { jsonrpc: "2.0", id: 41, method: "tools/call", params: { name: "get-sum", arguments: { a: 1, b: 2 } } };
      const batch = await post(JSON.stringify([sum]), { authorization: `Bearer ${own}`, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-03-26" });
      expect(batch.status).toBe(400);
      expect(await batch.json()).toMatchObject({ id: null, error: { code: JSONRPC.invalidRequest } });
    } finally {
      await client.close();
    }
  });

  it("challenges a request without a token with this server's metadata URL (401)", async () => {
    const response = await fetch(url(), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain(`resource_metadata="${gateway.publicUrl}/.well-known/oauth-protected-resource/mcp/everything"`);
  });

  it("answers a body that is not JSON 400 (-32700), one over 4 MB 413, a foreign Origin 403, and no session 400", async () => {
    const notJson = await post("{not json");
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ id: null, error: { code: -32700 } });
    expect((await post(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "x", params: { pad: "x".repeat(5 * 1024 * 1024) } }))).status).toBe(413);
    expect((await post(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }), { origin: "https://evil.example" })).status).toBe(403);
    const sessionless = await post(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }));
    expect(sessionless.status).toBe(400);
    expect(await sessionless.json()).toMatchObject({ id: 2, error: { code: -32000 } });
    const get = await fetch(url(), { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" } });
    expect(get.status).toBe(400);
  });
});
