import { describe, expect, it } from "vitest";
import { getMeOverHttp, mcpStatus } from "../support/mcp-calls.js";
import { discover, refreshWith, registered, signInAndRedeem, tokenSet } from "../support/oauth-walk.js";
import { freePort } from "../support/processes.js";
import { MODES, publishDocument, signInAndUse, useAndRefresh, useReplayWorld } from "../support/replay-world.js";

/**
 * Claude Code (the CLI), replayed from ../shared/reference/clients.md: a `http://localhost:<port>/callback`
 * listener on a fresh port; a trailing slash on the URL and `resource` (anthropics/claude-code#52871);
 * version 2.1.251 sending no `resource` at all (#90497) with its Client ID Metadata Document, whose
 * redirect URIs carry no port (#42301); a refresh token replayed after it was rotated (#66210); a full
 * authorization where a refresh would do (#82513).
 */

const world = useReplayWorld();

/** Claude Code's DCR body (the MCP TypeScript SDK's, with `application_type: "native"`, as captured in elmohq/elmo#684). */
const registration = (port: number) => ({
  client_name: "Claude Code (github)",
  redirect_uris: [`http://localhost:${port}/callback`],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
  application_type: "native",
});

/** https://claude.ai/oauth/claude-code-client-metadata, as served since 2.1.81 (no ports: #42301, #64705). */
const CLAUDE_CODE_DOCUMENT = {
  client_name: "Claude Code",
  client_uri: "https://claude.ai",
  redirect_uris: ["http://localhost/callback", "http://127.0.0.1/callback"],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
};

/** The protocol version this replay sends at `initialize`. */
const ERA = "2025-11-25";

describe.each(MODES)("Claude Code, $title", ({ mode }) => {
  const target = () => world().targets[mode];

  it("before 2.1.81 (DCR, http://localhost:<port>/callback): the MCP URL typed with a trailing slash is never redirected, and `resource` with a trailing slash is accepted", async () => {
    const typed = `${target().mcpUrl}/`;
    const found = await discover(typed); // a 401 challenge at /mcp/, not a redirect to /mcp (PrefectHQ/fastmcp#1466)
    // RFC 9728 §3.3: the metadata describes the URL as typed, and Claude sends it back as `resource`
    const resource = found.resource.resource;
    expect(resource).toBe(typed);
    const port = await freePort();
    const client = await registered(found.server, registration(port));
    await signInAndUse(typed, found, client, { redirectUri: `http://localhost:${port}/callback`, resource, era: ERA });
  });

  it("2.1.251 (Client ID Metadata Document, port-less loopback redirect URIs used with a port): no `resource` at /authorize nor /token, and the token is for the MCP URL it started from", async () => {
    const found = await discover(target().mcpUrl);
    // Claude picks its metadata document only beside `none` (brendanlong/lion-reader#1519)
    expect(found.server.client_id_metadata_document_supported).toBe(true);
    expect(found.server.token_endpoint_auth_methods_supported).toContain("none");
    const client = {
      clientId: publishDocument(world().documents, "/oauth/claude-code-client-metadata", CLAUDE_CODE_DOCUMENT),
      auth: { method: "none" as const },
    };
    const { request, tokens } = await signInAndRedeem(found, client, { redirectUri: `http://localhost:${await freePort()}/callback`, resource: undefined });
    expect(new URL(request.url).searchParams.has("resource")).toBe(false);
    if (mode === "config") expect(await mcpStatus(target().mcpUrl.replace(/\/github$/, "/github-readonly"), tokens.access_token)).toBe(401);
    await useAndRefresh(target().mcpUrl, found, client, tokens, { resource: undefined, era: ERA });
  });

  it("replays a refresh token after rotating it, its successor never used (a lost response): answered, and the chain goes on from the new answer", async () => {
    const found = await discover(target().mcpUrl);
    const port = await freePort();
    const client = await registered(found.server, registration(port));
    const resource = found.resource.resource;
    const { tokens: first } = await signInAndRedeem(found, client, { redirectUri: `http://localhost:${port}/callback`, resource });

    const lost = await refreshWith(found.server, client, first.refresh_token!, resource); // the answer Claude Code never stored
    expect(lost.status, JSON.stringify(lost.body)).toBe(200);
    const replayed = tokenSet(await refreshWith(found.server, client, first.refresh_token!, resource));
    expect(replayed.refresh_token).not.toBe(lost.body.refresh_token);
    await useAndRefresh(target().mcpUrl, found, client, replayed, { resource, era: ERA }); // and the chain goes on from it
  });

  it("authorizes again from scratch instead of refreshing: the second grant of the same client works, and so does the first", async () => {
    const found = await discover(target().mcpUrl);
    const port = await freePort();
    const client = await registered(found.server, registration(port));
    const resource = found.resource.resource;
    const grants = [];
    for (const listener of [port, await freePort()])
      grants.push((await signInAndRedeem(found, client, { redirectUri: `http://localhost:${listener}/callback`, resource })).tokens);
    for (const grant of grants) {
      expect(await getMeOverHttp(target().mcpUrl, grant.access_token, ERA)).toBe("octocat");
      expect((await refreshWith(found.server, client, grant.refresh_token!, resource)).status).toBe(200);
    }
  });
});
