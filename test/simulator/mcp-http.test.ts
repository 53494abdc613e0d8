import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { GITHUB_APP, OAUTH_APP, login, mcpPost, toolsCall } from "./helpers.js";

const LIST = { jsonrpc: "2.0", id: 1, method: "tools/list" };
const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
};

const sseData = (body: string): Record<string, unknown> => {
  const line = body.split("\n").find((l) => l.startsWith("data: "));
  return JSON.parse(line?.slice("data: ".length) ?? "null") as Record<string, unknown>;
};

describe("api.githubcopilot.com over raw HTTP (spec S3)", () => {
  let sim: Simulator;
  let gho: string;
  beforeAll(async () => {
    sim = await startSimulator();
    gho = (await login(sim, OAUTH_APP, { scope: "repo read:org" })).access_token as string;
  });
  afterAll(() => sim.close());

  it("answers OPTIONS 200 with CORS before auth", async () => {
    const res = await fetch(sim.mcpUrl, { method: "OPTIONS" });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-expose-headers")).toBe("Mcp-Session-Id, WWW-Authenticate");
    expect(res.headers.get("server")).toBe("github-mcp-server-remote");
  });

  it("no token: 401 invalid_request pointing at the PRM of the requested path", async () => {
    const res = await mcpPost(sim, undefined, LIST);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe(
      `Bearer error="invalid_request", error_description="No access token was provided in this request", resource_metadata="${sim.mcpOrigin}/.well-known/oauth-protected-resource/mcp/"`,
    );
    expect(await res.text()).toBe("Unauthorized\n");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const readonly = await fetch(`${sim.mcpOrigin}/mcp/readonly`, { method: "GET" });
    expect(readonly.headers.get("www-authenticate")).toContain(`resource_metadata="${sim.mcpOrigin}/.well-known/oauth-protected-resource/mcp/readonly"`);
  });

  it("unknown token: 401 invalid_token, still with resource_metadata", async () => {
    const res = await mcpPost(sim, "gho_notarealtoken00000000000000000000000", LIST);
    expect(res.status).toBe(401);
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/^Bearer error="invalid_token", error_description="[^"]+", resource_metadata="/);
  });

  it("serves PRM at the path-inserted URL, echoing the trailing slash; QUIRK content-type", async () => {
    const slash = await fetch(`${sim.mcpOrigin}/.well-known/oauth-protected-resource/mcp/`);
    expect(slash.status).toBe(200);
    expect(slash.headers.get("content-type")).toBe("application/json, application/json");
    expect(await slash.json()).toMatchObject({
      resource: `${sim.mcpOrigin}/mcp/`,
      authorization_servers: [`${sim.webOrigin}/login/oauth`],
      bearer_methods_supported: ["header"],
      resource_name: "GitHub MCP Server",
    });
    const bare = (await (await fetch(`${sim.mcpOrigin}/.well-known/oauth-protected-resource/mcp`)).json()) as { resource: string };
    expect(bare.resource).toBe(`${sim.mcpOrigin}/mcp`);
    const toolset = (await (await fetch(`${sim.mcpOrigin}/.well-known/oauth-protected-resource/mcp/x/repos/readonly`)).json()) as { resource: string };
    expect(toolset.resource).toBe(`${sim.mcpOrigin}/mcp/x/repos/readonly`);
    for (const root of ["/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server", "/nope"]) {
      expect((await fetch(`${sim.mcpOrigin}${root}`)).status).toBe(404);
    }
  });

  it("GET and DELETE with a valid token: 405 Allow: POST", async () => {
    for (const method of ["GET", "DELETE"]) {
      const res = await fetch(sim.mcpUrl, { method, headers: { authorization: `Bearer ${gho}`, accept: "text/event-stream" } });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
    }
  });

  it("POST transport checks: Accept 400, Content-Type 415, protocol version 400", async () => {
    const accept = await mcpPost(sim, gho, LIST, { accept: "application/json" });
    expect(accept.status).toBe(400);
    expect(await accept.text()).toContain("Accept must contain both 'application/json' and 'text/event-stream'");
    expect((await mcpPost(sim, gho, LIST, { "content-type": "text/plain" })).status).toBe(415);
    const version = await mcpPost(sim, gho, LIST, { "mcp-protocol-version": "2099-01-01" });
    expect(version.status).toBe(400);
    expect(await version.text()).toContain("Unsupported protocol version");
    expect((await mcpPost(sim, gho, LIST, { "mcp-protocol-version": "2026-07-28" })).status).toBe(200);
  });

  it("answers every request as one SSE message, stateless, without initialize", async () => {
    const res = await mcpPost(sim, gho, LIST);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect(res.headers.get("mcp-session-id")).toBeNull();
    const body = await res.text();
    expect(body.startsWith("event: message\ndata: ")).toBe(true);
    expect(sseData(body)).toMatchObject({ id: 1, result: { tools: expect.any(Array) as unknown } });
    const init = sseData(await (await mcpPost(sim, gho, INITIALIZE)).text());
    expect(init).toMatchObject({ result: { protocolVersion: "2025-06-18", serverInfo: { name: "github-mcp-server", title: "GitHub MCP Server" } } });
    const notification = await mcpPost(sim, gho, { jsonrpc: "2.0", method: "notifications/initialized" });
    expect(notification.status).toBe(202);
  });

  it("step-up: gho_ without gist gets 403 insufficient_scope on create_gist", async () => {
    const res = await mcpPost(sim, gho, toolsCall("create_gist", { filename: "a.txt", content: "hi" }));
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toBe(
      `Bearer error="insufficient_scope", scope="read:org repo gist", resource_metadata="${sim.mcpOrigin}/.well-known/oauth-protected-resource/mcp/", error_description="Additional scopes required: gist"`,
    );
    expect(await res.text()).toBe("Forbidden: insufficient scopes\n");
    expect((await mcpPost(sim, gho, toolsCall("search_repositories", { query: "mcp" }))).status).toBe(200);
    const ghu = (await login(sim, GITHUB_APP)).access_token as string;
    expect((await mcpPost(sim, ghu, toolsCall("create_gist", { filename: "a.txt", content: "hi" }))).status).toBe(200);
  });

  it("/mcp/readonly and X-MCP-Tools shape the tool list; an unknown tool name is a 400", async () => {
    const names = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${sim.mcpOrigin}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${gho}`, "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
        body: JSON.stringify(LIST),
      });
      const data = sseData(await res.text()) as { result: { tools: Array<{ name: string }> } };
      return data.result.tools.map((t) => t.name);
    };
    expect(await names("/mcp/readonly")).not.toContain("create_gist");
    expect(await names("/mcp/", { "x-mcp-tools": "get_me" })).toEqual(["get_me"]);
    expect((await mcpPost(sim, gho, LIST, { "x-mcp-tools": "no_such_tool" })).status).toBe(400);
  });
});

describe("MCP toggles", () => {
  it("emitLegacySessionId adds an Mcp-Session-Id to the initialize response only", async () => {
    const sim = await startSimulator({ quirks: { emitLegacySessionId: true } });
    try {
      const token = (await login(sim, OAUTH_APP)).access_token as string;
      expect((await mcpPost(sim, token, INITIALIZE)).headers.get("mcp-session-id")).toMatch(/^[0-9a-f-]{36}$/);
      expect((await mcpPost(sim, token, LIST, { "mcp-session-id": "whatever" })).headers.get("mcp-session-id")).toBeNull();
    } finally {
      await sim.close();
    }
  });

  it("prmResourceBug2025 drops the trailing slash from resource", async () => {
    const sim = await startSimulator({ quirks: { prmResourceBug2025: true } });
    try {
      const prm = (await (await fetch(`${sim.mcpOrigin}/.well-known/oauth-protected-resource/mcp/`)).json()) as { resource: string };
      expect(prm.resource).toBe(`${sim.mcpOrigin}/mcp`);
    } finally {
      await sim.close();
    }
  });

  it("validateTokensUpfront: false only checks the prefix; bad tokens fail inside tools", async () => {
    const sim = await startSimulator({ quirks: { validateTokensUpfront: false } });
    try {
      expect((await mcpPost(sim, "not-a-github-token", LIST)).status).toBe(400);
      const res = await mcpPost(sim, "gho_unknown000000000000000000000000000000", toolsCall("get_me"));
      expect(res.status).toBe(200);
      expect(sseData(await res.text())).toMatchObject({ result: { isError: true } });
    } finally {
      await sim.close();
    }
  });
});
