import { createRequire } from "node:module";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterEach, describe, expect, it } from "vitest";
import { getMe } from "../support/connect.js";
import { freePort, killAll, tempDir } from "../support/processes.js";
import { FakeOpener, signInAs, startDemoGateway, type DemoGateway } from "../support/real-clients.js";

/**
 * The real mcp-remote (the stdio bridge that Claude Desktop, Cursor and Windsurf configs use for remote
 * servers), spawned as those clients spawn it, against a real gateway process started without
 * --public-url: it registers, opens the browser, takes the code on its own loopback listener, proxies a
 * tool call, and a second run reuses the tokens it stored without opening the browser again.
 */

const require = createRequire(import.meta.url);
const MCP_REMOTE = join(require.resolve("mcp-remote/package.json"), "..", "dist", "proxy.js");
const VERSION = (require("mcp-remote/package.json") as { version: string }).version;

let gateway: DemoGateway | undefined;
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await gateway?.close();
  gateway = undefined;
  killAll();
});

/** mcp-remote as an mcpServers entry runs it: `npx mcp-remote <url> <callback port>`, talking MCP on stdio. */
function mcpRemote(mcpUrl: string, callbackPort: number, home: string, opener: FakeOpener) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MCP_REMOTE, mcpUrl, String(callbackPort)],
    env: { HOME: home, MCP_REMOTE_CONFIG_DIR: join(home, ".mcp-auth"), ...opener.env },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: "claude-desktop-like", version: "1.0.0" });
  clients.push(client);
  const said = () => `mcp-remote stderr:\n${stderr}\ngateway:\n${gateway!.process.stdout()}\n${gateway!.process.stderr()}`;
  return { client, transport, said };
}

describe(`mcp-remote ${VERSION}`, () => {
  it("signs in through the browser it opens, calls get_me, and a second run reuses its tokens (http://127.0.0.1:<port>/mcp)", async () => {
    gateway = await startDemoGateway();
    const opener = new FakeOpener();
    const home = tempDir("mcp-remote-home");
    const callbackPort = await freePort();

    const first = mcpRemote(gateway.mcpUrl("127.0.0.1"), callbackPort, home, opener);
    let failed = false;
    const connected = first.client.connect(first.transport, { timeout: 60_000 });
    connected.catch(() => (failed = true)); // awaited after the browser step

    const authorizationUrl = await opener.next(30_000, { said: first.said, gone: () => failed });
    const authorize = new URL(authorizationUrl);
    expect(authorize.pathname, first.said()).toBe("/authorize");
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorize.searchParams.get("redirect_uri")).toBe(`http://localhost:${callbackPort}/oauth/callback`);

    const landed = await signInAs(authorizationUrl);
    expect(
      landed.visited.some((url) => url.includes("/login/oauth/authorize")),
      "the simulated GitHub page was shown",
    ).toBe(true);
    expect(landed.status, `${landed.text}\n${first.said()}`).toBe(200);
    expect(landed.text).toContain("Authorization successful");

    await connected;
    const { tools } = await first.client.listTools();
    expect(tools.map((t) => t.name)).toContain("get_me");
    expect(await getMe(first.client, first.said)).toMatchObject({ login: "octocat" });
    await first.client.close();

    // Restarted by its host app: the stored tokens are enough, no browser opens.
    const second = mcpRemote(gateway.mcpUrl("127.0.0.1"), callbackPort, home, opener);
    await second.client.connect(second.transport, { timeout: 30_000 });
    expect(await getMe(second.client, second.said)).toMatchObject({ login: "octocat" });
    await expect(opener.next(500, second)).rejects.toThrow(/opened no browser/);
  }, 90_000);
});
