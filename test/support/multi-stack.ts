import { randomBytes } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ManualClock } from "../../src/clock.js";
import type { Gateway } from "../../src/gateway.js";
import type { Logger } from "../../src/log.js";
import { startSimulator, type SimApp, type Simulator, type SimulatorOptions } from "../../src/simulator/index.js";
import { merged, type ServerEntry, type TestConfigOptions } from "./config.js";
import { startTestGateway } from "./gateway.js";
import { startMcpUpstream, type McpUpstream } from "./mcp-upstream.js";
import { startOidcUpstream, type OidcUpstream, type OidcUpstreamOptions } from "./oidc-upstream.js";

export interface MultiStackOptions {
  simulator?: SimulatorOptions;
  oidcUpstream?: OidcUpstreamOptions;
  /** Keys added to (or replacing) each server's entry; `oauth` is merged key by key. */
  github?: Partial<ServerEntry>;
  oidc?: Partial<ServerEntry>;
  internal?: Partial<ServerEntry>;
  /** Also start an MCP server without any auth: `true`, or the keys added to its entry. */
  plain?: boolean | Partial<ServerEntry>;
  /** The gateway's options besides its upstreams. */
  config?: Omit<Partial<TestConfigOptions>, "mcpServers">;
  /** Values of `${VAR}` in the entries, on top of SIM_GITHUB_SECRET and INTERNAL_API_KEY. */
  env?: Record<string, string>;
  log?: Logger;
}

export interface MultiStack {
  clock: ManualClock;
  /** `github`: GitHub's OAuth, pre-registered client `app`, `apiUrl` given. */
  simulator: Simulator;
  app: SimApp;
  /** `oidc`: only its URL is configured; the gateway detects its OAuth and registers dynamically. */
  oidc: OidcUpstream;
  /** `internal`: an API-key server (`X-API-Key: <apiKey>`), first-party, identity headers on. */
  internal: McpUpstream;
  apiKey: string;
  /** `plain`: no auth at all (`opts.plain`). */
  plain?: McpUpstream;
  gateway: Gateway;
  /** `${gateway.publicUrl}/mcp/<name>` */
  urls: { github: string; oidc: string; internal: string; plain?: string };
  close(): Promise<void>;
}

/**
 * The GitHub simulator, an OpenID Provider with its MCP server, an API-key MCP server and (optionally)
 * an open one, all on ephemeral loopback ports, and one gateway in front of them all, configured by a
 * config file's `mcpServers`. One clock for the simulator and the gateway.
 */
export async function startMultiStack(opts: MultiStackOptions = {}): Promise<MultiStack> {
  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer();
  };
  try {
    const clock = new ManualClock();
    const simulator = await startSimulator({ clock, ...opts.simulator });
    closers.push(() => simulator.close());
    const app = simulator.apps.find((a) => a.kind === "oauth_app");
    if (!app) throw new Error("multi-stack: the simulator needs an oauth_app");
    const oidc = await startOidcUpstream(opts.oidcUpstream);
    closers.push(() => oidc.close());
    const apiKey = randomBytes(24).toString("base64url");
    const internal = await startMcpUpstream(whoamiServer, { requireHeader: { name: "x-api-key", value: apiKey } });
    closers.push(() => internal.close());
    const plain = opts.plain ? await startMcpUpstream(whoamiServer) : undefined;
    if (plain) closers.push(() => plain.close());

    const mcpServers: Record<string, ServerEntry> = {
      github: merged(
        { url: simulator.mcpUrl, oauth: { clientId: app.clientId, clientSecret: "${SIM_GITHUB_SECRET}", apiUrl: simulator.apiOrigin } },
        opts.github,
      ),
      oidc: merged({ url: oidc.mcpUrl }, opts.oidc),
      internal: merged({ url: internal.url, auth: { header: "X-API-Key", value: "${INTERNAL_API_KEY}" }, identityHeaders: true }, opts.internal),
    };
    if (plain) mcpServers.plain = merged({ url: plain.url, auth: "none", identityHeaders: false }, typeof opts.plain === "object" ? opts.plain : undefined);
    const gateway = await startTestGateway({
      mcpServers,
      env: { SIM_GITHUB_SECRET: app.clientSecrets[0], INTERNAL_API_KEY: apiKey, ...opts.env },
      allowPrivateFetch: true,
      ...opts.config,
      clock,
      ...(opts.log ? { log: opts.log } : {}),
    });
    closers.push(() => gateway.close());
    const url = (name: string) => `${gateway.publicUrl}/mcp/${name}`;
    return {
      clock,
      simulator,
      app,
      oidc,
      internal,
      apiKey,
      ...(plain ? { plain } : {}),
      gateway,
      urls: { github: url("github"), oidc: url("oidc"), internal: url("internal"), ...(plain ? { plain: url("plain") } : {}) },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** `whoami`: the `X-Forwarded-User` the request carried, or "nobody". */
export function whoamiServer(): McpServer {
  const server = new McpServer({ name: "multi-stack-whoami", version: "1.0.0" });
  server.registerTool("whoami", { description: "The X-Forwarded-User header of this request, or nobody." }, (extra) => {
    const user = extra.requestInfo?.headers["x-forwarded-user"];
    return { content: [{ type: "text", text: (Array.isArray(user) ? user.join(", ") : user) || "nobody" }] };
  });
  return server;
}
