import { describe, expect, it } from "vitest";
import { getMeOverHttp } from "../support/mcp-calls.js";
import { discover, refreshWith, registered, signInAndRedeem, type Client } from "../support/oauth-walk.js";
import { MODES, publishDocument, signInAndUse, useReplayWorld } from "../support/replay-world.js";

/**
 * claude.ai, claude.com and Claude Desktop connectors, replayed from ../shared/reference/clients.md. The
 * requests come from Anthropic's servers: the browser ends at `https://claude.ai/api/mcp/auth_callback`
 * (or claude.com's), whose Location this test reads and does not follow. Beside `none`, Claude uses its
 * Client ID Metadata Document (brendanlong/lion-reader#1519), else DCR, where the hosted connector asks
 * for `client_secret_post` (anthropics/claude-ai-mcp#1043). It adds a trailing slash to `resource`
 * (sigbit/mcp-auth-proxy#123), speaks the `initialize` era, and its parallel tool calls each refresh with
 * the same refresh token (comet-ml/opik#8286).
 */

const world = useReplayWorld();

const CLAUDE_AI = "https://claude.ai/api/mcp/auth_callback";
const CLAUDE_COM = "https://claude.com/api/mcp/auth_callback";
/** claude.ai speaks the initialize era (clients.md, "Protocol eras"). */
const ERA = "2025-06-18";

/** https://claude.ai/oauth/mcp-oauth-client-metadata (served here from the test's https server). */
const CONNECTOR_DOCUMENT = {
  client_name: "Claude",
  client_uri: "https://claude.ai",
  redirect_uris: [CLAUDE_AI, CLAUDE_COM],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
};

describe.each(MODES)("claude.ai connectors, $title", ({ mode }) => {
  const target = () => world().targets[mode];
  const connector = (): Client => ({
    clientId: publishDocument(world().documents, "/oauth/mcp-oauth-client-metadata", CONNECTOR_DOCUMENT),
    auth: { method: "none" },
  });

  it("with its Client ID Metadata Document: signs in through https://claude.ai/api/mcp/auth_callback with `resource` plus a trailing slash, and calls get_me", async () => {
    const found = await discover(target().mcpUrl);
    expect(found.server.client_id_metadata_document_supported).toBe(true);
    expect(found.server.token_endpoint_auth_methods_supported).toContain("none");
    await signInAndUse(target().mcpUrl, found, connector(), { redirectUri: CLAUDE_AI, resource: `${found.resource.resource}/`, era: ERA });
  });

  it("by DCR as a confidential client (client_secret_post) with both callbacks: signs in through https://claude.com/api/mcp/auth_callback", async () => {
    const found = await discover(target().mcpUrl);
    const client = await registered(found.server, {
      client_name: "Claude",
      redirect_uris: [CLAUDE_AI, CLAUDE_COM],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    });
    expect(client.auth.method).toBe("client_secret_post");
    await signInAndUse(target().mcpUrl, found, client, { redirectUri: CLAUDE_COM, resource: `${found.resource.resource}/`, era: ERA });
  });

  it("parallel tool calls each refresh with the same refresh token: every answer is 200 with a working token, and the one kept last refreshes again", async () => {
    const found = await discover(target().mcpUrl);
    const client = connector();
    const resource = `${found.resource.resource}/`;
    const { tokens } = await signInAndRedeem(found, client, { redirectUri: CLAUDE_AI, resource });

    const arrived: Awaited<ReturnType<typeof refreshWith>>[] = [];
    await Promise.all(Array.from({ length: 6 }, () => refreshWith(found.server, client, tokens.refresh_token!, resource).then((a) => arrived.push(a))));
    expect(arrived.map((a) => [a.status, a.body.error_description])).toEqual(arrived.map(() => [200, undefined]));
    for (const accessToken of new Set(arrived.map((a) => a.body.access_token!))) expect(await getMeOverHttp(target().mcpUrl, accessToken, ERA)).toBe("octocat");

    // whichever answer claude.ai stored last is the one it refreshes with next
    const next = await refreshWith(found.server, client, arrived.at(-1)!.body.refresh_token!, resource);
    expect(next.status, JSON.stringify(next.body)).toBe(200);
    expect(await getMeOverHttp(target().mcpUrl, next.body.access_token!, ERA)).toBe("octocat");
  });
});
