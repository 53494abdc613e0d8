import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MODES,
  authorizationRequest,
  callGetMe,
  discover,
  ephemeralPort,
  publishDocument,
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
 * GitHub Copilot CLI, replayed from ../shared/reference/clients.md: it registers the loopback port its
 * first sign-in listened on, then opens a new random port for every later authorization, including the
 * ones it runs when a token runs out (github/copilot-cli#1491, #1951); its Client ID Metadata Document
 * `https://github.com/copilot/cli/client-metadata.json` names port 33418 while the CLI listens elsewhere
 * (github/copilot-cli#4793, #4926). RFC 8252 §7.3: a loopback redirect URI matches on any port.
 */

let world: ReplayWorld;
beforeAll(async () => {
  world = await startReplayWorld();
}, 60_000);
afterAll(() => world?.close());

/** github.com/copilot/cli/client-metadata.json as quoted in github/copilot-cli#4901. */
const COPILOT_CLI_DOCUMENT = {
  client_name: "GitHub Copilot CLI",
  application_type: "native",
  token_endpoint_auth_method: "none",
  redirect_uris: ["http://127.0.0.1:33418/"],
};

describe.each(MODES)("Copilot CLI, $title", ({ mode }) => {
  const target = () => world.targets[mode];

  /** One sign-in on a listener at `port`, redeemed with that same redirect URI: the token answer. */
  async function authorizeOn(found: Discovered, client: Client, port: number) {
    const resource = found.resource.resource;
    const request = authorizationRequest(found.server.authorization_endpoint, {
      client_id: client.clientId,
      redirect_uri: `http://127.0.0.1:${port}/`,
      resource,
    });
    const answer = await signIn(request);
    expect([answer.redirect.port, answer.state, answer.iss]).toEqual([String(port), request.state, found.server.issuer]);
    const tokens = await redeemCode(found.server, client, request, answer.code, resource);
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(await callGetMe(target().mcpUrl, tokens.body.access_token!)).toBe("octocat");
    return tokens.body;
  }

  it("registers the port of its first sign-in, then signs in again on a new random port each time a token runs out, and refreshes between", async () => {
    const found = await discover(target().mcpUrl);
    const firstPort = await ephemeralPort();
    const client = await registered(found.server, {
      client_name: "GitHub Copilot CLI",
      redirect_uris: [`http://127.0.0.1:${firstPort}/`],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
    let tokens = await authorizeOn(found, client, firstPort);
    for (let round = 0; round < 2; round++) {
      const refreshed = await refreshWith(found.server, client, tokens.refresh_token!, found.resource.resource);
      expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
      expect(await callGetMe(target().mcpUrl, refreshed.body.access_token!)).toBe("octocat");
      tokens = await authorizeOn(found, client, await ephemeralPort());
    }
  });

  it("names its Client ID Metadata Document, which lists http://127.0.0.1:33418/, and listens on another port", async () => {
    const found = await discover(target().mcpUrl);
    const client: Client = { clientId: publishDocument(world.documents, "/copilot/cli/client-metadata.json", COPILOT_CLI_DOCUMENT), auth: { method: "none" } };
    const tokens = await authorizeOn(found, client, await ephemeralPort());
    const refreshed = await refreshWith(found.server, client, tokens.refresh_token!, found.resource.resource);
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(await callGetMe(target().mcpUrl, refreshed.body.access_token!)).toBe("octocat");
    await authorizeOn(found, client, await ephemeralPort());
  });
});
