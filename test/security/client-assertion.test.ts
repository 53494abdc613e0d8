import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveMetadataClient, STALE_IF_ERROR_SECONDS } from "../../src/as/cimd.js";
import { authenticateClient } from "../../src/as/client-auth.js";
import { CLIENT_ASSERTION_TYPE } from "../../src/as/client-assertion.js";
import { JWKS_REFETCH_COOLDOWN_SECONDS } from "../../src/as/client-keys.js";
import { markClientUsed, readClientCredentials } from "../../src/as/clients.js";
import { ManualClock, nowSeconds, type Clock } from "../../src/clock.js";
import { OAuthError } from "../../src/errors.js";
import type { GuardOptions } from "../../src/fetch-guard.js";
import { MemoryStore } from "../../src/store/memory.js";
import { startMetadataWorld, type MetadataWorld } from "../support/metadata-world.js";
import { TestBrowser } from "../support/browser.js";
import { metadataDocument, type DocumentServer } from "../support/https.js";
import { authorizeUrl, clientAuthorizeUrl, register, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { LOGIN } from "../support/config.js";

/**
 * private_key_jwt (RFC 7523 §2.2, §3) for clients whose Client ID Metadata Document publishes their
 * keys, as ChatGPT's does. Documents and key sets come from a real local HTTPS server; assertions are
 * signed with real keys.
 */
let world: MetadataWorld;
let docs: DocumentServer;
let gw: string;

interface KeyPair {
  privateKey: CryptoKey;
  jwk: JWK;
}
let chatgpt: KeyPair;
let chatgptEc: KeyPair;
let attacker: KeyPair;

async function keyPair(alg: "RS256" | "ES256", kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

beforeAll(async () => {
  world = await startMetadataWorld();
  ({ docs } = world);
  [chatgpt, chatgptEc, attacker] = await Promise.all([keyPair("RS256", "chatgpt-1"), keyPair("ES256", "chatgpt-ec"), keyPair("RS256", "chatgpt-1")]);
  gw = (await world.startGateway()).url;
});

afterAll(() => world?.close());

/** ChatGPT's per-connector callback. */
const callback = (id: string) => `https://chatgpt.com/connector/oauth/${id}`;

/**
 * Publish a document shaped like ChatGPT's (as quoted in cloudflare/workers-oauth-provider#293 and
 * Altinity/altinity-mcp#118) and its key set; returns the client_id URL.
 */
function publishChatGpt(
  id: string,
  extra: Record<string, unknown> = {},
  keys: JWK[] = [chatgpt.jwk, chatgptEc.jwk],
  jwksHeaders: Record<string, string> = {},
  documentHeaders: Record<string, string> = {},
): string {
  const url = `${docs.origin}/oauth/${id}/client.json`;
  docs.serve(`/oauth/${id}/jwks.json`, { body: { keys }, headers: jwksHeaders });
  docs.serve(`/oauth/${id}/client.json`, {
    headers: documentHeaders,
    body: metadataDocument(url, {
      client_name: "ChatGPT",
      client_uri: "https://chatgpt.com/",
      redirect_uris: [callback(id)],
      token_endpoint_auth_method: "private_key_jwt",
      token_endpoint_auth_methods_supported: ["none", "private_key_jwt"],
      token_endpoint_auth_signing_alg: "RS256",
      jwks_uri: `${docs.origin}/oauth/${id}/jwks.json`,
      ...extra,
    }),
  });
  return url;
}

interface AssertionOptions {
  key?: CryptoKey | Uint8Array;
  alg?: string;
  kid?: string;
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number | null;
  jti?: string | null;
  clock?: Clock;
}

/** A client assertion as RFC 7523 §3 describes it, signed with ChatGPT's key unless told otherwise. */
async function assertion(clientId: string, o: AssertionOptions = {}): Promise<string> {
  const now = nowSeconds(o.clock ?? { now: () => Date.now() });
  const claims = { iss: o.iss ?? clientId, sub: o.sub ?? clientId, aud: o.aud ?? `${gw}/token`, iat: now };
  return new SignJWT({ ...claims, ...(o.exp === null ? {} : { exp: o.exp ?? now + 300 }), ...(o.jti === null ? {} : { jti: o.jti ?? randomUUID() }) })
    .setProtectedHeader({ alg: o.alg ?? "RS256", kid: o.kid ?? "chatgpt-1", typ: "JWT" })
    .sign(o.key ?? chatgpt.privateKey);
}

/** An unsecured JWT (RFC 7519 §6, `alg: none`) with otherwise valid claims. */
function unsecured(clientId: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: "none" })}.${part({ iss: clientId, sub: clientId, aud: `${gw}/token`, exp: now + 60, jti: randomUUID() })}.`;
}

const assertionForm = (clientAssertion: string) => ({ client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: clientAssertion });

/** /authorize once, so the gateway knows the document's client (`client:<url>`). */
async function introduce(clientId: string, id: string) {
  const page = await new TestBrowser().request(clientAuthorizeUrl(gw, clientId, { redirect_uri: callback(id) }));
  expect([page.status, page.location?.startsWith(`${gw}/login?request=`)]).toEqual([302, true]);
}

/**
 * Client authentication as /token, /revoke and /introspect do it, in this process, with the clock in
 * the test's hand: `introduce` is /authorize's fetch of the document, `authenticate` answers
 * "authenticated" or the error's code.
 */
function authenticator(clock: ManualClock, metadataFetch: GuardOptions) {
  const store = new MemoryStore(clock);
  const deps = { store, clock, issuer: gw, mounts: { all: [] }, metadataFetch, registration: { redirectUriAllow: [] } };
  return {
    // a client in use, as ChatGPT's is: a code redeemed, so it is kept past --unused-client-ttl (MC26)
    introduce: async (url: string) => {
      const client = await resolveMetadataClient(url, { store, clock, policy: deps.registration, fetch: metadataFetch });
      await markClientUsed(store, client);
      return client;
    },
    authenticate: async (clientId: string, o: AssertionOptions | string = {}) => {
      const signed = typeof o === "string" ? o : await assertion(clientId, { clock, ...o });
      return authenticateClient(deps, readClientCredentials(undefined, { client_id: clientId, ...assertionForm(signed) })).then(
        () => "authenticated",
        (error: unknown) => (error instanceof OAuthError ? error.code : `unexpected ${String(error)}`),
      );
    },
    /** A public client's credentials: its client_id alone. */
    authenticatePublic: (clientId: string) =>
      authenticateClient(deps, readClientCredentials(undefined, { client_id: clientId })).then(
        () => "authenticated",
        (error: OAuthError) => error.description,
      ),
    refusal: (clientId: string) =>
      assertion(clientId, { clock }).then((signed) =>
        authenticateClient(deps, readClientCredentials(undefined, assertionForm(signed))).then(
          () => "authenticated",
          (error: OAuthError) => error.description,
        ),
      ),
  };
}

/**
 * Client authentication alone: a code exchange with a code that does not exist. Authentication comes
 * first, so `invalid_grant` means the client was authenticated and `invalid_client` that it was not.
 */
async function authenticates(form: Record<string, string>, headers: Record<string, string> = {}) {
  const answer = await tokenRequest(gw, { grant_type: "authorization_code", code: "no-such-code", code_verifier: "v".repeat(43), ...form }, headers);
  expect(answer.status).toBeLessThan(500);
  return answer.body.error === "invalid_grant" ? "authenticated" : `${answer.status} ${answer.body.error}`;
}

describe("client-assertion", () => {
  it("signs in and refreshes as ChatGPT does: a metadata document with private_key_jwt and a jwks_uri", async () => {
    const id = "IbUR3zxyNQ16";
    const clientId = publishChatGpt(id, {}, [chatgpt.jwk], { "cache-control": "max-age=300" });
    const { verifier, challenge } = pkce();
    const params = {
      response_type: "code",
      client_id: clientId,
      redirect_uri: callback(id),
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "st",
    };
    const redirect = await new TestBrowser().authorize(authorizeUrl(gw, { ...params, resource: `${gw}/mcp` }), { redirectUri: callback(id), ...LOGIN });
    const code = redirect.searchParams.get("code")!;
    const form = { grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: callback(id), client_id: clientId };
    const tokens = await tokenRequest(gw, { ...form, ...assertionForm(await assertion(clientId)) });
    expect([tokens.status, tokens.body.token_type]).toEqual([200, "Bearer"]);

    // refresh: the assertion alone names the client (RFC 7521 §4.2: client_id is optional beside it)
    const refreshed = await tokenRequest(gw, {
      grant_type: "refresh_token",
      refresh_token: tokens.body.refresh_token!,
      ...assertionForm(await assertion(clientId)),
    });
    expect(refreshed.status).toBe(200);
    // the key set was fetched once and then served from its Cache-Control
    expect(docs.hits(`/oauth/${id}/jwks.json`)).toBe(1);
    // and nothing but an assertion authenticates this client
    const bare = await tokenRequest(gw, { grant_type: "refresh_token", refresh_token: refreshed.body.refresh_token!, client_id: clientId });
    expect([bare.status, bare.body.error]).toEqual([400, "invalid_client"]);

    // /revoke takes the same authentication, and the grant is gone
    const revoked = await fetch(`${gw}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: refreshed.body.refresh_token!, ...assertionForm(await assertion(clientId)) }).toString(),
    });
    expect(revoked.status).toBe(200);
    const dead = await tokenRequest(gw, {
      grant_type: "refresh_token",
      refresh_token: refreshed.body.refresh_token!,
      ...assertionForm(await assertion(clientId)),
    });
    expect(dead.body.error).toBe("invalid_grant");
  });

  it("MC20 a client_assertion not signed by the client's published key, or not for this gateway, is refused", async () => {
    const id = "mc20";
    const clientId = publishChatGpt(id);
    await introduce(clientId, id);
    const now = Math.floor(Date.now() / 1000);
    const hs256 = new TextEncoder().encode("a shared secret the client never had".padEnd(32, "!"));
    const cases: [string, string | Promise<string>][] = [
      ["the client's key", assertion(clientId)],
      ["aud = the issuer", assertion(clientId, { aud: gw })],
      ["aud as an array of one", assertion(clientId, { aud: [`${gw}/token`] })],
      ["aud as an array of two, one of them this gateway's", assertion(clientId, { aud: ["https://other.example", `${gw}/token`] })],
      ["another key under the client's kid", assertion(clientId, { key: attacker.privateKey })],
      ["a kid the client does not publish", assertion(clientId, { key: attacker.privateKey, kid: "attacker" })],
      ["ES256, a key the client publishes but not its declared algorithm", assertion(clientId, { key: chatgptEc.privateKey, alg: "ES256", kid: "chatgpt-ec" })],
      ["another audience", assertion(clientId, { aud: "https://other-gateway.example/token" })],
      ["another issuer", assertion(clientId, { iss: `${docs.origin}/oauth/other/client.json` })],
      ["another subject", assertion(clientId, { sub: `${docs.origin}/oauth/other/client.json` })],
      ["expired", assertion(clientId, { exp: now - 120 })],
      ["an hour to live", assertion(clientId, { exp: now + 3600 })],
      ["no jti", assertion(clientId, { jti: null })],
      ["HS256", assertion(clientId, { key: hs256, alg: "HS256" })],
      ["alg none", unsecured(clientId)],
      ["not a JWT", "not-a-jwt"],
    ];
    const results: string[] = [];
    for (const [name, signed] of cases) results.push(`${name}: ${await authenticates({ client_id: clientId, ...assertionForm(await signed) })}`);
    expect(results).toEqual([
      "the client's key: authenticated",
      "aud = the issuer: authenticated",
      "aud as an array of one: authenticated",
      ...cases.slice(3).map(([name]) => `${name}: 400 invalid_client`),
    ]);

    // a refused aud is told what would have done
    const elsewhere = await tokenRequest(gw, { grant_type: "authorization_code", code: "x", ...assertionForm(await assertion(clientId, { aud: gw + "/" })) });
    expect(elsewhere.body.error_description).toBe(`The client_assertion's aud must be a single value, one of ${gw}/token, ${gw}.`);

    // the method registered is the only one: no assertion, a secret, another assertion type
    expect(await authenticates({ client_id: clientId })).toBe("400 invalid_client");
    expect(await authenticates({ client_id: clientId, client_secret: "guess" })).toBe("400 invalid_client");
    expect(await authenticates({}, { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:guess`).toString("base64")}` })).toBe(
      "401 invalid_client",
    );
    const saml = { client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", client_assertion: await assertion(clientId) };
    expect(await authenticates({ client_id: clientId, ...saml })).toBe("400 invalid_client");
    // and vice versa: public and secret clients cannot switch to an assertion
    const publicClient = publishChatGpt("mc20-public", { token_endpoint_auth_method: "none", jwks_uri: undefined });
    await introduce(publicClient, "mc20-public");
    expect(await authenticates({ client_id: publicClient, ...assertionForm(await assertion(publicClient)) })).toBe("400 invalid_client");
    const confidential = await register(gw, { token_endpoint_auth_method: "client_secret_post" });
    expect(await authenticates({ client_id: confidential.client_id, ...assertionForm(await assertion(confidential.client_id)) })).toBe("400 invalid_client");

    // a key set that cannot be had is invalid_client, saying why
    const keyless = publishChatGpt("mc20-gone");
    docs.serve("/oauth/mc20-gone/jwks.json", { status: 404, body: { error: "gone" } });
    await introduce(keyless, "mc20-gone");
    const gone = await tokenRequest(gw, { grant_type: "authorization_code", code: "x", ...assertionForm(await assertion(keyless)) });
    expect([gone.status, gone.body.error]).toEqual([400, "invalid_client"]);
    expect(gone.body.error_description).toContain(`jwks.json could not be fetched`);

    // documents whose keys are ambiguous, missing or private are refused at /authorize
    const refusedDocuments: [string, Record<string, unknown>][] = [
      ["both", { jwks: { keys: [chatgpt.jwk] } }],
      ["none", { jwks_uri: undefined }],
      ["http", { jwks_uri: `http://127.0.0.1:${docs.port}/oauth/http/jwks.json` }],
      ["private", { jwks_uri: undefined, jwks: { keys: [await exportJWK(chatgpt.privateKey)] } }],
      ["symmetric", { jwks_uri: undefined, jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } }],
      ["hs256", { token_endpoint_auth_signing_alg: "HS256" }],
    ];
    for (const [name, extra] of refusedDocuments) {
      const page = await new TestBrowser().request(clientAuthorizeUrl(gw, publishChatGpt(`mc20-${name}`, extra), { redirect_uri: callback(`mc20-${name}`) }));
      expect([name, page.status]).toEqual([name, 400]);
    }
    // inline keys work as well as a jwks_uri; without a declared algorithm, any asymmetric one of the client's keys
    const inline = publishChatGpt("mc20-inline", {
      jwks_uri: undefined,
      token_endpoint_auth_signing_alg: undefined,
      jwks: { keys: [chatgpt.jwk, chatgptEc.jwk] },
    });
    await introduce(inline, "mc20-inline");
    expect(await authenticates({ ...assertionForm(await assertion(inline)) })).toBe("authenticated");
    expect(await authenticates({ ...assertionForm(await assertion(inline, { key: chatgptEc.privateKey, alg: "ES256", kid: "chatgpt-ec" })) })).toBe(
      "authenticated",
    );
    expect(await authenticates({ ...assertionForm(await assertion(inline, { key: attacker.privateKey })) })).toBe("400 invalid_client");
    expect(await authenticates({ client_id: inline, ...assertionForm(await assertion(inline, { key: hs256, alg: "HS256" })) })).toBe("400 invalid_client");
    expect(await authenticates({ client_id: inline, ...assertionForm(unsecured(inline)) })).toBe("400 invalid_client");

    // the key set comes through the SSRF guard: without --allow-private-fetch a loopback jwks_uri is never fetched
    const clock = new ManualClock();
    const store = new MemoryStore(clock);
    const deps = { store, clock, issuer: gw, mounts: { all: [] }, metadataFetch: { allowPrivate: false }, registration: { redirectUriAllow: [] } };
    const client = await resolveMetadataClient(publishChatGpt("mc20-ssrf"), {
      ...deps,
      policy: { redirectUriAllow: [] },
      fetch: { allowPrivate: true, ca: world.certificate.cert },
    });
    const before = docs.hits("/oauth/mc20-ssrf/jwks.json");
    const body = assertionForm(await assertion(client.client_id, { clock }));
    const refused = await authenticateClient(deps, readClientCredentials(undefined, body)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OAuthError);
    expect((refused as OAuthError).description).toMatch(/jwks\.json could not be fetched\.$/);
    expect(docs.hits("/oauth/mc20-ssrf/jwks.json")).toBe(before);
  });

  it("MC21 a replayed client_assertion is refused", async () => {
    const id = "mc21";
    const clientId = publishChatGpt(id);
    await introduce(clientId, id);
    const once = await assertion(clientId);
    expect(await authenticates({ client_id: clientId, ...assertionForm(once) })).toBe("authenticated");
    expect(await authenticates({ client_id: clientId, ...assertionForm(once) })).toBe("400 invalid_client");
    // whichever endpoint saw it first: /revoke does not take it either
    const revoke = await fetch(`${gw}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: "anything", ...assertionForm(once) }).toString(),
    });
    expect([revoke.status, ((await revoke.json()) as { error: string }).error]).toEqual([400, "invalid_client"]);
    // a new jti is a new assertion
    expect(await authenticates({ client_id: clientId, ...assertionForm(await assertion(clientId)) })).toBe("authenticated");
    // a jti is the client's own: another client's jti of the same value is not a replay
    const other = publishChatGpt("mc21-other");
    await introduce(other, "mc21-other");
    const jti = randomUUID();
    expect(await authenticates({ ...assertionForm(await assertion(clientId, { jti })) })).toBe("authenticated");
    expect(await authenticates({ ...assertionForm(await assertion(other, { jti })) })).toBe("authenticated");
  });

  it("MC22 a kid the cached key set lacks refetches it at most once per cooldown: rotation works, hammering does not", async () => {
    const clock = new ManualClock();
    const { introduce, authenticate: as } = authenticator(clock, { allowPrivate: true, ca: world.certificate.cert });
    const path = "/oauth/mc22/jwks.json";
    const client = await introduce(publishChatGpt("mc22", {}, [chatgpt.jwk], { "cache-control": "max-age=3600" }));
    const authenticate = (o: AssertionOptions) => as(client.client_id, o);
    expect(await authenticate({})).toBe("authenticated");
    expect(docs.hits(path)).toBe(1);

    // the client rotates to a new key; the cached set (fetched just now) does not know it yet
    const rotated = await keyPair("RS256", "chatgpt-2");
    docs.serve(path, { body: { keys: [chatgpt.jwk, rotated.jwk] }, headers: { "cache-control": "max-age=3600" } });
    expect(await authenticate({ key: rotated.privateKey, kid: "chatgpt-2" })).toBe("invalid_client");
    expect(docs.hits(path)).toBe(1);
    clock.advance(JWKS_REFETCH_COOLDOWN_SECONDS * 1000);
    expect(await authenticate({ key: rotated.privateKey, kid: "chatgpt-2" })).toBe("authenticated");
    expect(docs.hits(path)).toBe(2);

    // unknown kids, however many, cost one fetch per cooldown
    for (let i = 0; i < 5; i++) expect(await authenticate({ key: attacker.privateKey, kid: `forged-${i}` })).toBe("invalid_client");
    expect(docs.hits(path)).toBe(2);
    clock.advance(JWKS_REFETCH_COOLDOWN_SECONDS * 1000);
    for (let i = 0; i < 5; i++) expect(await authenticate({ key: attacker.privateKey, kid: `forged-${i}` })).toBe("invalid_client");
    expect(docs.hits(path)).toBe(3);
    // a known kid never refetches
    clock.advance(JWKS_REFETCH_COOLDOWN_SECONDS * 1000);
    expect(await authenticate({ key: attacker.privateKey, kid: "chatgpt-2" })).toBe("invalid_client");
    expect(await authenticate({})).toBe("authenticated");
    expect(docs.hits(path)).toBe(3);
  });
  it("MC22 an assertion that fails any check but its signature fetches nothing; forged ones fetch a key set served without max-age once per cooldown", async () => {
    const clock = new ManualClock();
    const { introduce, authenticate } = authenticator(clock, { allowPrivate: true, ca: world.certificate.cert });
    const path = "/oauth/mc22-unsigned/jwks.json";
    const { client_id: clientId } = await introduce(publishChatGpt("mc22-unsigned", {}, [chatgpt.jwk])); // the key set has no Cache-Control
    const now = nowSeconds(clock);
    const hs256 = new TextEncoder().encode("a shared secret the client never had".padEnd(32, "!"));
    const garbage: [string, AssertionOptions | string][] = [
      ["HS256", { key: hs256, alg: "HS256" }],
      ["alg none", unsecured(clientId)],
      ["ES256 where the client declared RS256", { key: chatgptEc.privateKey, alg: "ES256", kid: "chatgpt-ec" }],
      ["another issuer", { iss: `${docs.origin}/oauth/other/client.json` }],
      ["another subject", { sub: `${docs.origin}/oauth/other/client.json` }],
      ["another audience", { aud: "https://other-gateway.example/token" }],
      ["two audiences", { aud: [`${gw}/token`, gw] }],
      ["no exp", { exp: null }],
      ["expired", { exp: now - 120 }],
      ["an hour to live", { exp: now + 3600 }],
      ["no jti", { jti: null }],
      ["not a JWT", "not-a-jwt"],
    ];
    for (const [name, o] of garbage) expect([name, await authenticate(clientId, o)]).toEqual([name, "invalid_client"]);
    expect(docs.hits(path)).toBe(0);

    // well-formed assertions signed by someone else: one fetch, and the set is kept for the cooldown although served without max-age
    const forge = async (round: number) => {
      for (let i = 0; i < 10; i++) expect(await authenticate(clientId, { key: attacker.privateKey, kid: `forged-${round}-${i}` })).toBe("invalid_client");
    };
    await forge(1);
    expect(docs.hits(path)).toBe(1);
    expect(await authenticate(clientId)).toBe("authenticated");
    expect(docs.hits(path)).toBe(1);
    clock.advance(JWKS_REFETCH_COOLDOWN_SECONDS * 1000);
    await forge(2);
    expect(docs.hits(path)).toBe(2);
  });

  it("MC24 a rotated key or a moved jwks_uri is honoured at /token once the document's cache lifetime is over, and the old key refused", async () => {
    const [k1, k2] = await Promise.all([keyPair("RS256", "k1"), keyPair("RS256", "k2")]);
    const signedWith = async (clientId: string, key: KeyPair) => assertionForm(await assertion(clientId, { key: key.privateKey, kid: key.jwk.kid! }));
    const briefly = { "cache-control": "max-age=1" };
    const outlive = () => new Promise((resolve) => setTimeout(resolve, 1100));

    // inline keys: k1, then k2
    const inline = publishChatGpt("mc24-inline", { jwks_uri: undefined, jwks: { keys: [k1.jwk] } }, [], {}, briefly);
    await introduce(inline, "mc24-inline");
    expect(await authenticates(await signedWith(inline, k1))).toBe("authenticated");
    publishChatGpt("mc24-inline", { jwks_uri: undefined, jwks: { keys: [k2.jwk] } }, [], {}, briefly);
    await outlive();
    expect(await authenticates(await signedWith(inline, k2))).toBe("authenticated");
    expect(await authenticates(await signedWith(inline, k1))).toBe("400 invalid_client");
    // /revoke authenticates the same way
    const revoke = await fetch(`${gw}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: "anything", ...(await signedWith(inline, k1)) }).toString(),
    });
    expect(revoke.status).toBe(400);

    // a jwks_uri moved to a set holding k2 only, the old set still cached for an hour
    const keySet = (name: string, key: KeyPair) => {
      docs.serve(`/oauth/mc24-uri/${name}.json`, { body: { keys: [key.jwk] }, headers: { "cache-control": "max-age=3600" } });
      return `${docs.origin}/oauth/mc24-uri/${name}.json`;
    };
    const moved = publishChatGpt("mc24-uri", { jwks_uri: keySet("old", k1) }, [], {}, briefly);
    await introduce(moved, "mc24-uri");
    expect(await authenticates(await signedWith(moved, k1))).toBe("authenticated");
    publishChatGpt("mc24-uri", { jwks_uri: keySet("new", k2) }, [], {}, briefly);
    await outlive();
    expect(await authenticates(await signedWith(moved, k2))).toBe("authenticated");
    expect(await authenticates(await signedWith(moved, k1))).toBe("400 invalid_client");
  });

  it("MC24 a document whose refetch fails is refused at /token once its last good copy is past the stale bound", async () => {
    const clock = new ManualClock();
    const { introduce, authenticate, refusal } = authenticator(clock, { allowPrivate: true, ca: world.certificate.cert });
    const hour = { "cache-control": "max-age=3600" };
    const { client_id: clientId } = await introduce(publishChatGpt("mc24-stale", {}, [chatgpt.jwk], hour, hour));
    expect(await authenticate(clientId)).toBe("authenticated");
    docs.serve("/oauth/mc24-stale/client.json", { status: 503, body: "busy" });
    clock.advance((STALE_IF_ERROR_SECONDS - 1) * 1000);
    expect(await authenticate(clientId)).toBe("authenticated"); // the last good copy, under 24 h old
    expect(docs.hits("/oauth/mc24-stale/client.json")).toBe(2);
    clock.advance(2000);
    expect(await refusal(clientId)).toBe(`The client metadata document at ${clientId} could not be fetched.`);
  });

  it("MC24 a public metadata-document client is the copy /authorize kept: /token fetches nothing, so a document host that refuses the gateway never ends its refreshes", async () => {
    const clock = new ManualClock();
    const { introduce, authenticatePublic } = authenticator(clock, { allowPrivate: true, ca: world.certificate.cert });
    const path = "/oauth/mc24-public/claude-code-client-metadata";
    const url = `${docs.origin}${path}`;
    docs.serve(path, {
      headers: { "cache-control": "max-age=3600" },
      body: metadataDocument(url, { client_name: "Claude Code", redirect_uris: ["http://localhost/callback"], token_endpoint_auth_method: "none" }),
    });
    await introduce(url);
    docs.serve(path, { status: 403, body: "Just a moment..." }); // claude.ai's documents have met datacenter fetches so
    clock.advance((STALE_IF_ERROR_SECONDS + 3600) * 1000);
    expect(await authenticatePublic(url)).toBe("authenticated");
    expect(docs.hits(path)).toBe(1);
  });
});
