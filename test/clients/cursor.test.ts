import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MODES,
  authorizationRequest,
  callGetMe,
  discover,
  redeemCode,
  refreshWith,
  registered,
  signIn,
  startReplayWorld,
  type Client,
  type Discovered,
  type ReplayWorld,
} from "../support/client-replay.js";

/**
 * Cursor, replayed from ../shared/reference/clients.md: one DCR request with three redirect URIs, one
 * of them the app scheme `cursor://anysphere.cursor-mcp/oauth/callback` (a server that refuses the whole
 * registration for it blocks Cursor); the IDE and `cursor-agent` then sign in through
 * `https://www.cursor.com/agents/mcp/oauth/callback` (bytebase/bytebase#20510).
 */

let world: ReplayWorld;
beforeAll(async () => {
  world = await startReplayWorld();
}, 60_000);
afterAll(() => world?.close());

const APP_SCHEME = "cursor://anysphere.cursor-mcp/oauth/callback";
const HOSTED = "https://www.cursor.com/agents/mcp/oauth/callback";
const LOOPBACK = "http://localhost:8787/callback";

const REGISTRATION = {
  client_name: "Cursor",
  redirect_uris: [APP_SCHEME, HOSTED, LOOPBACK],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
};

describe.each(MODES)("Cursor, $title", ({ mode }) => {
  const target = () => world.targets[mode];

  /** Through one redirect URI: the code and state read from the Location, then token, get_me, refresh. */
  async function signInThrough(found: Discovered, client: Client, redirectUri: string) {
    const resource = found.resource.resource;
    const request = authorizationRequest(found.server.authorization_endpoint, { client_id: client.clientId, redirect_uri: redirectUri, resource });
    const answer = await signIn(request);
    expect(answer.redirect.href.startsWith(`${redirectUri}?`), answer.redirect.href).toBe(true);
    expect([answer.state, answer.iss]).toEqual([request.state, found.server.issuer]);
    const tokens = await redeemCode(found.server, client, request, answer.code, resource);
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(await callGetMe(target().mcpUrl, tokens.body.access_token!)).toBe("octocat");
    const refreshed = await refreshWith(found.server, client, tokens.body.refresh_token!, resource);
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(await callGetMe(target().mcpUrl, refreshed.body.access_token!)).toBe("octocat");
  }

  it("registers three redirect URIs in one request, cursor:// among them, and signs in through https://www.cursor.com/agents/mcp/oauth/callback", async () => {
    const found = await discover(target().mcpUrl);
    const client = await registered(found.server, REGISTRATION);
    expect(client.information.redirect_uris).toEqual(REGISTRATION.redirect_uris);
    await signInThrough(found, client, HOSTED);
  });

  it("the same registration also signs in through the custom scheme cursor://anysphere.cursor-mcp/oauth/callback and through http://localhost:8787/callback", async () => {
    const found = await discover(target().mcpUrl);
    const client = await registered(found.server, REGISTRATION);
    await signInThrough(found, client, APP_SCHEME);
    await signInThrough(found, client, LOOPBACK);
  });
});
