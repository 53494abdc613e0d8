import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { OAUTH_APP, login } from "./helpers.js";

async function connect(url: string, token: string): Promise<Client> {
  const client = new Client({ name: "simulator-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

const firstText = (result: unknown): string => {
  const item = (result as CallToolResult).content[0];
  return item?.type === "text" ? item.text : "";
};

describe("the hosted MCP server through the real SDK client", () => {
  let sim: Simulator;
  let client: Client;
  let token: string;
  beforeAll(async () => {
    sim = await startSimulator();
    token = (await login(sim, OAUTH_APP, { scope: "repo gist notifications read:user" })).access_token as string;
    client = await connect(sim.mcpUrl, token);
  });
  afterAll(async () => {
    await client.close();
    await sim.close();
  });

  it("initializes as github-mcp-server without handing out a session", () => {
    expect(client.getServerVersion()).toMatchObject({ name: "github-mcp-server", title: "GitHub MCP Server" });
    const initialize = sim.requests.find((r) => r.origin === "mcp" && r.body.includes('"initialize"'));
    expect(initialize?.headers.authorization).toBe(`Bearer ${token}`);
  });

  it("lists the fixture tools with readOnlyHint annotations and input schemas", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(["get_me", "search_repositories", "create_gist", "list_notifications", "count_slowly"]);
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get("get_me")?.annotations?.readOnlyHint).toBe(true);
    expect(byName.get("create_gist")?.annotations?.readOnlyHint).toBe(false);
    expect(byName.get("search_repositories")?.inputSchema.required).toEqual(["query"]);
  });

  it("get_me returns the token's user as MinimalUser JSON", async () => {
    const me = JSON.parse(firstText(await client.callTool({ name: "get_me", arguments: {} }))) as Record<string, unknown>;
    expect(me).toMatchObject({
      login: "octocat",
      id: 583231,
      profile_url: `${sim.webOrigin}/octocat`,
      avatar_url: "https://avatars.githubusercontent.com/u/583231?v=4",
      details: { name: "The Octocat", public_repos: expect.any(Number) as unknown, private_gists: expect.any(Number) as unknown },
    });
  });

  it("scoped tools answer with small fake results", async () => {
    const search = JSON.parse(firstText(await client.callTool({ name: "search_repositories", arguments: { query: "mcp" } }))) as { items: unknown[] };
    expect(search.items.length).toBeGreaterThan(0);
    const gist = JSON.parse(firstText(await client.callTool({ name: "create_gist", arguments: { filename: "a.md", content: "# hi" } }))) as { url: string };
    expect(gist.url).toMatch(new RegExp(`^${sim.webOrigin}/gist/`));
    expect(firstText(await client.callTool({ name: "list_notifications", arguments: {} }))).toContain("review_requested");
  });

  it("count_slowly streams progress notifications spread out in real time", async () => {
    const started = Date.now();
    const progress: Array<{ at: number; progress: number; total?: number }> = [];
    const result = await client.callTool({ name: "count_slowly", arguments: { count: 4, intervalMs: 150 } }, undefined, {
      onprogress: (p) => progress.push({ at: Date.now() - started, progress: p.progress, total: p.total }),
    });
    const finished = Date.now() - started;
    expect(firstText(result)).toBe("counted to 4");
    expect(progress.map((p) => [p.progress, p.total])).toEqual([
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ]);
    expect(finished).toBeGreaterThanOrEqual(550);
    expect(progress[0]?.at).toBeLessThan(finished - 300);
  });

  it("/mcp/readonly hides write tools", async () => {
    const readonly = await connect(`${sim.mcpOrigin}/mcp/readonly`, token);
    try {
      const names = (await readonly.listTools()).tools.map((t) => t.name);
      expect(names).toContain("get_me");
      expect(names).not.toContain("create_gist");
    } finally {
      await readonly.close();
    }
  });
});
