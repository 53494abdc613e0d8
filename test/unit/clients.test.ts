import { describe, expect, it } from "vitest";
import { readClientCredentials, redirectUriMatches, redirectUriProblem, registerClient, type ClientRecord } from "../../src/as/clients.js";
import { ManualClock, nowSeconds } from "../../src/clock.js";
import { sha256 } from "../../src/crypto.js";
import { OAuthError } from "../../src/errors.js";
import { MemoryStore } from "../../src/store/memory.js";
import { keys } from "../../src/store/store.js";

const basic = (id: string, secret: string, encode = true) => {
  const form = (s: string) => (encode ? encodeURIComponent(s) : s);
  return `Basic ${Buffer.from(`${form(id)}:${form(secret)}`).toString("base64")}`;
};

const oauthError = (fn: () => unknown): OAuthError => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(OAuthError);
    return error as OAuthError;
  }
  throw new Error("no error thrown");
};

describe("redirectUriProblem (OAuth 2.1 §2.3, RFC 8252 §7)", () => {
  it.each([
    "https://client.example/cb",
    "https://client.example/cb?tenant=1",
    "http://localhost/cb",
    "http://localhost:33418/callback",
    "http://127.0.0.1:6274/oauth/callback",
    "http://[::1]:8080/cb",
    "HTTP://LOCALHOST:1/cb",
    "cursor://anysphere.cursor-mcp/oauth/callback",
    "vscode://vscode.github-authentication/did-authenticate",
    "com.example.app:/oauth2redirect",
  ])("accepts %s", (uri) => {
    expect(redirectUriProblem(uri)).toBeUndefined();
  });

  it.each([
    ["javascript:", "javascript:alert(1)"],
    ["javascript: in capitals", "JavaScript:alert(1)"],
    ["data:", "data:text/html,<script>alert(1)</script>"],
    ["file:", "file:///etc/passwd"],
    ["vbscript:", "vbscript:msgbox(1)"],
    ["a fragment", "https://client.example/cb#x"],
    ["an empty fragment", "https://client.example/cb#"],
    ["a wildcard host", "https://*.client.example/cb"],
    ["a wildcard path", "https://client.example/*"],
    ["remote http", "http://client.example/cb"],
    ["http on a name that starts like localhost", "http://localhost.evil.example/cb"],
    ["http on a name that ends like localhost", "http://evil-localhost/cb"],
    ["a relative URI", "/cb"],
    ["an overlong URI", `https://client.example/${"a".repeat(2000)}`],
  ])("refuses %s", (_what, uri) => {
    expect(redirectUriProblem(uri)).toEqual(expect.any(String));
  });
});

describe("redirectUriMatches (OAuth 2.1 §4.1.1, RFC 8252 §7.3)", () => {
  it("matches an identical string", () => {
    expect(redirectUriMatches("https://client.example/cb", "https://client.example/cb")).toBe(true);
    expect(redirectUriMatches("cursor://anysphere.cursor-mcp/oauth/callback", "cursor://anysphere.cursor-mcp/oauth/callback")).toBe(true);
  });

  it.each([
    ["http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"],
    ["http://127.0.0.1:3000/cb", "http://127.0.0.1:4000/cb"],
    ["http://localhost:3000/cb?x=1", "http://localhost:4000/cb?x=1"],
    ["http://[::1]/cb", "http://[::1]:4000/cb"],
  ])("lets loopback %s match on any port: %s", (registered, requested) => {
    expect(redirectUriMatches(registered, requested)).toBe(true);
  });

  it.each([
    ["localhost vs 127.0.0.1", "http://localhost:3000/cb", "http://127.0.0.1:3000/cb"],
    ["127.0.0.1 vs localhost", "http://127.0.0.1/cb", "http://localhost:3000/cb"],
    ["127.0.0.1 vs [::1]", "http://127.0.0.1/cb", "http://[::1]:3000/cb"],
    ["another path", "http://127.0.0.1/cb", "http://127.0.0.1:3000/cb2"],
    ["a path prefix", "http://127.0.0.1/cb", "http://127.0.0.1:3000/cb/more"],
    ["path case", "http://127.0.0.1/cb", "http://127.0.0.1:3000/CB"],
    ["an added query", "http://127.0.0.1/cb", "http://127.0.0.1:3000/cb?x=1"],
    ["another query", "http://127.0.0.1/cb?x=1", "http://127.0.0.1:3000/cb?x=2"],
    ["a fragment", "http://127.0.0.1/cb", "http://127.0.0.1:3000/cb#x"],
    ["https instead of http", "http://127.0.0.1/cb", "https://127.0.0.1:3000/cb"],
    ["percent-encoded path", "http://127.0.0.1/cb", "http://127.0.0.1:3000/%63b"],
    ["userinfo in front of the loopback host", "http://127.0.0.1/cb", "http://evil@127.0.0.1:3000/cb"],
    ["userinfo naming the loopback host", "http://127.0.0.1/cb", "http://127.0.0.1:3000@evil.example/cb"],
    ["a port out of range (authorizationResponse could not build the redirect)", "http://127.0.0.1/cb", "http://127.0.0.1:65536/cb"],
    ["a non-loopback https URI on another port", "https://client.example/cb", "https://client.example:8443/cb"],
    ["a trailing slash on https", "https://client.example/cb", "https://client.example/cb/"],
    ["a private-use scheme with another path", "cursor://anysphere.cursor-mcp/oauth/callback", "cursor://anysphere.cursor-mcp/oauth/callback2"],
  ])("refuses %s", (_what, registered, requested) => {
    expect(redirectUriMatches(registered, requested)).toBe(false);
  });

  // OAuth 2.1 §2.3.1: simple string comparison (RFC 3986 §6.2.1); only the loopback port may differ.
  it.each([
    ["dot segments", "http://127.0.0.1/cb", "http://127.0.0.1:3000/x/../cb"],
    ["an empty query", "http://127.0.0.1/cb", "http://127.0.0.1:3000/cb?"],
    ["a backslash for the slash", "http://127.0.0.1/cb", "http://127.0.0.1:3000\\cb"],
  ])("compares the loopback path as a string, refusing %s", (_what, registered, requested) => {
    expect(redirectUriMatches(registered, requested)).toBe(false);
  });
});

