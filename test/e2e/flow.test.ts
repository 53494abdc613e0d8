import { afterEach, describe, expect, it } from "vitest";
import { connectWithOAuth } from "../support/connect.js";
import { startStack, type Stack } from "../support/stack.js";

const HOUR = 3600_000;

/** The whole chain, driven by the real MCP SDK client, against the GitHub simulator. */
describe.each(["oauth_app", "github_app"] as const)("end to end through the gateway (%s)", (mode) => {
  let stack: Stack;
  afterEach(() => stack?.close());

  it("discovers, registers, signs in, lists tools and calls get_me", async () => {
    stack = await startStack({ mode });
    const { client, redirect } = await connectWithOAuth(stack.mcpUrl);
    expect(redirect.searchParams.get("iss")).toBe(stack.gateway.publicUrl);

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["get_me", "count_slowly"]));
    const me = await client.callTool({ name: "get_me", arguments: {} });
    const text = (me.content as { type: string; text: string }[])[0]!.text;
    expect(JSON.parse(text)).toMatchObject({ login: stack.simulator.users[0]!.login, id: stack.simulator.users[0]!.id });
    await client.close();
  });

  it("relays progress notifications one by one while the tool runs", async () => {
    stack = await startStack({ mode });
    const { client } = await connectWithOAuth(stack.mcpUrl);
    const arrivals: number[] = [];
    const started = Date.now();
    await client.callTool({ name: "count_slowly", arguments: { count: 5, intervalMs: 250 } }, undefined, { onprogress: () => void arrivals.push(Date.now()) });
    const finished = Date.now();
    expect(arrivals).toHaveLength(5);
    // Streamed, not buffered: the first event arrives long before the result, and they are spread out.
    expect(arrivals[0]! - started).toBeLessThan(finished - started - 600);
    expect(arrivals[4]! - arrivals[0]!).toBeGreaterThan(600);
    await client.close();
  });

  it("refreshes after the token lifetime and calls again", async () => {
    stack = await startStack({ mode });
    const { client, provider } = await connectWithOAuth(stack.mcpUrl);
    await client.callTool({ name: "get_me", arguments: {} });
    const before = stack.simulator.issuedTokens().access.length;

    stack.clock.advance(8 * HOUR + 60_000); // past the gateway token and a GitHub App token alike
    const me = await client.callTool({ name: "get_me", arguments: {} });
    expect(me.isError).toBeFalsy();
    expect(provider.tokenHistory).toHaveLength(2);
    expect(provider.tokenHistory[1]!.refresh_token).not.toBe(provider.tokenHistory[0]!.refresh_token);
    const refreshedUpstream = stack.simulator.issuedTokens().access.length - before;
    // GitHub App tokens expire and are refreshed upstream; OAuth App tokens never expire.
    expect(refreshedUpstream).toBe(mode === "github_app" ? 1 : 0);
    await client.close();
  });
});
