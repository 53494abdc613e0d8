import { describe, expect, it } from "vitest";
import { discover, registered } from "../support/oauth-walk.js";
import { MODES, signInAndUse, useReplayWorld } from "../support/replay-world.js";

/**
 * Cursor, replayed from ../shared/reference/clients.md: one DCR request with three redirect URIs, one
 * of them the app scheme `cursor://anysphere.cursor-mcp/oauth/callback` (a server that refuses the whole
 * registration for it blocks Cursor); the IDE and `cursor-agent` then sign in through
 * `https://www.cursor.com/agents/mcp/oauth/callback` (bytebase/bytebase#20510).
 */

const world = useReplayWorld();

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
  const target = () => world().targets[mode];

  it("registers three redirect URIs in one request, cursor:// among them, and signs in through https://www.cursor.com/agents/mcp/oauth/callback", async () => {
    const found = await discover(target().mcpUrl);
    const client = await registered(found.server, REGISTRATION);
    expect(client.information.redirect_uris).toEqual(REGISTRATION.redirect_uris);
    await signInAndUse(target().mcpUrl, found, client, { redirectUri: HOSTED, resource: found.resource.resource });
  });

  it("the same registration also signs in through the custom scheme cursor://anysphere.cursor-mcp/oauth/callback and through http://localhost:8787/callback", async () => {
    const found = await discover(target().mcpUrl);
    const client = await registered(found.server, REGISTRATION);
    await signInAndUse(target().mcpUrl, found, client, { redirectUri: APP_SCHEME, resource: found.resource.resource });
    await signInAndUse(target().mcpUrl, found, client, { redirectUri: LOOPBACK, resource: found.resource.resource });
  });
});
