import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { discover, redeemCode, registered, signedIn, tokenRequest, tokenSet, type Client } from "../support/oauth-walk.js";
import { MODES, publishDocument, signInAndUse, useAndRefresh, useReplayWorld } from "../support/replay-world.js";

/**
 * ChatGPT connectors, replayed from ../shared/reference/clients.md: a Client ID Metadata Document that
 * prefers `private_key_jwt` (RS256, keys at a `jwks_uri`) and also lists `none`
 * (cloudflare/workers-oauth-provider#254, Altinity/altinity-mcp#118, django-oauth/django-oauth-toolkit#1845);
 * a callback per connector, `https://chatgpt.com/connector/oauth/<callback_id>`, beside the legacy
 * `https://chatgpt.com/connector_platform_oauth_redirect`. The browser ends at chatgpt.com, whose
 * Location this test reads and does not follow.
 */

const world = useReplayWorld();
let privateKey: CryptoKey;
let kid: string;
beforeAll(async () => {
  const pair = await generateKeyPair("RS256");
  privateKey = pair.privateKey;
  kid = "cimd-20260428030119";
  world().documents.serve("/oauth/jwks.json", { body: { keys: [{ ...(await exportJWK(pair.publicKey)), kid, alg: "RS256", use: "sig" }] } });
});

const LEGACY_CALLBACK = "https://chatgpt.com/connector_platform_oauth_redirect";
const connectorCallback = () => `https://chatgpt.com/connector/oauth/${randomBytes(9).toString("base64url")}`;

/** https://chatgpt.com/oauth/<id>/client.json, as quoted in Altinity/altinity-mcp#118 and django-oauth-toolkit#1845. */
const chatgptDocument = (callback: string) => ({
  client_uri: "https://chatgpt.com/",
  redirect_uris: [callback],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  client_name: "ChatGPT",
  logo_uri: "https://persistent.oaistatic.com/sonic/misc/openai-logo.png",
  token_endpoint_auth_method: "private_key_jwt",
  token_endpoint_auth_methods_supported: ["none", "private_key_jwt"],
  token_endpoint_auth_signing_alg: "RS256",
  jwks_uri: `${world().documents.origin}/oauth/jwks.json`,
});

/** RFC 7523 §3: iss = sub = client_id, aud = the token endpoint, a fresh jti, five minutes to live. */
const assertionFor = (clientId: string) => (tokenEndpoint: string) =>
  new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenEndpoint)
    .setIssuedAt()
    .setExpirationTime("5m")
    .setJti(randomBytes(16).toString("hex"))
    .sign(privateKey);

describe.each(MODES)("ChatGPT connectors, $title", ({ mode }) => {
  const target = () => world().targets[mode];

  it("its Client ID Metadata Document with private_key_jwt and a jwks_uri, a per-connector callback: signs in, and proves itself with a signed assertion at every token request", async () => {
    const found = await discover(target().mcpUrl);
    expect(found.server.client_id_metadata_document_supported).toBe(true);
    expect(found.server.token_endpoint_auth_methods_supported).toContain("private_key_jwt");
    const callback = connectorCallback();
    const clientId = publishDocument(world().documents, `/oauth/${randomBytes(6).toString("base64url")}/client.json`, chatgptDocument(callback));
    const client: Client = { clientId, auth: { method: "private_key_jwt", assertion: assertionFor(clientId) } };
    const resource = found.resource.resource;
    const { request, answer } = await signedIn(found, client, { redirectUri: callback, resource, scope: found.challengeScope });

    // without its assertion the client is refused, and the code is not spent
    const unsigned = await tokenRequest(
      found.server,
      { clientId, auth: { method: "none" } },
      { grant_type: "authorization_code", code: answer.code, code_verifier: request.verifier, redirect_uri: callback, resource },
    );
    expect([unsigned.status, unsigned.body.error]).toEqual([400, "invalid_client"]);

    const tokens = tokenSet(await redeemCode(found.server, client, request, answer.code, resource));
    expect(world().documents.hits("/oauth/jwks.json")).toBeGreaterThan(0); // the keys came from its jwks_uri
    await useAndRefresh(target().mcpUrl, found, client, tokens, { resource });
  });

  it("registered by DCR with a per-connector callback and the legacy one: signs in through https://chatgpt.com/connector_platform_oauth_redirect", async () => {
    const found = await discover(target().mcpUrl);
    const client = await registered(found.server, {
      client_name: "ChatGPT",
      redirect_uris: [connectorCallback(), LEGACY_CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
    await signInAndUse(target().mcpUrl, found, client, { redirectUri: LEGACY_CALLBACK, resource: found.resource.resource });
  });
});
