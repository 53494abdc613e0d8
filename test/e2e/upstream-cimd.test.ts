import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from "undici";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";
import { ManualClock } from "../../src/clock.js";
import type { Gateway } from "../../src/gateway.js";
import { DEFAULT_APPS, startSimulator, type Simulator } from "../../src/simulator/index.js";
import { TestBrowser } from "../support/browser.js";
import { selfSignedCertificate, type TestCertificate } from "../support/https.js";
import { RecordingOAuthProvider } from "../support/oauth-client.js";
import { freePort, killAll, startGatewayProcess, type GatewayProcess } from "../support/processes.js";
import { LOGIN } from "../support/config.js";
import { startTestGateway } from "../support/gateway.js";
import { startFront, type Front } from "../support/tls-front.js";

const app = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;
/** Gateway B's own user: a different one from gateway A's, so each sign-in is shown to be at its own gateway. */
const B_LOGIN = { username: "bob", password: "another horse, another battery, another staple" };
const NAME = "chained";

/**
 * Issue 6 item 3, chained OAuth auto-detected, by Client ID Metadata Document: gateway A (https
 * behind a TLS front) has one upstream with no `oauth` block, which is gateway B (a child process
 * in front of the GitHub simulator, its AS advertising client_id_metadata_document_supported).
 * A learns B's AS from its 401 and metadata and, instead of registering, uses its own document URL
 * as client_id; B fetches that document from A over https.
 */
