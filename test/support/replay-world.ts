import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { startDocumentServer, selfSignedCertificate, type DocumentServer, type TestCertificate } from "./https.js";
import { getMeOverHttp } from "./mcp-calls.js";
import { refreshWith, signInAndRedeem, tokenSet, type Client, type Discovered, type SignInParams } from "./oauth-walk.js";
import { freePort, killAll, startGatewayProcess, tempDir, type GatewayProcess } from "./processes.js";
import { LOGIN } from "./config.js";

/**
 * Replaying real MCP clients at the HTTP level (../shared/reference/clients.md): each test file states
 * what one client family sends (its registration body or metadata document, its redirect URIs, its
 * `resource`, its protocol era); this file starts the gateways it is sent to, and walks a sign-in
 * through to MCP calls with the tokens (the OAuth steps: oauth-walk.ts; the MCP calls: mcp-calls.ts).
 */

/** How the gateway is run: the flags' single upstream, or a `--config` file with several. */
export type Mode = "single" | "config";
export const MODES: { mode: Mode; title: string }[] = [
  { mode: "single", title: "single upstream, no --public-url, typed as http://127.0.0.1:<port>/mcp" },
  { mode: "config", title: "--config with two upstreams and --public-url, http://127.0.0.1:<port>/mcp/github" },
];

export interface Target {
  mode: Mode;
  /** The MCP URL the user gave the client. */
  mcpUrl: string;
  gateway: GatewayProcess;
}

/**
 * One GitHub simulator, an https server for Client ID Metadata Documents and key sets (a test CA the
 * gateways trust through NODE_EXTRA_CA_CERTS), and a real gateway process per mode in front of the
 * simulator, both with `--allow-private-fetch` so they fetch documents from 127.0.0.1.
 */
export interface ReplayWorld {
  simulator: Simulator;
  documents: DocumentServer;
  targets: Record<Mode, Target>;
  close(): Promise<void>;
}

export async function startReplayWorld(): Promise<ReplayWorld> {
  const certificate: TestCertificate = selfSignedCertificate();
  const documents = await startDocumentServer(certificate);
  // The OAuth App knows both names the gateways call themselves by: localhost (no --public-url) and 127.0.0.1
  const app = {
    ...DEFAULT_APPS.find((a) => a.kind === "oauth_app")!,
    callbackUrls: ["http://127.0.0.1/upstream/callback", "http://localhost/upstream/callback"],
  };
  const simulator = await startSimulator({ apps: [app] });
  const env = {
    HOME: tempDir("client-replay-home"),
    NODE_EXTRA_CA_CERTS: certificate.certFile,
    MCP_GATEWAY_USERNAME: LOGIN.username,
    MCP_GATEWAY_PASSWORD: LOGIN.password,
  };
  const common = ["--store", "memory", "--allow-private-fetch", "true"];

  const single = async (): Promise<Target> => {
    const port = await freePort();
    const gateway = await startGatewayProcess(
      ["--port", String(port), ...common, "--upstream-rs", simulator.mcpUrl, "--upstream-client-id", app.clientId, "--upstream-api-url", simulator.apiOrigin],
      { ...env, MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0] },
    );
    return { mode: "single", mcpUrl: `http://127.0.0.1:${port}/mcp`, gateway };
  };
  const config = async (): Promise<Target> => {
    const port = await freePort();
    const oauth = { clientId: app.clientId, clientSecret: "${SIM_GITHUB_SECRET}", apiUrl: simulator.apiOrigin };
    const file = join(tempDir("client-replay-config"), "gateway.json");
    const mcpServers = {
      github: { url: simulator.mcpUrl, title: "GitHub", oauth },
      "github-readonly": { url: simulator.mcpUrl, title: "GitHub (read-only)", oauth, headers: { "X-MCP-Readonly": "true" } },
    };
    writeFileSync(file, JSON.stringify({ mcpServers }, null, 2));
    const gateway = await startGatewayProcess(["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, ...common, "--config", file], {
      ...env,
      SIM_GITHUB_SECRET: app.clientSecrets[0],
    });
    return { mode: "config", mcpUrl: `http://127.0.0.1:${port}/mcp/github`, gateway };
  };

  try {
    const [s, c] = await Promise.all([single(), config()]);
    return {
      simulator,
      documents,
      targets: { single: s, config: c },
      close: async () => {
        await Promise.all([s.gateway.kill(), c.gateway.kill()]);
        await documents.close();
        await simulator.close();
        certificate.remove();
      },
    };
  } catch (error) {
    killAll();
    await documents.close();
    await simulator.close();
    certificate.remove();
    throw error;
  }
}

/** The replay world of one test file: started before its tests, closed after them. Read it inside a test or hook. */
export function useReplayWorld(): () => ReplayWorld {
  let world: ReplayWorld | undefined;
  beforeAll(async () => {
    world = await startReplayWorld();
  }, 60_000);
  afterAll(() => world?.close());
  return () => {
    if (!world) throw new Error("the replay world is not running: useReplayWorld() starts it in beforeAll");
    return world;
  };
}

/**
 * Publish a client's metadata document at `path` on the test's https server, with `client_id` set to
 * where it lives (the real one is on claude.ai, vscode.dev, chatgpt.com or github.com); its URL.
 */
export function publishDocument(documents: DocumentServer, path: string, document: Record<string, unknown>): string {
  const url = `${documents.origin}${path}`;
  documents.serve(path, { body: { ...document, client_id: url } });
  return url;
}

/** The protocol version a client speaks at `initialize` (clients.md, "Protocol eras"). */
export interface Era {
  era?: string;
}

/**
 * What a signed-in client does next, at `mcpUrl`: get_me with its access token (the simulator's octocat),
 * a refresh with the same `resource` (RFC 6749 §6), get_me with the new access token. The refreshed tokens.
 */
export async function useAndRefresh(
  mcpUrl: string,
  found: Discovered,
  client: Client,
  tokens: { access_token: string; refresh_token?: string },
  params: Pick<SignInParams, "resource"> & Era,
) {
  expect(await getMeOverHttp(mcpUrl, tokens.access_token, params.era)).toBe("octocat");
  const refreshed = tokenSet(await refreshWith(found.server, client, tokens.refresh_token!, params.resource));
  expect(await getMeOverHttp(mcpUrl, refreshed.access_token, params.era)).toBe("octocat");
  return refreshed;
}

/** A whole sign-in through `params.redirectUri` (oauth-walk.ts `signInAndRedeem`), then `useAndRefresh`. */
export async function signInAndUse(mcpUrl: string, found: Discovered, client: Client, params: SignInParams & Era) {
  const { tokens } = await signInAndRedeem(found, client, params);
  return useAndRefresh(mcpUrl, found, client, tokens, params);
}
