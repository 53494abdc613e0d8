import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { LoggingMessageNotificationSchema, type LoggingMessageNotification, type Progress } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Arrivals } from "../support/arrivals.js";
import { connectWithOAuth } from "../support/connect.js";
import { startMcpUpstream, type McpUpstream } from "../support/mcp-upstream.js";
import type { RecordingOAuthProvider } from "../support/oauth-client.js";
import { startStack, type Stack } from "../support/stack.js";

/** What the client has received so far; the upstream sends the next message only once the previous one is here. */
const progress = new Arrivals<Progress>();
const logs = new Arrivals<LoggingMessageNotification["params"]>();

/**
 * An upstream that cannot get ahead of its client: each message waits until the client has the one
 * before. A relay that held back any event, until the response or the next event, would stall it.
 */
function lockstepServer(): McpServer {
  const server = new McpServer({ name: "lockstep-upstream", version: "1.0.0" }, { capabilities: { logging: {} } });
  server.registerTool("count_in_lockstep", { inputSchema: { count: z.number().int().min(1) } }, async ({ count }, extra) => {
    const progressToken = extra._meta?.progressToken;
    if (progressToken === undefined) throw new Error("the client asked for no progress");
    for (let k = 1; k <= count; k++) {
      await extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress: k, total: count, message: `step ${k}` } });
      await progress.until((p) => p.progress === k, `progress ${k} at the client`);
    }
    return { content: [{ type: "text", text: `counted to ${count} in lockstep` }] };
  });
  return server;
}

/** The real MCP SDK on both ends and the gateway between them: events arrive as they are sent, not when the exchange ends. */
describe("streaming through the gateway with the MCP SDK on both ends", () => {
  let upstream: McpUpstream;
  let stack: Stack;
  let client: Client;
  let provider: RecordingOAuthProvider;

  beforeAll(async () => {
    upstream = await startMcpUpstream(lockstepServer);
    stack = await startStack({ upstreamRs: upstream.url });
    ({ client, provider } = await connectWithOAuth(stack.mcpUrl));
    client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => logs.push(notification.params));
  });
  afterAll(async () => {
    await client?.close();
    await stack?.close();
    await upstream?.close();
  });

  it("relays a long tool call's progress notifications one by one, in order, before the result", async () => {
    const result = await client.callTool({ name: "count_in_lockstep", arguments: { count: 5 } }, undefined, { onprogress: (p) => progress.push(p) });
    expect(result).toMatchObject({ content: [{ type: "text", text: "counted to 5 in lockstep" }] });
    expect(result.isError).toBeFalsy();
    expect(progress.values).toEqual([1, 2, 3, 4, 5].map((k) => ({ progress: k, total: 5, message: `step ${k}` })));
  });

  it("relays notifications the server sends outside any request down the GET stream, one by one, in order", async () => {
    const sessionId = await upstream.openStreams.until(() => true, "the client's GET stream at the upstream");
    expect(upstream.requests).toContainEqual(expect.objectContaining({ method: "GET", sessionId }));
    const server = upstream.sessions.get(sessionId)!;
    for (let n = 1; n <= 3; n++) {
      await server.sendLoggingMessage({ level: "info", logger: "upstream", data: { n } });
      await logs.until((l) => (l.data as { n: number }).n === n, `log message ${n} at the client`);
    }
    expect(logs.values).toEqual([1, 2, 3].map((n) => ({ level: "info", logger: "upstream", data: { n } })));
  });

  it("sends the upstream its own token on every request, never the client's gateway token", () => {
    const upstreamTokens = stack.simulator.issuedTokens().access.map((t) => `Bearer ${t}`);
    const gatewayToken = provider.tokens()!.access_token;
    expect(upstream.requests.map((r) => r.method)).toEqual(expect.arrayContaining(["POST", "GET"]));
    for (const { authorization } of upstream.requests) {
      expect(upstreamTokens).toContain(authorization);
      expect(authorization).not.toContain(gatewayToken.split("~")[0]);
    }
  });
});