describe("chained OAuth to an upstream whose AS takes Client ID Metadata Documents", () => {
  /** Every request either front saw, in arrival order: `A|B <METHOD> <path>`. */
  const journal: string[] = [];
  let certificate: TestCertificate;
  let simulator: Simulator;
  let frontB: Front;
  let gatewayB: GatewayProcess;
  let frontA: Front;
  let gatewayA: Gateway;
  /** Trusts the test certificate, as the MCP client and the user's browser do. */
  let tls: Agent;

  beforeAll(async () => {
    certificate = selfSignedCertificate();
    tls = new Agent({ connect: { ca: certificate.cert } });
    simulator = await startSimulator({ clock: new ManualClock() });

    const portB = await freePort();
    frontB = await startFront({ label: "B", journal, target: `http://127.0.0.1:${portB}` });
    gatewayB = await startGatewayProcess(
      ["--port", String(portB), "--public-url", frontB.origin, "--store", "memory", "--upstream-rs", simulator.mcpUrl, "--allow-private-fetch", "true"],
      {
        NODE_EXTRA_CA_CERTS: certificate.certFile,
        MCP_GATEWAY_UPSTREAM_CLIENT_ID: app.clientId,
        MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0],
        MCP_GATEWAY_USERNAME: B_LOGIN.username,
        MCP_GATEWAY_PASSWORD: B_LOGIN.password,
      },
    );

    frontA = await startFront({ label: "A", journal, certificate });
    // A's https URL is on a loopback address, which upstream ASes refuse to fetch from unless, as here, they allow private fetches:
    // the same flag tells A it may offer them its metadata document anyway (src/gateway.ts, offersClientMetadata)
    gatewayA = await startTestGateway({
      mcpServers: { [NAME]: { url: `${frontB.origin}/mcp` } },
      host: "127.0.0.1",
      publicUrl: frontA.origin,
      allowPrivateFetch: true,
    });
    frontA.forwardTo(gatewayA.listenUrl);
  }, 60_000);

  afterAll(async () => {
    await gatewayA?.close();
    await frontA?.close();
    await gatewayB?.kill();
    killAll();
    await frontB?.close();
    await simulator?.close();
    await tls?.close();
    certificate?.remove();
  });

  it("signs in at both gateways, with A's document URL as its client_id at B, and reaches the simulator through both", async () => {
    const mcpUrl = `${frontA.origin}/mcp/${NAME}`;
    // A's document and callback for this upstream only (RFC 9700 §4.4.2: one redirect URI per upstream)
    const clientMetadataUrl = `${frontA.origin}/upstream/client-metadata/${NAME}.json`;
    const fetchOverTls: FetchLike = (url, init) => undiciFetch(url, { ...(init as UndiciRequestInit), dispatcher: tls });
    const provider = new RecordingOAuthProvider();
    const browser = new TestBrowser({}, { dispatcher: tls });
    const client = new Client({ name: "e2e-cimd", version: "1.0.0" });

    // the real MCP SDK client over https: 401, discovery, registration at A, on to the authorization endpoint of A's issuer for this upstream
    const first = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchOverTls });
    const refused = await client.connect(first).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(UnauthorizedError);
    const authorization = provider.authorizationUrl!;
    expect(`${authorization.origin}${authorization.pathname}`).toBe(`${frontA.origin}/authorize/${NAME}`);
    expect(authorization.searchParams.get("resource")).toBe(mcpUrl);
    expect(journal).toContain("A POST /register");

    // A's Screen 1 (A's user), then A sends the browser to B's /authorize, naming itself by its document URL
    const atB = await browser.authorize(authorization.href, { redirectUri: `${frontB.origin}/authorize?`, ...LOGIN });
    expect(browser.visited.some((url) => url.startsWith(`${frontA.origin}/login?request=`))).toBe(true);
    expect(atB.searchParams.get("client_id")).toBe(clientMetadataUrl);
    expect(atB.searchParams.get("redirect_uri")).toBe(`${frontA.origin}/upstream/callback/${NAME}`);
    expect(atB.searchParams.get("resource")).toBe(`${frontB.origin}/mcp`);

    // B's Screen 1 (B's user), the simulator's consent, B's callback, A's callback, and back to the client
    const back = await browser.authorize(atB.href, { redirectUri: provider.redirectUrl, ...B_LOGIN });
    expect(back.searchParams.get("iss")).toBe(`${frontA.origin}/mcp/${NAME}`);
    const code = back.searchParams.get("code");
    expect(code, back.href).toBeTruthy();
    await first.finishAuth(code!);
    expect(provider.tokens()?.access_token).toBeTruthy();

    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: fetchOverTls });
    await client.connect(transport);
    try {
      const result = await client.callTool({ name: "get_me", arguments: {} });
      expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
      expect(JSON.parse((result.content as { type: string; text: string }[])[0]!.text)).toMatchObject({ login: "octocat" });
    } finally {
      await client.close();
    }

    // B never registered A: it fetched A's document, over https through A's front, while answering its /authorize
    expect(journal.filter((line) => line.endsWith(" /register"))).toEqual(["A POST /register"]);
    const at = (line: string) => journal.indexOf(line);
    const documentFetch = `A GET /upstream/client-metadata/${NAME}.json`;
    expect(journal.filter((line) => line === documentFetch)).toHaveLength(1);
    expect(at("B GET /authorize")).toBeGreaterThanOrEqual(0);
    expect(at(documentFetch)).toBeGreaterThan(at("B GET /authorize"));
    expect(at("B GET /login")).toBeGreaterThan(at(documentFetch));
    // B's callback to A's callback, where A redeems B's code at B's token endpoint as the document's public client
    expect(at("B POST /login")).toBeGreaterThan(at("B GET /login"));
    expect(at(`A GET /upstream/callback/${NAME}`)).toBeGreaterThan(at("B GET /upstream/callback"));
    expect(at("B POST /token")).toBeGreaterThan(at(`A GET /upstream/callback/${NAME}`));
    // and the tool call went client → A → B → simulator, the simulator seeing B's own GitHub token only
    expect(journal.lastIndexOf("B POST /mcp")).toBeGreaterThan(journal.lastIndexOf("A POST /mcp/chained"));
    const toolCalls = simulator.requests.filter((r) => r.origin === "mcp" && r.body.includes('"get_me"'));
    expect(toolCalls).toHaveLength(1);
    expect(simulator.issuedTokens().access).toContain(toolCalls[0]!.headers.authorization?.replace(/^Bearer /i, ""));
    const githubAuthorize = simulator.requests.filter((r) => r.origin === "web" && r.path.startsWith("/login/oauth/authorize"));
    expect(githubAuthorize.map((r) => new URL(r.path, simulator.webOrigin).searchParams.get("client_id"))).toEqual([app.clientId]);
  }, 120_000);
});
