import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, expect } from "vitest";
import { resolveMetadataClient } from "../../src/as/cimd.js";
import { authenticateClient } from "../../src/as/client-auth.js";
import { CLIENT_ASSERTION_TYPE } from "../../src/as/client-assertion.js";
import { markClientUsed, readClientCredentials } from "../../src/as/clients.js";
import { ManualClock, nowSeconds, type Clock } from "../../src/clock.js";
import { OAuthError } from "../../src/errors.js";
import type { GuardOptions } from "../../src/fetch-guard.js";
import { MemoryStore } from "../../src/store/memory.js";
import { startMetadataWorld, type MetadataWorld } from "./metadata-world.js";
import { TestBrowser } from "./browser.js";
import { metadataDocument, type DocumentServer } from "./https.js";
import { clientAuthorizeUrl, tokenRequest } from "./oauth-steps.js";

/**
 * private_key_jwt (RFC 7523 §2.2, §3) for clients whose Client ID Metadata Document publishes their
 * keys, as ChatGPT's does. Documents and key sets come from a real local HTTPS server; assertions are
 * signed with real keys.
 */
export let world: MetadataWorld;
export let docs: DocumentServer;
export let gw: string;

export interface KeyPair {
  privateKey: CryptoKey;
  jwk: JWK;
}
export let chatgpt: KeyPair;
export let chatgptEc: KeyPair;
export let attacker: KeyPair;

export async function keyPair(alg: "RS256" | "ES256", kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

/** The document server and a gateway process that fetches from it, for the tests of the calling file. */
export function useAssertionWorld(): void {
  beforeAll(async () => {
    world = await startMetadataWorld();
    ({ docs } = world);
    [chatgpt, chatgptEc, attacker] = await Promise.all([keyPair("RS256", "chatgpt-1"), keyPair("ES256", "chatgpt-ec"), keyPair("RS256", "chatgpt-1")]);
    gw = (await world.startGateway()).url;
  });
  afterAll(() => world?.close());
}

/** ChatGPT's per-connector callback. */
export const callback = (id: string) => `https://chatgpt.com/connector/oauth/${id}`;

/**
 * Publish a document shaped like ChatGPT's (as quoted in cloudflare/workers-oauth-provider#293 and
 * Altinity/altinity-mcp#118) and its key set; returns the client_id URL.
 */
export function publishChatGpt(
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

export interface AssertionOptions {
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
export async function assertion(clientId: string, o: AssertionOptions = {}): Promise<string> {
  const now = nowSeconds(o.clock ?? { now: () => Date.now() });
  const claims = { iss: o.iss ?? clientId, sub: o.sub ?? clientId, aud: o.aud ?? `${gw}/token`, iat: now };
  return new SignJWT({ ...claims, ...(o.exp === null ? {} : { exp: o.exp ?? now + 300 }), ...(o.jti === null ? {} : { jti: o.jti ?? randomUUID() }) })
    .setProtectedHeader({ alg: o.alg ?? "RS256", kid: o.kid ?? "chatgpt-1", typ: "JWT" })
    .sign(o.key ?? chatgpt.privateKey);
}

/** An unsecured JWT (RFC 7519 §6, `alg: none`) with otherwise valid claims. */
export function unsecured(clientId: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: "none" })}.${part({ iss: clientId, sub: clientId, aud: `${gw}/token`, exp: now + 60, jti: randomUUID() })}.`;
}

export const assertionForm = (clientAssertion: string) => ({ client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: clientAssertion });

/** /authorize once, so the gateway knows the document's client (`client:<url>`). */
export async function introduce(clientId: string, id: string) {
  const page = await new TestBrowser().request(clientAuthorizeUrl(gw, clientId, { redirect_uri: callback(id) }));
  expect([page.status, page.location?.startsWith(`${gw}/login?request=`)]).toEqual([302, true]);
}

/**
 * Client authentication as /token, /revoke and /introspect do it, in this process, with the clock in
 * the test's hand: `introduce` is /authorize's fetch of the document, `authenticate` answers
 * "authenticated" or the error's code.
 */
export function authenticator(clock: ManualClock, metadataFetch: GuardOptions) {
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
export async function authenticates(form: Record<string, string>, headers: Record<string, string> = {}) {
  const answer = await tokenRequest(gw, { grant_type: "authorization_code", code: "no-such-code", code_verifier: "v".repeat(43), ...form }, headers);
  expect(answer.status).toBeLessThan(500);
  return answer.body.error === "invalid_grant" ? "authenticated" : `${answer.status} ${answer.body.error}`;
}
