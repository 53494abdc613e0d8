import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../src/gateway.js";
import { JSONRPC } from "../../src/rs/jsonrpc.js";
import type { McpPolicy } from "../../src/rs/policy.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { connectWithOAuth } from "../support/connect.js";
import { LOGIN } from "../support/config.js";
import { simulatorServer, startTestGateway } from "../support/gateway.js";

/** The policy hook (src/rs/policy.ts) of a started gateway (GatewayOptions.policy), with the real MCP SDK client and the simulator's MCP server. */
describe("a policy given to startGateway", () => {
  let simulator: Simulator;
  let gateway: Gateway;
  const asked: string[] = [];
  const noGists: McpPolicy = (access, call) => {
    if (call?.tool) asked.push(`${access.claims.sub} ${call.tool}`);
    return call?.tool === "create_gist" ? { allow: false, reason: "gists are not for this gateway" } : { allow: true };
  };

  beforeAll(async () => {
    simulator = await startSimulator();
    gateway = await startTestGateway({ mcpServers: { github: simulatorServer(simulator) }, atMcp: true, policy: noGists });
  });
  afterAll(async () => {
    await gateway?.close();
    await simulator?.close();
  });

  it("relays the tools it allows and refuses the others with JSON-RPC forbiddenByPolicy, never reaching the upstream", async () => {
    const { client } = await connectWithOAuth(`${gateway.publicUrl}/mcp`);
    const me = await client.callTool({ name: "get_me", arguments: {} });
    expect(me.isError).toBeFalsy();
    const toolCalls = () =>
      simulator.requests
        .filter((r) => r.origin === "mcp" && r.body.includes('"tools/call"'))
        .map((r) => (JSON.parse(r.body) as { params: { name: string } }).params.name);
    expect(toolCalls()).toEqual(["get_me"]);
    const refused = await client.callTool({ name: "create_gist", arguments: { files: { "a.txt": { content: "x" } } } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(McpError);
    expect((refused as McpError).code).toBe(JSONRPC.forbiddenByPolicy);
    expect((refused as McpError).message).toContain("gists are not for this gateway");
    expect(toolCalls()).toEqual(["get_me"]);
    expect(asked).toEqual([`${LOGIN.username} get_me`, `${LOGIN.username} create_gist`]);
    await client.close();
  });
});
