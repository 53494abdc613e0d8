import { describe, expect, it } from "vitest";
import {
  CLIENT_TTL_SECONDS,
  clientMetadata,
  markClientUsed,
  readClientCredentials,
  redirectUriMatches,
  redirectUriProblem,
  type ClientRecord,
} from "../../src/as/clients.js";
import { registerClient as register, type RegistrationDeps } from "../../src/as/registration.js";
import { ManualClock, nowSeconds } from "../../src/clock.js";
import { sha256 } from "../../src/crypto.js";
import { OAuthError } from "../../src/errors.js";
import { MemoryStore } from "../../src/store/memory.js";
import { storeKey } from "../../src/store/store.js";

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
    "claude://claude.ai/oauth/callback",
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
    ["userinfo", "https://user@client.example/cb"],
    ["userinfo on an app scheme", "myapp://user:pw@callback"],
    ["blob:", "blob:https://client.example/uuid"],
    ["a scheme that is neither reverse-domain nor name://", "mailto:a@client.example"],
    ["intent:", "intent://scan/#Intent;scheme=zxing;end"],
    ["an app scheme neither reverse-domain nor a known MCP client's (MC30)", "myapp://callback"],
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

describe("clientMetadata with --redirect-uri-allow", () => {
  const policy = { redirectUriAllow: ["https://app.example", "https://b.example/oauth/", "loopback"] };
  const check = (uri: string) => () => clientMetadata({ redirect_uris: [uri] }, policy, "none");

  it.each(["https://app.example/cb", "https://app.example:8443/cb", "https://b.example/oauth/cb", "http://127.0.0.1:1234/cb", "http://[::1]/x"])(
    "accepts %s",
    (uri) => {
      expect(check(uri)().redirect_uris).toEqual([uri]);
    },
  );

  it.each(["https://app.example.evil.example/cb", "https://b.example/other", "https://other.example/cb", "cursor://x.y/cb", "https://localhost/cb"])(
    "refuses %s, naming the option",
    (uri) => {
      const error = oauthError(check(uri));
      expect(error.code).toBe("invalid_redirect_uri");
      expect(error.description).toContain("--redirect-uri-allow");
    },
  );
});

describe("markClientUsed", () => {
  it("keeps a client the long lifetime from its first redeemed code on, once", async () => {
    const clock = new ManualClock();
    const store = new MemoryStore(clock);
    const deps = { store, clock, issuer: "https://gw.example", registration: { redirectUriAllow: [], maxClients: 10, unusedClientTtl: 3600 } };
    const { client_id } = await register({ redirect_uris: ["https://client.example/cb"], token_endpoint_auth_method: "none" }, deps);
    const client = (await store.get<ClientRecord>(storeKey.client(client_id as string)))!;
    await markClientUsed(store, client);
    const used = (await store.get<ClientRecord>(storeKey.client(client_id as string)))!;
    expect(used.used).toBe(true);
    clock.advance((CLIENT_TTL_SECONDS - 60) * 1000);
    expect(await store.get(storeKey.client(client_id as string))).toBeDefined();
    // already marked: no store access at all
    await markClientUsed({ get: () => Promise.reject(new Error("read")), put: () => Promise.reject(new Error("write")) } as never, used);
  });
});

describe("registerClient (RFC 7591)", () => {
  const deps = (clock: ManualClock, store: MemoryStore): RegistrationDeps => ({
    store,
    clock,
    issuer: "https://gw.example",
    registration: { redirectUriAllow: [], maxClients: 100, unusedClientTtl: 86400 },
  });
  const registerClient = (body: unknown, store: MemoryStore, clock: ManualClock) => register(body, deps(clock, store));
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
      registration_access_token: expect.any(String),
      registration_client_uri: `https://gw.example/register/${response.client_id as string}`,
    });
    expect((response.client_secret as string).length).toBeGreaterThanOrEqual(32);
  });

  it("stores the secret and the registration access token only as hashes", async () => {
    const { store, clock } = setup();
    const response = await registerClient({ redirect_uris: ["https://client.example/cb"], token_endpoint_auth_method: "client_secret_post" }, store, clock);
    const stored = await store.get<ClientRecord>(storeKey.client(response.client_id as string));
    expect(stored?.client_secret_hash).toBe(sha256(response.client_secret as string));
    expect(stored?.registration_access_token_hash).toBe(sha256(response.registration_access_token as string));
    expect(JSON.stringify(stored)).not.toContain(response.client_secret as string);
    expect(JSON.stringify(stored)).not.toContain(response.registration_access_token as string);
    expect(response).not.toHaveProperty("client_secret_hash");
    expect(response).not.toHaveProperty("registration_access_token_hash");
  });

  it("keeps a client that is never used only for --unused-client-ttl", async () => {
    const { store, clock } = setup();
    const response = await registerClient({ redirect_uris: ["https://client.example/cb"] }, store, clock);
    clock.advance(86399_000);
    expect(await store.get(storeKey.client(response.client_id as string))).toBeDefined();
    clock.advance(2_000);
    expect(await store.get(storeKey.client(response.client_id as string))).toBeUndefined();
  });

  it("refuses registrations over --max-clients per window with 429 and the time until the next window", async () => {
    const clock = new ManualClock();
    const store = new MemoryStore(clock);
    const capped = { ...deps(clock, store), registration: { redirectUriAllow: [], maxClients: 2, unusedClientTtl: 600 } };
    const body = { redirect_uris: ["https://client.example/cb"] };
    await register(body, capped);
    await register(body, capped);
    const error = (await register(body, capped).catch((e: unknown) => e)) as OAuthError;
    expect([error.code, error.status]).toEqual(["temporarily_unavailable", 429]);
    const retryAfter = Number(error.headers["Retry-After"]);
    expect(retryAfter).toBe(600 - (Math.floor(clock.now() / 1000) % 600));
    clock.advance(retryAfter * 1000);
    await expect(register(body, capped)).resolves.toHaveProperty("client_id");
  });

  it("gives a public client no secret", async () => {
    const { store, clock } = setup();
    const response = await registerClient({ redirect_uris: ["http://127.0.0.1:6274/cb"], token_endpoint_auth_method: "none" }, store, clock);
    expect(response).not.toHaveProperty("client_secret");
    expect(response).not.toHaveProperty("client_secret_expires_at");
    const stored = await store.get<ClientRecord>(storeKey.client(response.client_id as string));
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
