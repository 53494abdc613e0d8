import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { startDemo } from "../../src/demo.js";
import { silentLogger } from "../../src/log.js";
import { connectWithOAuth } from "../support/connect.js";
import { LOGIN } from "../support/config.js";

/** `mcp-oauth-gateway demo` as a newcomer meets it: the printed URL works with a real client. */
describe("the demo", () => {
  let demo: { close(): Promise<void> } | undefined;
  afterEach(() => demo?.close());

  it("prints an MCP URL a client can sign in to, through the simulated GitHub consent page, and use", async () => {
    const config = loadConfig(["demo", "--port", "0", "--public-url", "http://127.0.0.1:0"], {
      MCP_GATEWAY_ENV_FILE: "/dev/null",
      MCP_GATEWAY_USERNAME: LOGIN.username,
      MCP_GATEWAY_PASSWORD: LOGIN.password,
    });
    let printed = "";
    demo = await startDemo(config, { log: silentLogger, print: (text) => void (printed += text) });
    const mcpUrl = /MCP URL:\s+(\S+)/.exec(printed)?.[1];
    expect(mcpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(printed).toContain(`claude mcp add --transport http github-demo ${mcpUrl}`);

    const { client, browser } = await connectWithOAuth(mcpUrl!);
    expect(browser.visited.some((url) => url.includes("/login/oauth/authorize/decide"))).toBe(true); // the upstream's own page was shown
    const me = await client.callTool({ name: "get_me", arguments: {} });
    expect((me.content as { text: string }[])[0]!.text).toContain("octocat");
    await client.close();
  });
});
