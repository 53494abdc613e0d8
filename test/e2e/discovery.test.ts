import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectWithOAuth } from "../support/connect.js";
import { mcpInitialize } from "../support/oauth-steps.js";
import { startStack, type Stack } from "../support/stack.js";

/** What a client learns before it has a token, and what browsers may read (checklist A, B, I11). */
describe("discovery and CORS", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ server: { oauth: { scope: "read:user,gist" } } });
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  const getJson = async (path: string) => {
    const response = await fetch(`${gw}${path}`);
    return { status: response.status, type: response.headers.get("content-type"), body: (await response.json()) as Record<string, unknown> };
  };

  it.each(["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"])("serves RFC 9728 metadata at %s", async (path) => {
    const { status, type, body } = await getJson(path);
    expect(status).toBe(200);
    expect(type).toContain("application/json");
    expect(body).toEqual({
      resource: `${gw}/mcp`,
      authorization_servers: [gw],
      scopes_supported: ["read:user", "gist"],
      bearer_methods_supported: ["header"],
      resource_name: "MCP OAuth Gateway",
    });
  });

  it.each(["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"])(
    "serves RFC 8414 metadata at %s with the byte-identical issuer",
    async (path) => {
      const { status, body } = await getJson(path);
      expect(status).toBe(200);
      expect(body.issuer).toBe(gw);
      expect(body).toMatchObject({
        authorization_endpoint: `${gw}/authorize`,
        device_authorization_endpoint: `${gw}/device_authorization`,
        token_endpoint: `${gw}/token`,
        registration_endpoint: `${gw}/register`,
        response_types_supported: ["code"],
        grant_types_supported: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: ["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported: expect.arrayContaining(["RS256", "ES256", "EdDSA"]),
        authorization_response_iss_parameter_supported: true,
        revocation_endpoint: `${gw}/revoke`,
        introspection_endpoint: `${gw}/introspect`,
        introspection_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic", "private_key_jwt"],
        revocation_endpoint_auth_methods_supported: ["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
        client_id_metadata_document_supported: true,
      });
    },
  );

  it("describes the MCP URL typed with a trailing slash as typed (RFC 9728 §3.3: VS Code compares byte for byte), never redirecting it", async () => {
    const challenge = await mcpInitialize(`${gw}/mcp/`);
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get("www-authenticate")).toContain(`resource_metadata="${gw}/.well-known/oauth-protected-resource/mcp/"`);
    expect((await getJson("/.well-known/oauth-protected-resource/mcp/")).body.resource).toBe(`${gw}/mcp/`);
    expect((await getJson("/.well-known/oauth-protected-resource/")).body.resource).toBe(`${gw}/mcp`);
    // the SDK client then names that resource, and its token is good at the URL it typed
    const { client } = await connectWithOAuth(`${gw}/mcp/`);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
  });

  it("answers unknown well-known paths with a JSON 404, not 5xx or HTML", async () => {
    const response = await fetch(`${gw}/.well-known/oauth-authorization-server/mcp`);
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toContain("application/json");
  });

  it.each([
    ["/.well-known/oauth-protected-resource/mcp", "GET"],
    ["/.well-known/oauth-authorization-server", "GET"],
    ["/register", "POST"],
    ["/token", "POST"],
    ["/mcp", "POST"],
  ])("answers the CORS preflight for %s without authentication", async (path, method) => {
    const response = await fetch(`${gw}${path}`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:6274",
        "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type, mcp-protocol-version, mcp-session-id",
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-headers")).toContain("mcp-protocol-version");
  });

  it("exposes WWW-Authenticate and Mcp-Session-Id to browser clients", async () => {
    const response = await mcpInitialize(stack.mcpUrl, undefined, { origin: "http://localhost:6274" });
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-expose-headers")).toMatch(/WWW-Authenticate/);
    expect(response.headers.get("access-control-expose-headers")).toMatch(/Mcp-Session-Id/);
  });

  it("offers no CORS at the authorization endpoint (RFC 9700 §2.6)", async () => {
    const response = await fetch(`${gw}/authorize`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "GET" } });
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("never accepts a token from the query string", async () => {
    const { provider, client } = await connectWithOAuth(stack.mcpUrl);
    await client.close();
    const token = provider.tokens()!.access_token;
    expect((await mcpInitialize(`${stack.mcpUrl}?access_token=${encodeURIComponent(token)}`)).status).toBe(401);
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${token}`)).status).toBe(200);
    expect((await mcpInitialize(stack.mcpUrl, `bearer ${token}`)).status).toBe(200); // RFC 9110 §11.1: the scheme is case-insensitive
  });
});
