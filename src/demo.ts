import { describeLogin } from "./login/users.js";
import type { Config } from "./config/types.js";
import { startGateway } from "./gateway.js";
import type { Logger } from "./log.js";
import { PATHS } from "./paths.js";
import { DEFAULT_APPS, startSimulator } from "./simulator/index.js";

/**
 * `mcp-oauth-gateway demo`: the GitHub simulator on loopback, the gateway in front of it, and
 * everything a newcomer needs to point a client at it. Offline; nothing to register.
 */
export async function startDemo(config: Readonly<Config>, io: { log: Logger; print: (text: string) => void }) {
  const callback = new URL(PATHS.upstreamCallback, config.publicUrl);
  if (callback.port === "0") callback.port = ""; // loopback callbacks match any port
  const app = { ...DEFAULT_APPS.find((a) => a.kind === "oauth_app")!, name: "MCP OAuth Gateway (demo)", callbackUrls: [callback.href] };
  const simulator = await startSimulator({ apps: [app], consent: "page" });
  const gateway = await startGateway(
    {
      ...config,
      upstreams: [
        {
          ...config.upstreams[0]!,
          title: "GitHub (offline simulator)",
          resource: simulator.mcpUrl,
          clientId: app.clientId,
          clientSecret: app.clientSecrets[0]!,
          apiUrl: simulator.apiOrigin,
          scope: config.upstreams[0]!.scope ?? "read:user",
        },
      ],
    },
    { log: io.log },
  );
  const mcpUrl = `${gateway.publicUrl}${PATHS.mcp}`;
  const login = describeLogin(config.login);
  io.print(
    [
      `mcp-oauth-gateway demo: the gateway in front of an offline GitHub simulator`,
      ``,
      `  MCP URL:           ${mcpUrl}`,
      `  Gateway login:     ${login.login}`,
      ...(login.password === undefined ? [] : [`  Gateway password:  ${login.password}`]),
      `  Upstream (fake):   ${simulator.mcpUrl}  (signed in there as "${simulator.users[0]!.login}")`,
      ``,
      `Connect a client:`,
      `  Claude Code:     claude mcp add --transport http github-demo ${mcpUrl}`,
      `  VS Code (.vscode/mcp.json):`,
      `    { "servers": { "github-demo": { "type": "http", "url": "${mcpUrl}" } } }`,
      `  MCP Inspector:   npx @modelcontextprotocol/inspector   then choose "Streamable HTTP", URL ${mcpUrl}`,
      ``,
      `Your client opens a browser: sign in with the login above, approve, then approve again on the`,
      `simulated GitHub page. Try the tools get_me and count_slowly. Ctrl-C stops both servers.`,
    ].join("\n"),
  );
  return {
    close: async (graceMs?: number) => {
      await gateway.close(graceMs);
      await simulator.close();
    },
  };
}
