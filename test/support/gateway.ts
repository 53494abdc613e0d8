import { startGateway, type Gateway, type GatewayOptions } from "../../src/gateway.js";
import { silentLogger } from "../../src/log.js";
import { DEFAULT_APPS, type SimApp, type Simulator } from "../../src/simulator/index.js";
import { testConfig, type ServerEntry, type TestConfigOptions } from "./config.js";

export type TestGatewayOptions = TestConfigOptions & GatewayOptions;

/** The gateway in this process, configured by testConfig, logging nowhere unless given a log. */
export async function startTestGateway(options: TestGatewayOptions): Promise<Gateway> {
  const { clock, store, log, requestTimeoutMs, policy, ...config } = options;
  const gatewayOptions: GatewayOptions = { log: log ?? silentLogger, ...(clock ? { clock } : {}), ...(store ? { store } : {}), ...(policy ? { policy } : {}) };
  return startGateway(testConfig(config), { ...gatewayOptions, ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }) });
}

const OAUTH_APP = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;

/**
 * The simulator's GitHub OAuth as the upstream authorization server with its pre-registered `app`
 * (default: the OAuth App), in front of `url` (default: the simulator's own MCP server). `endpoints`:
 * give the authorization and token endpoints, so nothing is discovered.
 */
export function simulatorServer(
  simulator: Simulator,
  opts: { url?: string; app?: SimApp; endpoints?: boolean; scope?: string; scopeMax?: string } = {},
): ServerEntry {
  const app = opts.app ?? OAUTH_APP;
  const endpoints = opts.endpoints
    ? { authorizationEndpoint: `${simulator.webOrigin}/login/oauth/authorize`, tokenEndpoint: `${simulator.webOrigin}/login/oauth/access_token` }
    : {};
  const scopes = { ...(opts.scope ? { scope: opts.scope } : {}), ...(opts.scopeMax ? { scopeMax: opts.scopeMax } : {}) };
  return {
    url: opts.url ?? simulator.mcpUrl,
    oauth: { clientId: app.clientId, clientSecret: app.clientSecrets[0]!, apiUrl: simulator.apiOrigin, ...endpoints, ...scopes },
  };
}

/** The simulator as the upstream authorization server (no discovery) of `url`, served at `/mcp` as the `--upstream-*` flags serve it. */
export const simulatorUpstream = (simulator: Simulator, url: string): Pick<TestConfigOptions, "mcpServers" | "atMcp"> => ({
  mcpServers: { github: simulatorServer(simulator, { url, endpoints: true }) },
  atMcp: true,
});
