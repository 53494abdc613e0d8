import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { connectWithOAuth } from "../support/connect.js";
import { TestBrowser } from "../support/browser.js";
import { authorizationRequest, mcpInitialize, register, REDIRECT_URI } from "../support/manual.js";
import { freePort } from "../support/processes.js";
import { expectRefusal } from "../support/refusal.js";
import { startMultiStack, type MultiStack } from "../support/multi-stack.js";
import { LOGIN } from "../support/stack.js";

const FORGED = {
  "X-Forwarded-User": "mallory",
  "X-Forwarded-Email": "mallory@evil.example",
  "X-Forwarded-Preferred-Username": "mallory",
  "X-Forwarded-Groups": "admins",
  // what CGI-style servers read as X-Forwarded-User, and other proxies' identity headers
  X_Forwarded_User: "mallory",
  "X-Forwarded_Email": "mallory@evil.example",
  "X-Auth-Request-User": "mallory",
  "Remote-User": "mallory",
};

const IDENTITY = /^(x-forwarded-|x-auth-request-|remote-user$)/;
const forwarded = (headers: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => IDENTITY.test(name.replaceAll("_", "-"))));

/**
 * Issue 6, identity headers: opted in by `internal` (static API key: the gateway user) and `github`
 * (GitHub's login and verified email), not by `plain`. Clients send forged ones everywhere.
 */
describe("identity headers", () => {
  let stack: MultiStack;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    stack = await startMultiStack({ plain: true, github: { identityHeaders: true } });
    for (const name of ["github", "internal", "plain"] as const) {
      const connected = await connectWithOAuth(stack.urls[name]!);
      tokens[name] = connected.provider.tokens()!.access_token;
      await connected.client.close();
    }
  }, 60_000);
  afterAll(() => stack?.close());

  it("reach an upstream that opted in as the gateway says, never as the client says", async () => {
    const before = stack.internal.requests.length;
    const response = await mcpInitialize(stack.urls.internal, `Bearer ${tokens.internal}`, FORGED);
    expect(response.status).toBe(200);
    await response.body?.cancel();
    const seen = stack.internal.requests.slice(before);
    expect(seen).toHaveLength(1);
    // a static credential has no upstream sign-in: the gateway user is who there is
    expect(forwarded(seen[0]!.headers)).toEqual({ "x-forwarded-user": LOGIN.username, "x-forwarded-preferred-username": LOGIN.username });
  });

  it("carry the GitHub login and verified email to a GitHub upstream that opted in", async () => {
    const before = stack.simulator.requests.length;
    const response = await mcpInitialize(stack.urls.github, `Bearer ${tokens.github}`, FORGED);
    expect(response.status).toBe(200);
    await response.body?.cancel();
    const seen = stack.simulator.requests.slice(before).filter((r) => r.origin === "mcp");
    expect(seen).toHaveLength(1);
    expect(forwarded(seen[0]!.headers)).toEqual({
      "x-forwarded-user": "octocat",
      "x-forwarded-email": "octocat@users.noreply.github.com",
      "x-forwarded-preferred-username": "octocat",
    });
  });

  it("never reach an upstream that did not opt in, even when the client sends them", async () => {
    const before = stack.plain!.requests.length;
    const response = await mcpInitialize(stack.urls.plain!, `Bearer ${tokens.plain}`, FORGED);
    expect(response.status).toBe(200);
    await response.body?.cancel();
    const seen = stack.plain!.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(forwarded(seen[0]!.headers)).toEqual({});
    expect(stack.plain!.requests.every((r) => Object.keys(forwarded(r.headers)).length === 0)).toBe(true);
  });

  it("are what the MCP server's tool sees through the real SDK client", async () => {
    const client = new Client({ name: "forger", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(stack.urls.internal), {
      requestInit: { headers: { authorization: `Bearer ${tokens.internal}`, ...FORGED } },
    });
    await client.connect(transport);
    const result = await client.callTool({ name: "whoami", arguments: {} });
    expect((result.content as { text: string }[])[0]!.text).toBe(LOGIN.username);
    await client.close();
  });
});

describe("identity headers of an upstream whose account cannot be looked up", () => {
  let stack: MultiStack;
  beforeAll(async () => {
    // GitHub's REST API, where the gateway asks who the user is, is down (nothing listens there)
    stack = await startMultiStack({ github: { identityHeaders: true, oauth: { apiUrl: `http://127.0.0.1:${await freePort()}` } } });
  }, 60_000);
  afterAll(() => stack?.close());

  it("end the sign-in with temporarily_unavailable rather than make a grant that would never carry them", async () => {
    const base = stack.gateway.publicUrl;
    const { client_id } = await register(base);
    const { url, state } = authorizationRequest(base, client_id, { resource: stack.urls.github });
    const browser = new TestBrowser();
    const end = await browser.walk(url, { redirectUri: REDIRECT_URI, ...LOGIN });
    const page = expectRefusal(end, browser, { state, issuer: base, error: "temporarily_unavailable" });
    expect(page).toContain("could not ask github who you are");
  });
});
