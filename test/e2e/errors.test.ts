import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestBrowser, returnLink } from "../support/browser.js";
import { REDIRECT_URI, authorizeUrl, mcpInitialize, obtainCode, redeem, register, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { startStack, type Stack } from "../support/stack.js";

/** Each error path with its exact status and RFC error code. */
describe("error paths", () => {
  let stack: Stack;
  let gw: string;
  beforeAll(async () => {
    stack = await startStack({ mode: "oauth_app", server: { oauth: { scope: "read:user" } } });
    gw = stack.gateway.publicUrl;
  });
  afterAll(() => stack?.close());

  const authorizeParams = (clientId: string, extra: Record<string, string> = {}) => ({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    code_challenge: pkce().challenge,
    code_challenge_method: "S256",
    state: "s-1",
    ...extra,
  });

  it("answers OPTIONS on a route that declares none with Express's own Allow list, not the 404 of a path it does not serve", async () => {
    for (const [path, allow] of [
      ["/introspect", "POST"],
      ["/authorize", "GET, HEAD"],
      ["/login", "GET, HEAD, POST"],
      ["/upstream/callback", "GET, HEAD"],
    ]) {
      const answer = await fetch(`${gw}${path}`, { method: "OPTIONS" });
      expect([path, answer.status, answer.headers.get("allow")]).toEqual([path, 200, allow]);
    }
    expect((await fetch(`${gw}/no-such-path`, { method: "OPTIONS" })).status).toBe(404);
  });

  describe("/authorize", () => {
    it("shows a local error page, never a redirect, for an unregistered redirect URI", async () => {
      const { client_id } = await register(gw);
      const page = await new TestBrowser().request(authorizeUrl(gw, authorizeParams(client_id, { redirect_uri: "https://evil.example/cb" })));
      expect(page.status).toBe(400);
      expect(page.location).toBeUndefined();
      expect(page.headers.get("content-type")).toContain("text/html");
      expect(page.text).toContain("invalid_request");
    });

    it("shows a local error page for an unknown client", async () => {
      const page = await new TestBrowser().request(authorizeUrl(gw, authorizeParams("no-such-client")));
      expect(page.status).toBe(400);
      expect(page.location).toBeUndefined();
      expect(page.text).toContain("invalid_client");
    });

    it("accepts a loopback redirect URI on another port (RFC 8252 §7.3)", async () => {
      const { client_id } = await register(gw);
      const page = await new TestBrowser().request(authorizeUrl(gw, authorizeParams(client_id, { redirect_uri: "http://127.0.0.1:59656/callback" })));
      expect(page.status).toBe(302);
      expect(page.location).toMatch(/\/login\?request=/);
    });

    it.each([
      ["missing PKCE", { code_challenge: "" }, "invalid_request"],
      ["plain PKCE", { code_challenge_method: "plain" }, "invalid_request"],
      ["a response_type other than code", { response_type: "token" }, "unsupported_response_type"],
      ["a resource that is not this gateway's", { resource: "https://other.example/mcp" }, "invalid_target"],
    ])("answers %s with error, state and iss: by a page's link to a new client, by redirect to one approved before", async (_what, extra, error) => {
      const { client_id } = await register(gw);
      const browser = new TestBrowser();
      // RFC 9700 §4.11.2: no automatic redirect to a client this browser's user never approved
      const page = await browser.request(authorizeUrl(gw, authorizeParams(client_id, extra)));
      expect(page.status).toBe(400);
      expect(page.location).toBeUndefined();
      const link = returnLink(page.text)!.url;
      expect(link.origin + link.pathname).toBe(REDIRECT_URI);
      expect(Object.fromEntries(link.searchParams)).toMatchObject({ error, state: "s-1", iss: gw });

      await obtainCode(gw, { clientId: client_id, browser });
      const again = await browser.request(authorizeUrl(gw, authorizeParams(client_id, extra)));
      expect(again.status).toBe(302);
      const location = new URL(again.location!);
      expect(location.origin + location.pathname).toBe(REDIRECT_URI);
      expect(Object.fromEntries(location.searchParams)).toMatchObject({ error, state: "s-1", iss: gw });
    });
  });

  describe("/token", () => {
    it("refuses wrong client credentials: 401 with a Basic challenge via the header, 400 via the body", async () => {
      const confidential = await register(gw, { token_endpoint_auth_method: "client_secret_basic" });
      expect(confidential.client_secret).toBeTruthy();
      const c = await obtainCode(gw, { clientId: confidential.client_id });
      const basic = (secret: string) => `Basic ${Buffer.from(`${confidential.client_id}:${secret}`).toString("base64")}`;
      const form = { grant_type: "authorization_code", code: c.code, code_verifier: c.verifier, redirect_uri: REDIRECT_URI };

      const viaHeader = await tokenRequest(gw, form, { authorization: basic("wrong") });
      expect(viaHeader.status).toBe(401);
      expect(viaHeader.body.error).toBe("invalid_client");
      expect(viaHeader.headers.get("www-authenticate")).toMatch(/^Basic realm=/);

      const viaBody = await tokenRequest(gw, { ...form, client_id: confidential.client_id, client_secret: "wrong" });
      expect(viaBody.status).toBe(400);
      expect(viaBody.body.error).toBe("invalid_client");
    });

    it("accepts a confidential client by client_secret_basic and by client_secret_post", async () => {
      const confidential = await register(gw, { token_endpoint_auth_method: "client_secret_post" });
      const c1 = await obtainCode(gw, { clientId: confidential.client_id });
      const basic = `Basic ${Buffer.from(`${confidential.client_id}:${confidential.client_secret}`).toString("base64")}`;
      const ok1 = await tokenRequest(
        gw,
        { grant_type: "authorization_code", code: c1.code, code_verifier: c1.verifier, redirect_uri: REDIRECT_URI },
        { authorization: basic },
      );
      expect(ok1.status).toBe(200);
      const c2 = await obtainCode(gw, { clientId: confidential.client_id });
      const ok2 = await tokenRequest(gw, {
        grant_type: "authorization_code",
        code: c2.code,
        code_verifier: c2.verifier,
        redirect_uri: REDIRECT_URI,
        client_id: confidential.client_id,
        client_secret: confidential.client_secret!,
      });
      expect(ok2.status).toBe(200);
    });

    it("refuses an unsupported grant type", async () => {
      const { client_id } = await register(gw);
      const response = await tokenRequest(gw, { grant_type: "password", client_id, username: "a", password: "b" });
      expect(response.status).toBe(400);
      expect(response.body.error).toBe("unsupported_grant_type");
    });
  });

  describe("/register", () => {
    it.each([
      ["no redirect_uris", { redirect_uris: undefined }, "invalid_client_metadata"],
      ["a javascript: redirect URI", { redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
      ["a redirect URI with a fragment", { redirect_uris: ["https://a.example/cb#x"] }, "invalid_redirect_uri"],
      ["plain http to a remote host", { redirect_uris: ["http://evil.example/cb"] }, "invalid_redirect_uri"],
      ["an unsupported grant type", { grant_types: ["password"] }, "invalid_client_metadata"],
      ["an unknown auth method", { token_endpoint_auth_method: "tls_client_auth" }, "invalid_client_metadata"],
      // private_key_jwt is for Client ID Metadata Documents, whose keys are published: a registration would get a secret
      ["private_key_jwt at registration", { token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata"],
    ])("refuses %s", async (_what, metadata, error) => {
      const response = await fetch(`${gw}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: [REDIRECT_URI], ...metadata }),
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe(error);
    });

    it("refuses a body that is not JSON", async () => {
      const response = await fetch(`${gw}/register`, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe("invalid_client_metadata");
    });
  });

  describe("/mcp", () => {
    const resourceMetadata = () => `resource_metadata="${gw}/.well-known/oauth-protected-resource/mcp"`;

    it("answers 401 with the discovery challenge and no error code when there is no token", async () => {
      const response = await mcpInitialize(stack.mcpUrl);
      expect(response.status).toBe(401);
      const challenge = response.headers.get("www-authenticate")!;
      expect(challenge).toMatch(/^Bearer /);
      expect(challenge).toContain(resourceMetadata());
      expect(challenge).toContain('scope="read:user"');
      expect(challenge).not.toContain("error=");
    });

    it("turns an upstream 401 into the gateway's own challenge", async () => {
      const { body } = await redeem(gw, await obtainCode(gw));
      expect((await mcpInitialize(stack.mcpUrl, `Bearer ${body.access_token}`)).status).toBe(200);
      stack.simulator.revokeGrant(stack.app.clientId); // the user revokes the app at GitHub
      const response = await mcpInitialize(stack.mcpUrl, `Bearer ${body.access_token}`);
      expect(response.status).toBe(401);
      const challenge = response.headers.get("www-authenticate")!;
      expect(challenge).toContain('error="invalid_token"');
      expect(challenge).toContain(resourceMetadata());
      expect(challenge).not.toContain(stack.simulator.mcpOrigin);
    });

    it("turns an upstream insufficient_scope into the gateway's step-up challenge", async () => {
      const c = await obtainCode(gw, { scope: "read:user" });
      const { body } = await redeem(gw, c);
      const auth = { authorization: `Bearer ${body.access_token}`, "content-type": "application/json", accept: "application/json, text/event-stream" };
      const response = await fetch(stack.mcpUrl, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "create_gist", arguments: { files: {} } } }),
      });
      expect(response.status).toBe(403);
      const challenge = response.headers.get("www-authenticate")!;
      expect(challenge).toContain('error="insufficient_scope"');
      expect(challenge).toMatch(/scope="[^"]*gist[^"]*"/);
      expect(challenge).toContain(resourceMetadata());
    });
  });
});
