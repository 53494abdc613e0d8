import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { calculateJwkThumbprint, decodeProtectedHeader, decodeJwt, type JWK } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import type { Gateway } from "../../src/gateway.js";
import type { Logger } from "../../src/log.js";
import { TestBrowser } from "../support/browser.js";
import { connectWithOAuth } from "../support/connect.js";
import { RecordingOAuthProvider } from "../support/oauth-client.js";
import { ACCOUNT_ID, startOidcUpstream, type OidcUpstream, type ProviderRequest } from "../support/oidc-upstream.js";
import { tempDir } from "../support/processes.js";
import { LOGIN } from "../support/config.js";
import { startTestGateway } from "../support/gateway.js";

/** A fresh key pair: the private half as PEM (PKCS#8), the public half as a JWK with its RFC 7638 thumbprint. */
async function keyPair(kind: "ec" | "rsa" | "ed25519") {
  const pair =
    kind === "ec"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : kind === "rsa"
        ? generateKeyPairSync("rsa", { modulusLength: 2048 })
        : generateKeyPairSync("ed25519");
  const publicJwk = pair.publicKey.export({ format: "jwk" }) as JWK;
  return { pem: pair.privateKey.export({ format: "pem", type: "pkcs8" }) as string, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk) };
}

const CLIENT_ID = "gateway-with-a-key";
const SERVER = "oidc";

/**
 * The gateway authenticating at a real oidc-provider's token endpoint with RFC 7523 client assertions
 * (`private_key_jwt`), configured by `oauth.privateKey` in a config file, and the real SDK client
 * signing in through it.
 */