describe("readClientCredentials (RFC 6749 §2.3.1)", () => {
  it("decodes Basic credentials as form-urlencoded id and secret", () => {
    expect(readClientCredentials(basic("client:1", "p@ss wörd+/="), {})).toEqual({
      clientId: "client:1",
      clientSecret: "p@ss wörd+/=",
      method: "client_secret_basic",
    });
  });

  it("reads + in Basic credentials as a space (application/x-www-form-urlencoded)", () => {
    expect(readClientCredentials(basic("a+b", "c+d", false), {})).toMatchObject({ clientId: "a b", clientSecret: "c d" });
  });

  it("accepts the scheme name in any case", () => {
    const header = basic("id", "secret").replace("Basic", "bAsIc");
    expect(readClientCredentials(header, {})).toMatchObject({ clientId: "id", clientSecret: "secret" });
  });

  it("accepts a matching client_id in the body next to Basic", () => {
    expect(readClientCredentials(basic("id", "secret"), { client_id: "id" }).method).toBe("client_secret_basic");
  });

  it("refuses Basic and client_secret in the body at once", () => {
    expect(oauthError(() => readClientCredentials(basic("id", "secret"), { client_id: "id", client_secret: "secret" })).code).toBe("invalid_request");
  });

  it("refuses a body client_id that differs from the Basic one", () => {
    expect(oauthError(() => readClientCredentials(basic("id", "secret"), { client_id: "other" })).code).toBe("invalid_request");
  });

  it("refuses malformed Basic credentials with 401 and a Basic challenge", () => {
    for (const header of [`Basic ${Buffer.from("no-colon").toString("base64")}`, basic("%zz", "secret", false)]) {
      const error = oauthError(() => readClientCredentials(header, {}));
      expect(error.code).toBe("invalid_client");
      expect(error.status).toBe(401);
      expect(error.headers["WWW-Authenticate"]).toMatch(/^Basic /);
    }
  });

  it("reads client_secret_post from the body", () => {
    expect(readClientCredentials(undefined, { client_id: "id", client_secret: "secret" })).toEqual({
      clientId: "id",
      clientSecret: "secret",
      method: "client_secret_post",
    });
  });

  it("reads a public client from client_id alone", () => {
    expect(readClientCredentials(undefined, { client_id: "id" })).toEqual({ clientId: "id", method: "none" });
  });

  it("ignores a Bearer header and reads the body", () => {
    expect(readClientCredentials("Bearer abc", { client_id: "id" })).toEqual({ clientId: "id", method: "none" });
  });

  it("refuses a request with no client at all, 401 with a challenge", () => {
    const error = oauthError(() => readClientCredentials(undefined, {}));
    expect(error.code).toBe("invalid_client");
    expect(error.status).toBe(401);
    expect(error.headers["WWW-Authenticate"]).toMatch(/^Basic /);
  });

  it("refuses a repeated client_id (RFC 6749 §3.1)", () => {
    expect(oauthError(() => readClientCredentials(undefined, { client_id: ["a", "b"] })).code).toBe("invalid_request");
  });
});

