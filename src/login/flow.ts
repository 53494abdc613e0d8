import * as oauth from "oauth4webapi";
import { authorizationResponse, type AuthorizationRequest } from "../as/authorize.js";
import { isClientIdUrl } from "../as/cimd.js";
import { getClient, type ClientRecord } from "../as/clients.js";
import type { GatewayUrls } from "../as/metadata.js";
import type { Clock } from "../clock.js";
import { randomToken, safeEqual, sha256, type Keys } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { DEVICE_CODE_TTL, settleDevice } from "../as/device.js";
import { issueCode } from "../grants/codes.js";
import { scopeTokens } from "../scope.js";
import { storeKey, type Store } from "../store/store.js";
import type { Logger } from "../log.js";
import { classify } from "../upstream/errors.js";
import type { Mount, Mounts, UpstreamMode } from "../upstream/mounts.js";
import { gatewayUserRefusal, whoMayPass, type Refusal } from "../upstream/allow.js";
import { redirectHost, type Step } from "./pages.js";
import type { LoginConfig } from "./users.js";

/** The upstream leg of one authorization (stored under `upstate:<state>`), bound to the browser session. */
interface UpstreamTransaction {
  request: AuthorizationRequest;
  codeVerifier: string;
  sessionHash: string;
  sub: string;
  /** The upstream authorization server the sign-in went to (RFC 9207: its answer must come from it); absent in sign-ins started before it was recorded. */
  upstreamIssuer?: string;
}

export const UPSTREAM_STATE_TTL = 600;

export interface LoginDeps {
  store: Store;
  clock: Clock;
  keys: Keys;
  urls: GatewayUrls;
  mounts: Mounts;
  login: LoginConfig;
  log: Pick<Logger, "info" | "warn">;
}

/** What Screen 1 shows: who is asking, where the answer goes, and for what. */
export interface ConsentView {
  requestId: string;
  clientName: string | undefined;
  clientId: string;
  redirectHost: string;
  scopes: string[];
  /** A warning the user must read before approving (MC11), if any. */
  warning?: string;
  /** The upstream asked for: its title, the gateway resource URL that stands for it, and whether its own sign-in follows. */
  upstream: { title: string; resource: string; signsIn: boolean };
  /** RFC 8628 §5.4: a device is asking; the user code it shows, for the user to compare. */
  userCode?: string;
}

export async function pendingRequest(store: Store, requestId: unknown): Promise<{ request: AuthorizationRequest; client: ClientRecord }> {
  const request =
    typeof requestId === "string" && requestId.length < 100 ? await store.get<AuthorizationRequest>(storeKey.authorizationRequest(requestId)) : undefined;
  if (!request) throw new OAuthError("invalid_request", "This sign-in has expired or was already used. Start again from your MCP client.");
  const client = await getClient(store, request.clientId);
  if (!client) throw new OAuthError("invalid_client", "The client that started this sign-in is no longer registered.");
  return { request, client };
}

export function consentView(request: AuthorizationRequest, client: ClientRecord, mounts: Mounts): ConsentView {
  const mount = mounts.byResource(request.resource);
  const warning = request.device ? deviceWarning(client) : loopbackOnlyDocument(client) ? LOOPBACK_WARNING : undefined;
  return {
    upstream: { title: mount?.config.title ?? "", resource: request.resource, signsIn: mount?.signsUsersIn ?? true },
    requestId: request.id,
    clientName: client.client_name === undefined ? undefined : withoutBidiControls(client.client_name),
    clientId: withoutBidiControls(client.client_id),
    redirectHost: request.device ? "" : redirectHost(request.redirectUri),
    scopes: scopeTokens(request.scope),
    ...(warning ? { warning } : {}),
    ...(request.device ? { userCode: request.device.userCode } : {}),
  };
}

/** Unicode bidirectional controls (UAX #9), which can make a shown name read as another: never shown (MC31). */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
const withoutBidiControls = (text: string): string => text.replace(BIDI_CONTROLS, "");

const LOOPBACK_WARNING =
  "This client names itself by a web address but receives its answer on your own computer: any program running on your computer can claim to be it. Approve only if you just started this from that client.";
const PUBLIC_DEVICE_WARNING =
  "Anyone can use this client id: a public client proves nothing at the device endpoint, so the name shown is not proof of who is asking. Approve only if the code above is the one shown by a device you just started this on yourself.";
