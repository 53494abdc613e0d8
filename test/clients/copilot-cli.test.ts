import { describe, it } from "vitest";
import { discover, registered, type Client, type Discovered } from "../support/oauth-walk.js";
import { freePort } from "../support/processes.js";
import { MODES, publishDocument, signInAndUse, useReplayWorld } from "../support/replay-world.js";

/**
 * GitHub Copilot CLI, replayed from ../shared/reference/clients.md: it registers the loopback port its
 * first sign-in listened on, then opens a new random port for every later authorization, including the
 * ones it runs when a token runs out (github/copilot-cli#1491, #1951); its Client ID Metadata Document
 * `https://github.com/copilot/cli/client-metadata.json` names port 33418 while the CLI listens elsewhere
 * (github/copilot-cli#4793, #4926). RFC 8252 §7.3: a loopback redirect URI matches on any port.
 */

const world = useReplayWorld();

/** github.com/copilot/cli/client-metadata.json as quoted in github/copilot-cli#4901. */
const COPILOT_CLI_DOCUMENT = {
  client_name: "GitHub Copilot CLI",
  application_type: "native",
  token_endpoint_auth_method: "none",
  redirect_uris: ["http://127.0.0.1:33418/"],
};

describe.each(MODES)("Copilot CLI, $title", ({ mode }) => {
  const target = () => world().targets[mode];

  /** One sign-in on a listener at `port`, redeemed with that same redirect URI, used, refreshed and used again. */
  const signInOn = (found: Discovered, client: Client, port: number) =>
    signInAndUse(target().mcpUrl, found, client, { redirectUri: `http://127.0.0.1:${port}/`, resource: found.resource.resource });

  it("registers the port of its first sign-in, then signs in again on a new random port each time a token runs out, and refreshes between", async () => {
    const found = await discover(target().mcpUrl);
    const firstPort = await freePort();
    const client = await registered(found.server, {
      client_name: "GitHub Copilot CLI",
      redirect_uris: [`http://127.0.0.1:${firstPort}/`],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
    await signInOn(found, client, firstPort);
    await signInOn(found, client, await freePort()); // the token ran out: a new listener
    await signInOn(found, client, await freePort());
  });

  it("names its Client ID Metadata Document, which lists http://127.0.0.1:33418/, and listens on another port", async () => {
    const found = await discover(target().mcpUrl);
    const client: Client = {
      clientId: publishDocument(world().documents, "/copilot/cli/client-metadata.json", COPILOT_CLI_DOCUMENT),
      auth: { method: "none" },
    };
    await signInOn(found, client, await freePort());
    await signInOn(found, client, await freePort());
  });
});
