import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";
import { afterEach, describe, expect, it } from "vitest";
import { TestBrowser } from "../support/browser.js";
import { signingIn } from "../support/connect.js";
import { tokenRequest } from "../support/oauth-steps.js";
import { RecordingOAuthProvider } from "../support/oauth-client.js";
import { startStack, type Stack } from "../support/stack.js";

/** What the SDK client sent to the gateway and what it got back: the /token exchanges and the /mcp refusals. */
interface Exchange {
  method: string;
  path: string;
  status: number;
  grantType?: string;
  error?: string;
  challenge?: string;
}

/** A fetch for the SDK transport that records each exchange, reading copies of the answers. */
function recordingFetch(exchanges: Exchange[]): FetchLike {
  return async (url, init) => {
    const response = await fetch(url, init);
    const path = new URL(url).pathname;
    const entry: Exchange = { method: init?.method ?? "GET", path, status: response.status };
    if (path === "/token") {
      // the SDK sends its token requests as URLSearchParams
      entry.grantType = new URLSearchParams(init?.body as URLSearchParams).get("grant_type") ?? "";
      const body = (await response.clone().json()) as { error?: string };
      if (body.error) entry.error = body.error;
    }
    const challenge = response.headers.get("www-authenticate");
    if (challenge) entry.challenge = challenge;
    exchanges.push(entry);
    return response;
  };
}

/** The scopes the simulator's authorization endpoint was asked for, one entry per request, in order. */
const upstreamAuthorizations = (stack: Stack): string[][] =>
  stack.simulator.requests
    .filter((r) => r.origin === "web" && r.path.startsWith("/login/oauth/authorize?"))
    .map((r) => (new URL(r.path, stack.simulator.webOrigin).searchParams.get("scope") ?? "").split(/[\s,]+/).filter(Boolean));

const scopesOf = (challenge: string | undefined): string[] => (/scope="([^"]*)"/.exec(challenge ?? "")?.[1] ?? "").split(" ").filter(Boolean);

/**
 * MCP Authorization §Step-Up Authorization through the gateway: the GitHub simulator refuses
 * `create_gist` to a token without `gist`; the real SDK client, told so by the gateway, refreshes
 * (refused once), signs in again with the scope the challenge named, and the call goes through.
 */