/** RFC 8628 §5.4: the tokens go to whoever polls; a client without credentials (auth `none`) can be named by anyone. */
const deviceWarning = (client: ClientRecord): string | undefined => (client.token_endpoint_auth_method === "none" ? PUBLIC_DEVICE_WARNING : undefined);

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);
/** MC11: a metadata document proves who wrote it, not who receives its codes; a loopback redirect is any local program's. */
function loopbackOnlyDocument(client: ClientRecord): boolean {
  if (!isClientIdUrl(client.client_id)) return false;
  return (
    client.redirect_uris.length > 0 &&
    client.redirect_uris.every((uri) => {
      const url = new URL(uri);
      return url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname);
    })
  );
}

/**
 * Deny: the client hears access_denied (RFC 6749 §4.1.2.1); by redirect only when this user approved
 * it before (`approved`), otherwise through a page and a link (RFC 9700 §4.11.2: no open redirect).
 */
export async function deny(deps: LoginDeps, request: AuthorizationRequest, approved: boolean): Promise<Step> {
  await deps.store.delete(storeKey.authorizationRequest(request.id));
  if (request.device) {
    await settleDevice(deps, request.device, { denied: "The user denied the request." });
    return { device: { connected: false, heading: "You denied the request", reason: "The device gets no access. You can close this page." } };
  }
  const returnTo = clientAnswer(deps, request)({ error: "access_denied", error_description: "The user denied the request." });
  if (approved) return { redirectTo: returnTo };
  return { refused: { error: "access_denied", heading: "You denied the request", reason: "The client gets no access.", returnTo } };
}

/** The upstream a pending request is for; gone when the operator removed it meanwhile. */
function mountFor(deps: LoginDeps, request: AuthorizationRequest): Mount {
  const mount = deps.mounts.byResource(request.resource);
  if (!mount) throw new OAuthError("invalid_request", `This gateway no longer serves ${request.resource}. Start again from your MCP client.`);
  return mount;
}

/**
 * Approve: start the upstream leg with our own PKCE and a single-use state bound to this browser.
 * An upstream called with static credentials, or none, has no leg of its own: the code is issued now.
 */
export async function approve(deps: LoginDeps, request: AuthorizationRequest, sessionId: string, sub: string): Promise<Step> {
  const taken = await deps.store.take<AuthorizationRequest>(storeKey.authorizationRequest(request.id));
  if (!taken) throw new OAuthError("invalid_request", "This sign-in was already used. Start again from your MCP client.");
  const mount = mountFor(deps, taken);
  // RFC 6749 §4.1.2.1: the client is verified by now, so it hears temporarily_unavailable rather than waiting for ever
  const unreachable = (error: unknown): Promise<Step> =>
    refused(deps, mount, taken, {
      error: "temporarily_unavailable",
      reason: `The gateway cannot use ${mount.config.title} now: ${(error as Error).message}.`,
      hint: "Try again from your MCP client in a moment; if it keeps failing, tell the gateway's operator.",
    });
  let mode: UpstreamMode;
  try {
    mode = await mount.mode();
  } catch (error) {
    return unreachable(error);
  }
  if (mode !== "oauth") {
    const refusal = gatewayUserRefusal(mount.config, sub);
    if (refusal) return refused(deps, mount, taken, refusal);
    return answer(deps, taken, { code: await issueCode(deps, taken, sub, { access_token: "" }, undefined, codeTtl(taken)) });
  }
  const state = randomToken(32);
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const transaction: Omit<UpstreamTransaction, "upstreamIssuer"> = { request: taken, codeVerifier, sessionHash: sha256(sessionId), sub };
  let started;
  try {
    started = await mount.client.authorizationUrl({ scope: taken.scope, state, codeVerifier });
  } catch (error) {
    return unreachable(error);
  }
  await deps.store.put(storeKey.upstreamState(state), { ...transaction, upstreamIssuer: started.issuer }, UPSTREAM_STATE_TTL);
  return { redirectTo: started.url };
}

/**
 * GET /upstream/callback[/<name>]: check the state belongs to this browser and the answer arrived at
 * the callback of the upstream it was asked of, redeem the upstream code, check who may pass, and
 * answer the client with a gateway code (RFC 6749 §4.1.2, RFC 9207 `iss`). `arrivedFor`: the upstream
 * whose callback this is.
 */
