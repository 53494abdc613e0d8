import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "node:http";
import { createServer } from "node:net";
import { startGateway } from "../../src/gateway.js";
import { silentLogger } from "../../src/log.js";
import { testConfig } from "../support/config.js";
import { freePort } from "../support/processes.js";
import { fetch } from "undici";
import { connectWithOAuth } from "../support/connect.js";
import { RecordingOAuthProvider } from "../support/oauth-client.js";
import { startStack, type Stack } from "../support/stack.js";

/**
 * Issue 14: started without --public-url, the gateway is reached under whichever loopback name the user
 * typed (docs/architecture.md, "Loopback names"). The MCP SDK client refuses metadata whose `resource`
 * is not the URL it started from, so each name gets its own, while the issuer stays localhost.
 */
describe("every loopback name, without --public-url", () => {
  let stack: Stack;
  let port: string;
  beforeAll(async () => {
    stack = await startStack({ loopbackNames: true });
    port = new URL(stack.gateway.publicUrl).port;
  });
  afterAll(() => stack?.close());

  it("names itself localhost", () => {
    expect(stack.gateway.publicUrl).toBe(`http://localhost:${port}`);
  });

  for (const host of ["127.0.0.1", "localhost", "[::1]"]) {
    it(`the SDK client signs in and calls a tool at http://${host}:<port>/mcp`, async () => {
      const mcpUrl = `http://${host}:${port}/mcp`;
      const challenge = await fetch(mcpUrl, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(challenge.status).toBe(401);
      const metadataUrl = `http://${host}:${port}/.well-known/oauth-protected-resource/mcp`;
      expect(challenge.headers.get("www-authenticate")).toContain(`resource_metadata="${metadataUrl}"`);
      const metadata = (await (await fetch(metadataUrl)).json()) as { resource: string; authorization_servers: string[] };
      expect(metadata).toMatchObject({ resource: mcpUrl, authorization_servers: [`http://localhost:${port}`] });

      const provider = new RecordingOAuthProvider();
      const { client } = await connectWithOAuth(mcpUrl, { provider });
      // the client named the resource it started from, and the token it got is good there
      expect(provider.authorizationUrl!.searchParams.get("resource")).toBe(mcpUrl);
      const result = await client.callTool({ name: "get_me", arguments: {} });
      expect(JSON.parse((result.content as { text: string }[])[0]!.text)).toMatchObject({ login: "octocat" });
      await client.close();
    });
  }

  it("takes a Host it does not know for the canonical name", async () => {
    const body = await new Promise<string>((resolve, reject) =>
      request(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`, { headers: { host: `evil.example:${port}` } }, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d: string) => (text += d));
        res.on("end", () => resolve(text));
      })
        .on("error", reject)
        .end(),
    );
    expect((JSON.parse(body) as { resource: string }).resource).toBe(`http://localhost:${port}/mcp`);
  });

  it("will not start beside another process that holds [::1] on its port, which would answer localhost's clients", async () => {
    const port = await freePort();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, "::1", resolve));
    try {
      const config = testConfig({
        mcpServers: { github: { url: stack.simulator.mcpUrl, oauth: {} } },
        atMcp: true,
        port,
        publicUrl: null,
        users: [{ username: "admin", password: "a password long enough for the gateway" }],
      });
      await expect(startGateway(config, { log: silentLogger })).rejects.toThrow(`port ${port} is taken on ::1 by another process`);
      // and nothing is left listening on 127.0.0.1 either
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