describe("registerClient (RFC 7591)", () => {
  const setup = () => {
    const clock = new ManualClock();
    return { clock, store: new MemoryStore(clock) };
  };
  const reject = async (body: unknown): Promise<OAuthError> => {
    const { store, clock } = setup();
    const error: unknown = await registerClient(body, store, clock).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OAuthError);
    return error as OAuthError;
  };

  it("provisions a confidential client by default (client_secret_basic, RFC 7591 §2) with the §3.2.1 response", async () => {
    const { store, clock } = setup();
    const response = await registerClient({ redirect_uris: ["https://client.example/cb"], client_name: "Example" }, store, clock);
    expect(response).toEqual({
      client_id: expect.any(String),
      client_id_issued_at: nowSeconds(clock),
      client_secret: expect.any(String),
      client_secret_expires_at: 0,
      redirect_uris: ["https://client.example/cb"],
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      client_name: "Example",
    });
    expect((response.client_secret as string).length).toBeGreaterThanOrEqual(32);
  });

  it("stores the secret only as its hash", async () => {
    const { store, clock } = setup();
    const response = await registerClient({ redirect_uris: ["https://client.example/cb"], token_endpoint_auth_method: "client_secret_post" }, store, clock);
    const stored = await store.get<ClientRecord>(keys.client(response.client_id as string));
    expect(stored?.client_secret_hash).toBe(sha256(response.client_secret as string));
    expect(JSON.stringify(stored)).not.toContain(response.client_secret as string);
    expect(response).not.toHaveProperty("client_secret_hash");
  });

  it("gives a public client no secret", async () => {
    const { store, clock } = setup();
    const response = await registerClient({ redirect_uris: ["http://127.0.0.1:6274/cb"], token_endpoint_auth_method: "none" }, store, clock);
    expect(response).not.toHaveProperty("client_secret");
    expect(response).not.toHaveProperty("client_secret_expires_at");
    const stored = await store.get<ClientRecord>(keys.client(response.client_id as string));
    expect(stored).not.toHaveProperty("client_secret_hash");
  });

  it("gives every client its own id", async () => {
    const { store, clock } = setup();
    const body = { redirect_uris: ["https://client.example/cb"], token_endpoint_auth_method: "none" };
    const [a, b] = await Promise.all([registerClient(body, store, clock), registerClient(body, store, clock)]);
    expect(a.client_id).not.toBe(b.client_id);
  });

  it("ignores metadata it does not know (RFC 7591 §2)", async () => {
    const { store, clock } = setup();
    const response = await registerClient(
      { redirect_uris: ["https://client.example/cb"], token_endpoint_auth_method: "none", jwks_uri: "https://x", tos_uri: "https://t", admin: true },
      store,
      clock,
    );
    expect(response).not.toHaveProperty("jwks_uri");
    expect(response).not.toHaveProperty("tos_uri");
    expect(response).not.toHaveProperty("admin");
  });

  it.each([
    ["a non-object body", [], "invalid_client_metadata"],
    ["no redirect_uris", {}, "invalid_client_metadata"],
    ["an empty redirect_uris", { redirect_uris: [] }, "invalid_client_metadata"],
    ["redirect_uris as a string", { redirect_uris: "https://client.example/cb" }, "invalid_client_metadata"],
    ["a javascript: redirect URI", { redirect_uris: ["javascript:alert(1)"] }, "invalid_redirect_uri"],
    ["a remote http redirect URI", { redirect_uris: ["http://client.example/cb"] }, "invalid_redirect_uri"],
    ["an unknown auth method", { redirect_uris: ["https://c.example/cb"], token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata"],
    ["the implicit grant", { redirect_uris: ["https://c.example/cb"], grant_types: ["implicit"] }, "invalid_client_metadata"],
    ["refresh_token without authorization_code", { redirect_uris: ["https://c.example/cb"], grant_types: ["refresh_token"] }, "invalid_client_metadata"],
    ["response_type token", { redirect_uris: ["https://c.example/cb"], response_types: ["token"] }, "invalid_client_metadata"],
    ["a client_name that is not a string", { redirect_uris: ["https://c.example/cb"], client_name: 42 }, "invalid_client_metadata"],
  ])("refuses %s with %s", async (_what, body, code) => {
    expect((await reject(body)).code).toBe(code);
  });
});
