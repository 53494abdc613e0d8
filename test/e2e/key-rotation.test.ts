import { decodeProtectedHeader } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { silentLogger } from "../../src/log.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { MemoryStore } from "../../src/store/memory.js";
import { mcpInitialize, obtainCode, redeem, tokenRequest } from "../support/oauth-steps.js";
import { freePort } from "../support/processes.js";
import { LOGIN } from "../support/config.js";

const OLD = "old-secret-0123456789-0123456789-0123456789";
const NEW = "new-secret-0123456789-0123456789-0123456789";
const app = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;

/** MCP_GATEWAY_PREVIOUS_SECRETS: rotate the master secret without signing anyone out (docs/storage.md). */
describe("key rotation", () => {
  const clock = new ManualClock();
  const store = new MemoryStore(clock);
  let simulator: Simulator;
  let port: number;
  let gateway: Gateway | undefined;
  beforeAll(async () => {
    simulator = await startSimulator({ clock });
    port = await freePort();
  });
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });
  afterAll(() => simulator?.close());

  /** A gateway on the shared store and the same public URL, with the given secrets. */
  async function start(secret: string, previous: string[] = []): Promise<string> {
    const config = loadConfig(
      ["--port", String(port), "--public-url", `http://127.0.0.1:${port}`, "--upstream-rs", simulator.mcpUrl, "--upstream-client-id", app.clientId],
      {
        MCP_GATEWAY_ENV_FILE: "/dev/null",
        MCP_GATEWAY_USERNAME: LOGIN.username,
        MCP_GATEWAY_PASSWORD: LOGIN.password,
        MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0],
        MCP_GATEWAY_SECRET: secret,
        MCP_GATEWAY_PREVIOUS_SECRETS: previous.join(","),
      },
    );
    gateway = await startGateway(config, { clock, store, log: silentLogger });
    return gateway.publicUrl;
  }

  async function tokensUnder(secret: string) {
    const gw = await start(secret);
    const redeemed = await redeem(gw, await obtainCode(gw));
    expect(redeemed.status).toBe(200);
    await gateway!.close();
    gateway = undefined;
    return redeemed.body;
  }

  const refresh = (gw: string, tokens: Record<string, string>) =>
    tokenRequest(gw, { grant_type: "refresh_token", refresh_token: tokens.refresh_token!, client_id: claims(tokens.access_token!).client_id });
  const kid = (token: string) => decodeProtectedHeader(token.split("~")[0]!).kid;

  it("keeps tokens issued under the previous secret working, and issues new ones under the new secret", async () => {
    const tokens = await tokensUnder(OLD);
    const gw = await start(NEW, [OLD]);
    expect((await mcpInitialize(`${gw}/mcp`, `Bearer ${tokens.access_token}`)).status).toBe(200);

    const refreshed = await refresh(gw, tokens);
    expect(refreshed.status).toBe(200);
    expect(kid(refreshed.body.access_token!)).not.toBe(kid(tokens.access_token!));
    expect((await mcpInitialize(`${gw}/mcp`, `Bearer ${refreshed.body.access_token}`)).status).toBe(200);
  });

  it("refuses tokens of a secret that is no longer listed", async () => {
    const tokens = await tokensUnder(OLD);
    const gw = await start(NEW);
    expect((await mcpInitialize(`${gw}/mcp`, `Bearer ${tokens.access_token}`)).status).toBe(401);
    const refreshed = await refresh(gw, tokens);
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe("invalid_grant");
  });
});

const claims = (token: string) => JSON.parse(Buffer.from(token.split("~")[0]!.split(".")[1]!, "base64url").toString()) as { client_id: string };