describe("private_key_jwt toward the upstream (oidc-provider)", () => {
  let upstream: OidcUpstream | undefined;
  let gateway: Gateway | undefined;
  let expectNoProviderErrors = true;
  /** Where the config file and the key file live; removed after each test. */
  let dir: string | undefined;
  afterEach(async () => {
    await gateway?.close();
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
    if (upstream && expectNoProviderErrors) expect(upstream.providerErrors).toEqual([]);
    gateway = upstream = undefined;
    expectNoProviderErrors = true;
  });

  /** A gateway serving the provider's MCP server as `/mcp/oidc`, with `oauth` written into its config file and the key file beside it. */
  async function start(u: OidcUpstream, oauth: Record<string, unknown>, pem: string) {
    dir = tempDir("gateway-pkjwt");
    mkdirSync(join(dir, "keys"));
    writeFileSync(join(dir, "keys", "gateway.pem"), pem, { mode: 0o600 });
    const clock = new ManualClock();
    const warnings: string[] = [];
    const log: Logger = { info: () => {}, warn: (line) => void warnings.push(line), error: (line) => void warnings.push(line) };
    const mcpServers = { [SERVER]: { url: u.mcpUrl, oauth: { ...oauth, privateKey: "keys/gateway.pem" } } };
    gateway = await startTestGateway({ mcpServers, source: join(dir, "gateway.json"), clock, log });
    return { gateway, clock, warnings, mcpUrl: `${gateway.publicUrl}/mcp/${SERVER}` };
  }

  /**
   * A client registered in the provider beforehand that authenticates only with `private_key_jwt`, its
   * public key entered as docs/upstreams.md says the gateway names it: `kid` its RFC 7638 thumbprint
   * (oidc-provider, like many servers, matches a `kid` the assertion names exactly).
   */
  const keyClient = (key: { publicJwk: JWK; thumbprint: string }) => ({
    client_id: CLIENT_ID,
    // RFC 8252 §7.3: the loopback callback matches on any port, so the client exists before the gateway listens
    application_type: "native",
    redirect_uris: [`http://127.0.0.1/upstream/callback/${SERVER}`],
    grant_types: ["authorization_code", "refresh_token"],
    token_endpoint_auth_method: "private_key_jwt",
    jwks: { keys: [{ ...key.publicJwk, kid: key.thumbprint }] },
  });

  const tokenCalls = (u: OidcUpstream): ProviderRequest[] => u.providerRequests.filter((r) => r.method === "POST" && r.path === "/token");

  /** The token request carried an RFC 7523 assertion for `clientId`, signed with `alg`, naming the key by its thumbprint, for the provider. */
  function expectAssertion(call: ProviderRequest, o: { clientId: string; alg: string; kid: string; issuer: string }) {
    expect(call.authorization).toBeUndefined();
    expect(call.body).toMatchObject({ client_id: o.clientId, client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" });
    expect(call.body!.client_secret).toBeUndefined();
    const assertion = call.body!.client_assertion as string;
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: o.alg, kid: o.kid });
    expect(decodeJwt(assertion)).toMatchObject({ iss: o.clientId, sub: o.clientId, aud: o.issuer, jti: expect.any(String), exp: expect.any(Number) });
  }

  const whoami = async (client: Client) => {
    const result = await client.callTool({ name: "whoami", arguments: {} });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    return JSON.parse((result.content as { text: string }[])[0]!.text) as { sub: string; client_id: string };
  };

  it.each([
    ["an EC P-256 key", "ec", "ES256"],
    ["an RSA key", "rsa", "RS256"],
    ["an Ed25519 key", "ed25519", "EdDSA"],
  ] as const)("a pre-registered client with %s: the sign-in, the tool call and the upstream refresh authenticate with assertions", async (_what, kind, alg) => {
    const key = await keyPair(kind);
    upstream = await startOidcUpstream({ clients: [keyClient(key)] });
    const { clock, mcpUrl } = await start(upstream, { clientId: CLIENT_ID }, key.pem);

    const { client } = await connectWithOAuth(mcpUrl);
    expect(await whoami(client)).toMatchObject({ sub: ACCOUNT_ID, client_id: CLIENT_ID });
    expect(upstream.registrations).toEqual([]);

    // the gateway's token and its view of the upstream's expire: the SDK refreshes, and so does the gateway upstream
    clock.advance(10 * 60_000);
    expect(await whoami(client)).toMatchObject({ sub: ACCOUNT_ID, client_id: CLIENT_ID });
    expect(upstream.grants).toEqual([
      { grantType: "authorization_code", clientId: CLIENT_ID },
      { grantType: "refresh_token", clientId: CLIENT_ID },
    ]);
    const calls = tokenCalls(upstream);
    expect(calls.map((c) => c.body?.grant_type)).toEqual(["authorization_code", "refresh_token"]);
    for (const call of calls) expectAssertion(call, { clientId: CLIENT_ID, alg, kid: key.thumbprint, issuer: upstream.issuer });
    // RFC 7523 §3 item 7: each assertion is used once
    expect(new Set(calls.map((c) => decodeJwt(c.body!.client_assertion as string).jti)).size).toBe(2);
    await client.close();
  });

  it("a gateway holding another key than the one registered: the provider refuses it, and the sign-in ends at the client with an error, never a 5xx", async () => {
    const registered = await keyPair("ec");
    const other = await keyPair("ec");
    upstream = await startOidcUpstream({ clients: [keyClient(registered)] });
    const { mcpUrl, warnings } = await start(upstream, { clientId: CLIENT_ID }, other.pem);
    expectNoProviderErrors = false;

    const provider = new RecordingOAuthProvider();
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
    await expect(transport.send({ jsonrpc: "2.0", id: 1, method: "ping" })).rejects.toBeInstanceOf(UnauthorizedError);
    const browser = new TestBrowser();
    const end = await browser.walk(provider.authorizationUrl!.href, { redirectUri: provider.redirectUrl, ...LOGIN });
    await transport.close();

    // Every page on the way answered below 500, and the walk ended at the client's redirect URI with the error (RFC 6749 §4.1.2.1).
    expect("redirect" in end, JSON.stringify(end)).toBe(true);
    const redirect = (end as { redirect: URL }).redirect;
    expect(redirect.searchParams.get("code")).toBeNull();
    expect(redirect.searchParams.get("error")).toBe("server_error");
    expect(redirect.searchParams.get("error_description")).toBe("The gateway could not redeem the upstream's authorization code.");
    expect(redirect.searchParams.get("iss")).toBe(`${gateway!.publicUrl}/mcp/${SERVER}`);
    expect(redirect.searchParams.get("state")).toBe(provider.authorizationUrl!.searchParams.get("state"));

    const [call] = tokenCalls(upstream);
    expectAssertion(call!, { clientId: CLIENT_ID, alg: "ES256", kid: other.thumbprint, issuer: upstream.issuer });
    expect(call!.response).toMatchObject({ error: "invalid_client" });
    expect(upstream.grants).toEqual([]);
    // the operator learns why from the log, without the assertion or the key in it
    expect(warnings.join("\n")).toContain("invalid_client");
    expect(warnings.join("\n")).not.toContain(call!.body!.client_assertion as string);
  });

  it.each([
    ["an EC P-256 key", "ec", "ES256"],
    ["an Ed25519 key", "ed25519", "EdDSA"],
  ] as const)(
    "without clientId, with %s: the gateway registers with private_key_jwt and its public key as jwks, then signs in with assertions",
    async (_what, kind, alg) => {
      const key = await keyPair(kind);
      upstream = await startOidcUpstream();
      const { mcpUrl } = await start(upstream, {}, key.pem);

      const { client } = await connectWithOAuth(mcpUrl);
      expect(upstream.registrations).toHaveLength(1);
      const registered = upstream.registrations[0]!;
      const registration = upstream.providerRequests.find((r) => r.path === "/reg")!;
      expect(registration.body).toMatchObject({ token_endpoint_auth_method: "private_key_jwt" });
      const jwks = registration.body!.jwks as { keys: JWK[] };
      expect(jwks.keys).toHaveLength(1);
      // the public key only, named by its RFC 7638 thumbprint
      expect(jwks.keys[0]).toMatchObject({ ...key.publicJwk, kid: key.thumbprint });
      expect(jwks.keys[0]).not.toHaveProperty("d");
      expect(registration.body!.client_secret).toBeUndefined();

      expect(await whoami(client)).toMatchObject({ sub: ACCOUNT_ID, client_id: registered });
      const [call] = tokenCalls(upstream);
      expectAssertion(call!, { clientId: registered, alg, kid: key.thumbprint, issuer: upstream.issuer });
      await client.close();
    },
  );
});
