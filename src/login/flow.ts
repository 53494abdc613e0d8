import * as oauth from "oauth4webapi";
import { authorizationResponse, type AuthorizationRequest } from "../as/authorize.js";
import { getClient, type ClientRecord } from "../as/clients.js";
import type { GatewayUrls } from "../as/metadata.js";
import { CODE_TTL, type CodeRecord } from "../as/token.js";
import type { Clock } from "../clock.js";
import { randomToken, safeEqual, seal, sha256, type Keys } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { keys, type Store } from "../store/store.js";
import type { Upstream } from "../upstream/client.js";
import { classify } from "../upstream/errors.js";
import type { LoginConfig } from "./users.js";

/** The upstream leg of one authorization (stored under `upstate:<state>`), bound to the browser session. */
interface UpstreamTransaction {
  request: AuthorizationRequest;
  codeVerifier: string;
  sessionHash: string;
  sub: string;
}

export const UPSTREAM_STATE_TTL = 600;

export interface LoginDeps {
  store: Store;
  clock: Clock;
  keys: Keys;
  urls: GatewayUrls;
  upstream: Upstream;
  login: LoginConfig;
}

/** What Screen 1 shows: who is asking, where the answer goes, and for what. */
export interface ConsentView {
  requestId: string;
  clientName: string | undefined;
  clientId: string;
  redirectHost: string;
  scopes: string[];
}

export async function pendingRequest(store: Store, requestId: unknown): Promise<{ request: AuthorizationRequest; client: ClientRecord }> {
  const request =
    typeof requestId === "string" && requestId.length < 100 ? await store.get<AuthorizationRequest>(keys.authorizationRequest(requestId)) : undefined;
  if (!request) throw new OAuthError("invalid_request", "This sign-in has expired or was already used. Start again from your MCP client.");
  const client = await getClient(store, request.clientId);
  if (!client) throw new OAuthError("invalid_client", "The client that started this sign-in is no longer registered.");
  return { request, client };
}

export function consentView(request: AuthorizationRequest, client: ClientRecord): ConsentView {
  const redirect = new URL(request.redirectUri);
  return {
    requestId: request.id,
    clientName: client.client_name,
    clientId: client.client_id,
    redirectHost: redirect.host || redirect.protocol,
    scopes: request.scope ? request.scope.split(" ") : [],
  };
}

/** Deny: the client hears access_denied (RFC 6749 §4.1.2.1). */
export async function deny(deps: LoginDeps, request: AuthorizationRequest): Promise<string> {
  await deps.store.delete(keys.authorizationRequest(request.id));
  return authorizationResponse(request.redirectUri, {
    error: "access_denied",
    error_description: "The user denied the request.",
    state: request.state,
    iss: deps.urls.issuer,
  });
}

/** Approve: start the upstream leg with our own PKCE and a single-use state bound to this browser. */
export async function approve(deps: LoginDeps, request: AuthorizationRequest, sessionId: string, sub: string): Promise<string> {
  const taken = await deps.store.take<AuthorizationRequest>(keys.authorizationRequest(request.id));
  if (!taken) throw new OAuthError("invalid_request", "This sign-in was already used. Start again from your MCP client.");
  const state = randomToken(32);
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const transaction: UpstreamTransaction = { request: taken, codeVerifier, sessionHash: sha256(sessionId), sub };
  const url = await deps.upstream.authorizationUrl({ scope: taken.scope, state, codeVerifier }).catch((error: unknown) => {
    throw new OAuthError("temporarily_unavailable", `The upstream cannot be reached: ${(error as Error).message}`, 502);
  });
  await deps.store.put(keys.upstreamState(state), transaction, UPSTREAM_STATE_TTL);
  return url;
}

/**
 * GET /upstream/callback: check the state belongs to this browser, redeem the upstream code, and
 * answer the client with a gateway code (RFC 6749 §4.1.2, RFC 9207 `iss`).
 */
export async function upstreamCallback(deps: LoginDeps, callback: URL, sessionId: string): Promise<string> {
  const state = callback.searchParams.get("state");
  if (!state) throw new OAuthError("invalid_request", "The upstream's answer carries no state.");
  const transaction = await deps.store.take<UpstreamTransaction>(keys.upstreamState(state));
  if (!transaction) throw new OAuthError("invalid_request", "This upstream answer is unknown, expired or already used. Start again from your MCP client.");
  // MCP Security Best Practices §OAuth State Parameter Validation: bound to the browser that consented
  if (!safeEqual(transaction.sessionHash, sha256(sessionId)))
    throw new OAuthError("access_denied", "This upstream answer belongs to a sign-in started in another browser.", 403);

  const { request } = transaction;
  const toClient = (params: Record<string, string | undefined>) =>
    authorizationResponse(request.redirectUri, { ...params, state: request.state, iss: deps.urls.issuer });
  const upstreamError = callback.searchParams.get("error");
  if (upstreamError) {
    const denied = upstreamError === "access_denied";
    return toClient({
      error: denied ? "access_denied" : "server_error",
      error_description: denied ? "The user denied access at the upstream." : `The upstream refused: ${upstreamError}.`,
    });
  }
  let upstream;
  try {
    upstream = await deps.upstream.exchangeCode(callback, state, transaction.codeVerifier);
  } catch (error) {
    const failure = classify(error, "upstream code exchange");
    return toClient({
      error: failure.definitive ? "server_error" : "temporarily_unavailable",
      error_description: "The gateway could not redeem the upstream's authorization code.",
    });
  }
  const code = randomToken(32);
  const codeHash = sha256(code);
  const record: CodeRecord = {
    clientId: request.clientId,
    redirectUri: request.redirectUri,
    redirectUriGiven: request.redirectUriGiven,
    codeChallenge: request.codeChallenge,
    resource: request.resource,
    scope: upstream.scope || request.scope || "",
    sub: transaction.sub,
    sealedUpstream: await seal(deps.keys, upstream, codeHash),
  };
  await deps.store.put(keys.code(codeHash), record, CODE_TTL);
  return toClient({ code });
}
