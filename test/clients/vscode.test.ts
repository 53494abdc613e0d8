import { describe, expect, it } from "vitest";
import { discover, registered, type Client, type Discovered } from "../support/oauth-walk.js";
import { freePort } from "../support/processes.js";
import { MODES, publishDocument, signInAndUse, useReplayWorld } from "../support/replay-world.js";

/**
 * VS Code (GitHub Copilot's MCP client), replayed from ../shared/reference/clients.md and its source
 * (microsoft/vscode src/vs/base/common/oauth.ts): DCR with four redirect URIs, then a random loopback
 * port at /authorize when 33418 is taken (microsoft/vscode#278512); its Client ID Metadata Document
 * `https://vscode.dev/oauth/client-metadata.json` wherever the server supports them (microsoft/vscode#271403).
 * It checks that the metadata's `resource` is the URL it was given, and sends `resource` at /authorize,
 * at the code exchange and at every refresh.
 */

const world = useReplayWorld();

const DEFAULT_AUTH_FLOW_PORT = 33418;
const REDIRECT_URIS = [
  "https://insiders.vscode.dev/redirect",
  "https://vscode.dev/redirect",
  "http://127.0.0.1/",
  `http://127.0.0.1:${DEFAULT_AUTH_FLOW_PORT}/`,
];

/** fetchDynamicRegistration: grant types it knows that the server lists, and the scopes it is about to ask for. */
const registration = (found: Discovered) => ({
  client_name: "Visual Studio Code",
  client_uri: "https://code.visualstudio.com",
  grant_types: found.server.grant_types_supported.filter((g) =>
    ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"].includes(g),
  ),
  response_types: ["code"],
  redirect_uris: REDIRECT_URIS,
  scope: scopes(found),
  token_endpoint_auth_method: "none",
  application_type: "native",
});

/** The challenge's scope, else the resource's scopes_supported. */
const scopes = (found: Discovered) => found.challengeScope ?? found.resource.scopes_supported?.join(" ");

/** The document VS Code names as client_id (its content modelled on VS Code's DCR body). */
const VSCODE_DOCUMENT = {
  client_name: "Visual Studio Code",
  client_uri: "https://code.visualstudio.com",
  redirect_uris: REDIRECT_URIS,
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
  application_type: "native",
};

describe.each(MODES)("VS Code, $title", ({ mode }) => {
  const target = () => world().targets[mode];

  /** Discovery as VS Code validates it: RFC 9728 §3.3, `resource` equal to the URL after URL normalisation. */
  const discovered = async () => {
    const found = await discover(target().mcpUrl);
    expect(new URL(found.resource.resource).toString()).toBe(new URL(target().mcpUrl).toString());
    return found;
  };

  /** Sign in on a loopback port other than 33418, exchange the code, call get_me, refresh, call again. */
  async function flow(found: Discovered, client: Client) {
    const port = await freePort(); // 33418 is busy: another VS Code window holds it
    const params = { redirectUri: `http://127.0.0.1:${port}/`, scope: scopes(found), resource: found.resource.resource, era: "2025-11-25" };
    await signInAndUse(target().mcpUrl, found, client, params);
  }

  it("registers its four redirect URIs by DCR, then signs in on a random loopback port because 33418 is busy", async () => {
    const found = await discovered();
    const client = await registered(found.server, registration(found));
    expect(client.information.redirect_uris).toEqual(REDIRECT_URIS);
    await flow(found, client);
  });

  it("uses its Client ID Metadata Document (https://vscode.dev/oauth/client-metadata.json) on a random loopback port", async () => {
    const found = await discovered();
    expect(found.server.client_id_metadata_document_supported).toBe(true);
    await flow(found, { clientId: publishDocument(world().documents, "/oauth/client-metadata.json", VSCODE_DOCUMENT), auth: { method: "none" } });
  });
});
