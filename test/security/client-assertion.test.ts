import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { exportJWK } from "jose";
import { resolveMetadataClient } from "../../src/as/cimd.js";
import { authenticateClient } from "../../src/as/client-auth.js";
import { readClientCredentials } from "../../src/as/clients.js";
import { ManualClock } from "../../src/clock.js";
import { OAuthError } from "../../src/errors.js";
import { MemoryStore } from "../../src/store/memory.js";
import { TestBrowser } from "../support/browser.js";
import { authorizeUrl, clientAuthorizeUrl, register, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { LOGIN } from "../support/config.js";
import {
  assertion,
  assertionForm,
  attacker,
  authenticates,
  callback,
  chatgpt,
  chatgptEc,
  docs,
  gw,
  introduce,
  publishChatGpt,
  unsecured,
  useAssertionWorld,
  world,
} from "../support/assertion-world.js";

/**
 * private_key_jwt (RFC 7523 §2.2, §3) for clients whose Client ID Metadata Document publishes their
 * keys, as ChatGPT's does. Documents and key sets come from a real local HTTPS server; assertions are
 * signed with real keys.
 */
useAssertionWorld();

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
});