export async function upstreamCallback(deps: LoginDeps, callback: URL, sessionId: string, arrivedFor: Mount | undefined): Promise<Step> {
  const state = callback.searchParams.get("state");
  if (!state) throw new OAuthError("invalid_request", "The upstream's answer carries no state.");
  const transaction = await deps.store.take<UpstreamTransaction>(storeKey.upstreamState(state));
  if (!transaction) throw new OAuthError("invalid_request", "This upstream answer is unknown, expired or already used. Start again from your MCP client.");
  // MCP Security Best Practices §OAuth State Parameter Validation: bound to the browser that consented
  if (!safeEqual(transaction.sessionHash, sha256(sessionId)))
    throw new OAuthError("access_denied", "This upstream answer belongs to a sign-in started in another browser.", 403);

  const { request } = transaction;
  const mount = mountFor(deps, request);
  // RFC 9700 §4.4.2: an answer at another upstream's callback is a mix-up; its code is never redeemed
  if (arrivedFor !== mount)
    return refused(deps, mount, request, {
      error: "access_denied",
      reason: `The answer came back at another upstream's callback than the one this sign-in for ${mount.config.title} went out with, so the gateway did not use it.`,
      hint: "Start again from your MCP client. If it happens again, an upstream may be trying to take over your sign-in elsewhere: tell the gateway's operator.",
    });
  const upstreamError = callback.searchParams.get("error");
  if (upstreamError) {
    const denied = upstreamError === "access_denied";
    return answer(deps, request, {
      error: denied ? "access_denied" : "server_error",
      error_description: denied ? "The user denied access at the upstream." : `The upstream refused: ${upstreamError}.`,
    });
  }
  let exchange;
  try {
    exchange = await mount.client.exchangeCode(callback, state, transaction.codeVerifier, transaction.upstreamIssuer);
  } catch (error) {
    const failure = classify(error, "upstream code exchange");
    deps.log.warn(`sign-in at ${mount.config.title} failed: ${failure.message}`);
    return answer(deps, request, {
      error: failure.definitive ? "server_error" : "temporarily_unavailable",
      error_description: "The gateway could not redeem the upstream's authorization code.",
    });
  }
  // docs/upstreams.md, who may pass: checked before any gateway code exists
  const verdict = await whoMayPass(mount, exchange, deps.log);
  if ("refusal" in verdict) {
    // the refused user's upstream token is of no use to anyone: give it back where the upstream allows
    await mount.client
      .revoke(exchange.tokens)
      .catch((error: unknown) => deps.log.warn(`upstream token revocation after a refusal failed: ${(error as Error).message}`));
    return refused(deps, mount, request, verdict.refusal);
  }
  const scope = exchange.tokens.scope || request.scope || "";
  return answer(deps, request, { code: await issueCode(deps, { ...request, scope }, transaction.sub, exchange.tokens, verdict.identity, codeTtl(request)) });
}

/** RFC 6749 §4.1.2 and §4.1.2.1 (with RFC 9207 `iss`): the answer to the client at its redirect URI. */
const clientAnswer = (deps: LoginDeps, request: AuthorizationRequest) => (params: Record<string, string | undefined>) =>
  authorizationResponse(request.redirectUri, { ...params, state: request.state, iss: request.issuer ?? deps.urls.issuer });

/** A device's code lives as long as the device may still poll for it; a browser client's, a minute. */
const codeTtl = (request: AuthorizationRequest): number | undefined => (request.device ? DEVICE_CODE_TTL : undefined);

/**
 * The end of the human step: the client hears the code or the error at its redirect URI; a device
 * (RFC 8628) hears it at its next poll, and the user reads here that they may go back to it.
 */
async function answer(deps: LoginDeps, request: AuthorizationRequest, params: { code: string } | { error: string; error_description: string }): Promise<Step> {
  if (!request.device) return { redirectTo: clientAnswer(deps, request)(params) };
  if ("code" in params) {
    await settleDevice(deps, request.device, params);
    return { device: { connected: true, heading: "Device connected", reason: "Return to your device: it will go on by itself. You can close this page." } };
  }
  await settleDevice(deps, request.device, { denied: params.error_description });
  return { device: { connected: false, heading: "The device was not connected", reason: params.error_description } };
}

/** The page tells the user why; the client hears only that it failed, never who the user is upstream. */
async function refused(deps: LoginDeps, mount: Mount, request: AuthorizationRequest, refusal: Refusal): Promise<Step> {
  deps.log.info(`authorization for ${mount.resource} refused: ${refusal.reason}`);
  const description =
    refusal.error === "access_denied"
      ? `The user may not use ${mount.config.title} through this gateway.`
      : `The sign-in for ${mount.config.title} cannot go on now; try again shortly.`;
  if (request.device) {
    await settleDevice(deps, request.device, { denied: description });
    return { refused: { ...refusal, returnTo: "" } };
  }
  return { refused: { ...refusal, returnTo: clientAnswer(deps, request)({ error: refusal.error, error_description: description }) } };
}
