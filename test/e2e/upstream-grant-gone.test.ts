import { afterEach, describe, expect, it } from "vitest";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { connectWithOAuth, getMe } from "../support/connect.js";
import { LOGIN } from "../support/config.js";
import { startStack, type Stack } from "../support/stack.js";

/**
 * Issue 14 item 6: when the upstream grant is gone for good, the real SDK client is sent back through
 * sign-in by one 401 challenge and one refused refresh, never a loop of refreshes or a dead end, and
 * signing in again works.
 */
describe("the upstream grant gone for good", () => {
  let stack: Stack;
  let lines: string[] = [];
  const log = { info: (m: string) => lines.push(m), warn() {}, error() {} };
  afterEach(() => stack?.close());

  const tokenRequests = () => lines.filter((line) => line.startsWith("POST /token ")).length;

  for (const [mode, how] of [
    ["oauth_app", "the user revoked the OAuth App at GitHub (no upstream refresh token)"],
    ["github_app", "the GitHub App's refresh token is refused upstream (invalid_grant)"],
  ] as const)
    it(`${how}: one 401, one refused refresh, a new sign-in, and the client works again`, async () => {
      lines = [];
      stack = await startStack({ mode, log });
      const session = await connectWithOAuth(stack.mcpUrl);
      expect(await getMe(session.client)).toMatchObject({ login: "octocat" });
      const firstAuthorization = session.provider.authorizationUrl!.href;

      stack.simulator.revokeGrant(stack.app.clientId);
      // a GitHub App user token lasts 8 h: past it the gateway must refresh upstream, and is refused there
      if (mode === "github_app") stack.clock.advance(9 * 3600_000);
      const before = tokenRequests();
      await expect(getMe(session.client)).rejects.toBeInstanceOf(UnauthorizedError);
      expect(tokenRequests() - before).toBe(1);
      const again = session.provider.authorizationUrl!;
      expect(again.href).not.toBe(firstAuthorization);

      const redirect = await session.browser.authorize(again.href, { redirectUri: session.provider.redirectUrl, ...LOGIN });
      await session.transport.finishAuth(redirect.searchParams.get("code")!);
      await session.client.close();
      const client = new Client({ name: "e2e", version: "1.0.0" });
      await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcpUrl), { authProvider: session.provider }));
      expect(await getMe(client)).toMatchObject({ login: "octocat" });
      await client.close();
    });
});