describe("upstream step-up (403 insufficient_scope)", () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  /** The SDK client signed in once, on a grant of --upstream-scope "repo read:org". */
  async function signedIn() {
    stack = await startStack({ server: { oauth: { scope: "repo read:org" } } });
    const exchanges: Exchange[] = [];
    const provider = new RecordingOAuthProvider();
    const browser = new TestBrowser();
    const client = new Client({ name: "step-up", version: "1.0.0" });
    let transport = new StreamableHTTPClientTransport(new URL(stack.mcpUrl), { authProvider: provider, fetch: recordingFetch(exchanges) });
    const { authorized, signIns } = signingIn(provider, browser, () => transport, 3);

    await authorized(async () => {
      transport = new StreamableHTTPClientTransport(new URL(stack!.mcpUrl), { authProvider: provider, fetch: recordingFetch(exchanges) });
      await client.connect(transport);
    });
    return { stack, exchanges, provider, client, authorized, signIns };
  }

  const refresh = (stack: Stack, clientId: string, refreshToken: string) =>
    tokenRequest(stack.gateway.publicUrl, { grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId });

  it("create_gist without gist: the challenge names the union, one refresh is refused, the second sign-in asks the upstream for the union, and the call succeeds", async () => {
    const { stack, exchanges, provider, client, authorized, signIns } = await signedIn();
    const first = provider.tokenHistory[0]!;
    expect(upstreamAuthorizations(stack)).toHaveLength(1);
    expect(upstreamAuthorizations(stack)[0]!.sort()).toEqual(["read:org", "repo"]);
    expect(first.scope?.split(" ").sort()).toEqual(["read:org", "repo"]);
    exchanges.length = 0;

    const result = await authorized(() => client.callTool({ name: "create_gist", arguments: { filename: "a.txt", content: "hi" } }));
    expect(result.isError).toBeFalsy();
    expect(JSON.parse((result.content as { text: string }[])[0]!.text)).toMatchObject({ id: expect.any(String) });
    expect(signIns()).toBe(2);

    // The gateway's challenge, then the SDK's refresh refused, then the code of the second sign-in.
    // (The SDK's GET for a server stream, which the simulator answers 405, may come at any point.)
    const [refused, ...rest] = exchanges.filter((e) => e.method === "POST");
    expect(refused).toMatchObject({ path: "/mcp", status: 403 });
    expect(refused!.challenge).toContain('error="insufficient_scope"');
    expect(scopesOf(refused!.challenge).sort()).toEqual(["gist", "read:org", "repo"]);
    expect(rest.at(-1)).toMatchObject({ path: "/mcp", status: 200 });
    const tokenCalls = rest.filter((e) => e.path === "/token");
    expect(tokenCalls).toEqual([
      { method: "POST", path: "/token", status: 400, grantType: "refresh_token", error: "invalid_grant" },
      { method: "POST", path: "/token", status: 200, grantType: "authorization_code" },
    ]);

    // The second authorization at the upstream asked for every scope of the union.
    const asked = upstreamAuthorizations(stack);
    expect(asked).toHaveLength(2);
    expect(asked[1]!.sort()).toEqual(["gist", "read:org", "repo"]);
    expect(provider.tokenHistory.at(-1)!.scope?.split(" ").sort()).toEqual(["gist", "read:org", "repo"]);

    // The refusal left the first grant's refresh token as it was: it refreshes once more, with the first grant's scope.
    const again = await refresh(stack, provider.clientInformation()!.client_id, first.refresh_token!);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.scope?.split(" ").sort()).toEqual(["read:org", "repo"]);
    await client.close();
  });

  it("without a step-up pending, a refresh works at once, and again with its successor", async () => {
    const { stack, provider, client } = await signedIn();
    const first = provider.tokenHistory[0]!;
    const clientId = provider.clientInformation()!.client_id;
    // a call the grant covers refuses nothing, so no step-up is recorded for it
    expect((await client.callTool({ name: "get_me", arguments: {} })).isError).toBeFalsy();

    const once = await refresh(stack, clientId, first.refresh_token!);
    expect(once.status, JSON.stringify(once.body)).toBe(200);
    const twice = await refresh(stack, clientId, once.body.refresh_token!);
    expect(twice.status, JSON.stringify(twice.body)).toBe(200);
    await client.close();
  });

  /** Signed in on a grant without gist, then a raw create_gist answered with the step-up challenge (403). */
  async function challenged() {
    const { stack, provider } = await signedIn();
    const first = provider.tokenHistory[0]!;
    const response = await fetch(stack.mcpUrl, {
      method: "POST",
      headers: { authorization: `Bearer ${first.access_token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "create_gist", arguments: { filename: "a.txt", content: "hi" } } }),
    });
    expect(response.status).toBe(403);
    await response.body?.cancel();
    return { stack, clientId: provider.clientInformation()!.client_id, first };
  }

  it("the step-up refuses only the first refresh after the challenge: the same refresh token works on the next try", async () => {
    const { stack, clientId, first } = await challenged();

    const refused = await refresh(stack, clientId, first.refresh_token!);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_grant");
    const next = await refresh(stack, clientId, first.refresh_token!);
    expect(next.status, JSON.stringify(next.body)).toBe(200);
  });

  it("the step-up holds a refresh back for a minute only: a refresh after it works at once", async () => {
    const { stack, clientId, first } = await challenged();

    stack.clock.advance(61_000);
    const later = await refresh(stack, clientId, first.refresh_token!);
    expect(later.status, JSON.stringify(later.body)).toBe(200);
  });
});
