import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { randomToken } from "../crypto.js";
import { OAuthError, type OAuthErrorCode } from "../errors.js";
import type { GuardOptions } from "../fetch-guard.js";
import type { Logger } from "../log.js";
import { firstOutside, isScope } from "../scope.js";
import { storeKey, type Store } from "../store/store.js";
import { isClientIdUrl, resolveMetadataClient } from "./cimd.js";
import { getClient, optionalParam, redirectUriMatches, type ClientRecord, type RedirectUriPolicy } from "./clients.js";
import type { Mount, Mounts } from "../upstream/mounts.js";
import type { GatewayUrls } from "./metadata.js";
import { PATHS } from "../paths.js";

/** A verified authorization request waiting for the human step (stored under `authreq:`). */
export interface AuthorizationRequest {
  id: string;
  clientId: string;
  redirectUri: string;
  /** RFC 6749 §4.1.3: when the request named redirect_uri, the token request must repeat it. */
  redirectUriGiven: boolean;
  state?: string;
  codeChallenge: string;
  /** What to ask the upstream for; undefined asks for the upstream's default. */
  scope?: string;
  /** The gateway resource asked for: which mounted upstream. */
  resource: string;
  /** The issuer whose authorization endpoint took the request (RFC 9207 `iss` in the answer). */
  issuer?: string;
  /** SHA-256 of the browser-binding cookie of the browser that sent it (src/login/browser.ts): only that browser may go on with it. */
  browser?: string;
  /** Set when the request came from a device (RFC 8628): it ends at that device authorization, never at a redirect URI. */
  device?: DeviceBinding;
  createdAt: number;
}

/** The device authorization a browser request stands for: its device code's hash, and the user code the consent screen shows. */
export interface DeviceBinding {
  codeHash: string;
  userCode: string;
}

/**
 * Long enough for a person to read Screen 1 and fetch a password; and the /authorize rate window
 * (RATE_RULES.authorize), so an address holds at most the limit's requests per window: twice that
 * across a window's boundary.
 */
export const AUTHORIZATION_REQUEST_TTL = 600;

/** What an unauthenticated /authorize may make the gateway store (docs/security.md HI5). */
export const AUTHORIZATION_REQUEST_LIMITS = { state: 1024, scope: 1024, record: 8192 } as const;
/** The most one stored `authreq:` record may take (its JSON, in bytes). */
export const MAX_AUTHORIZATION_REQUEST_BYTES = AUTHORIZATION_REQUEST_LIMITS.record;

/** The outcome of GET /authorize: a stored request on its way to Screen 1, or an error for the verified client (OAuth 2.1 §4.1.2.1). */
export type AuthorizeOutcome = { pending: AuthorizationRequest; redirectTo: string } | { failed: AuthorizeFailure };

export interface AuthorizeFailure {
  error: OAuthErrorCode;
  description: string;
  /** The error response at the client's verified redirect URI. */
  redirectTo: string;
  client: ClientRecord;
  redirectUri: string;
}

export interface AuthorizeDeps {
  store: Store;
  clock: Clock;
  urls: GatewayUrls;
  /** The protected resources, one per upstream; each one's configured scope is used when the client asks for none. */
  mounts: Mounts;
  /** `--redirect-uri-allow`, which binds metadata documents as it binds registrations. */
  registration: RedirectUriPolicy;
  /** How Client ID Metadata Documents are fetched (`--allow-private-fetch`). */
  metadataFetch: GuardOptions;
  /** Where a stale metadata document served in place of a failed refetch is told. */
  log?: Pick<Logger, "warn">;
  /** The gateway users who may sign in now: another name in an old session is no one (src/login/browser.ts). */
  gatewayUsers: ReadonlySet<string>;
}

/**
 * GET /authorize, or /authorize/<name> for the issuer of one upstream of a config file (`issuerMount`),
 * in two phases (OAuth 2.1 §4.1.2.1). Until client and redirect URI are verified, errors are thrown
 * and shown locally; after that they are returned for the client, whose route decides between a
 * redirect and a page (RFC 9700 §4.11.2). `from`: the hash of the sender's browser-binding cookie,
 * and its address as the per-address limits count it (a client first named by a metadata document is
 * a new client, counted as a registration: MC26).
 */
export async function authorize(
  query: Record<string, unknown>,
  deps: AuthorizeDeps,
  from: { browser: string; address: string },
  issuerMount?: Mount,
): Promise<AuthorizeOutcome> {
  const issuer = issuerMount?.issuer ?? deps.urls.issuer;
  const { clientId, client, redirectUri, redirectUriGiven } = await verifiedClient(query, deps, from.address);

  let state: string | undefined;
  const fail = (error: OAuthErrorCode, description: string): AuthorizeOutcome => ({
    failed: {
      error,
      description,
      redirectTo: authorizationResponse(redirectUri, { error, error_description: description, state, iss: issuer }),
      client,
      redirectUri,
    },
  });
  try {
    state = optionalParam(query, "state");
  } catch {
    return fail("invalid_request", "Parameter state must be given once.");
  }
  // HI5: an oversized state is neither stored nor sent back
  if (state !== undefined && Buffer.byteLength(state) > AUTHORIZATION_REQUEST_LIMITS.state) {
    state = undefined;
    return fail("invalid_request", `Parameter state may be at most ${AUTHORIZATION_REQUEST_LIMITS.state} bytes.`);
  }
  try {
    const checked = checkParameters(query, deps, issuerMount);
    if ("error" in checked) return fail(checked.error, checked.description);
    const { codeChallenge, scope, mount } = checked;
    const request: AuthorizationRequest = {
      id: randomToken(16),
      clientId,
      redirectUri,
      redirectUriGiven,
      ...(state === undefined ? {} : { state }),
      codeChallenge,
      ...(scope === undefined ? {} : { scope }),
      resource: mount.resource,
      issuer,
      browser: from.browser,
      createdAt: nowSeconds(deps.clock),
    };
    if (Buffer.byteLength(JSON.stringify(request)) > MAX_AUTHORIZATION_REQUEST_BYTES) return fail("invalid_request", "The authorization request is too large.");
    await deps.store.put(storeKey.authorizationRequest(request.id), request, AUTHORIZATION_REQUEST_TTL);
    return { pending: request, redirectTo: `${PATHS.login}?request=${encodeURIComponent(request.id)}` };
  } catch (error) {
    if (error instanceof OAuthError && error.status < 500) return fail(error.code, error.description);
    throw error;
  }
}

/** The first phase: the client and the redirect URI its answer may go to, or a thrown error shown locally. */
async function verifiedClient(
  query: Record<string, unknown>,
  deps: AuthorizeDeps,
  address: string,
): Promise<{ clientId: string; client: ClientRecord; redirectUri: string; redirectUriGiven: boolean }> {
  const clientId = optionalParam(query, "client_id");
  if (!clientId) throw new OAuthError("invalid_request", "The request has no client_id.");
  const client = isClientIdUrl(clientId)
    ? await resolveMetadataClient(clientId, {
        store: deps.store,
        clock: deps.clock,
        policy: deps.registration,
        fetch: deps.metadataFetch,
        log: deps.log,
        address,
      })
    : await getClient(deps.store, clientId);
  if (!client) throw new OAuthError("invalid_client", "The client is not registered with this gateway. Register it again from your MCP client.");
  if (!client.grant_types.includes("authorization_code"))
    throw new OAuthError("unauthorized_client", "This client registered for the device authorization grant only: it cannot use /authorize.");
  const requested = optionalParam(query, "redirect_uri");
  // OAuth 2.1 §2.3.2: without redirect_uri, only a client with exactly one registered URI is unambiguous
  if (!requested && client.redirect_uris.length !== 1)
    throw new OAuthError("invalid_request", "The request has no redirect_uri and the client registered several.");
  const redirectUri = requested ?? client.redirect_uris[0]!;
  // RFC 6749 §4.1.2.1: never redirect to an unverified redirect_uri
  if (!client.redirect_uris.some((r) => redirectUriMatches(r, redirectUri, deps.registration)))
    throw new OAuthError("invalid_request", "The redirect_uri is not one this client registered.");
  return { clientId, client, redirectUri, redirectUriGiven: requested !== undefined };
}

/** The second phase's checks of what is asked: an error here goes back to the verified client. */
function checkParameters(
  query: Record<string, unknown>,
  deps: AuthorizeDeps,
  issuerMount: Mount | undefined,
): { codeChallenge: string; mount: Mount; scope: string | undefined } | { error: OAuthErrorCode; description: string } {
  const refuse = (error: OAuthErrorCode, description: string) => ({ error, description });
  if (optionalParam(query, "response_type") !== "code") return refuse("unsupported_response_type", "Only response_type=code is supported.");
  const codeChallenge = optionalParam(query, "code_challenge");
  // OAuth 2.1 §4.1.2.1 and MCP Authorization §Authorization Code Protection: PKCE S256 is required
  if (!codeChallenge) return refuse("invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256.");
  if (optionalParam(query, "code_challenge_method") !== "S256") return refuse("invalid_request", "Only code_challenge_method=S256 is supported.");
  if (!/^[A-Za-z0-9_-]{43}$/.test(codeChallenge))
    return refuse("invalid_request", "code_challenge must be the 43-character base64url SHA-256 of the verifier.");
  const target = requestedTarget(query, deps.mounts, issuerMount);
  if ("error" in target) return target;
  return { codeChallenge, ...target };
}

/** The resource (RFC 8707) and scope a request asks for, checked: shared by /authorize and the device authorization endpoint. */
export function requestedTarget(
  query: Record<string, unknown>,
  mounts: Mounts,
  issuerMount: Mount | undefined,
): { mount: Mount; scope: string | undefined } | { error: OAuthErrorCode; description: string } {
  const refuse = (error: OAuthErrorCode, description: string) => ({ error, description });
  const resource = optionalParam(query, "resource");
  // RFC 8707 §2: the resource picks the upstream; unnamed, it is the endpoint's own (or the flags' single one)
  const mount = resource === undefined ? (issuerMount ?? mounts.single) : mounts.resolve(resource);
  if (!mount || (issuerMount && mount !== issuerMount))
    return refuse(
      "invalid_target",
      `Name the resource: this authorization server protects ${(issuerMount ? [issuerMount.resource] : mounts.resources).join(", ")}.`,
    );
  const scope = optionalParam(query, "scope") ?? mount.config.scope;
  if (scope !== undefined && (scope.length > AUTHORIZATION_REQUEST_LIMITS.scope || !isScope(scope)))
    return refuse("invalid_scope", `The scope is malformed or longer than ${AUTHORIZATION_REQUEST_LIMITS.scope} characters.`);
  // RFC 6749 §3.3: the server may refuse a scope it will not grant (`--upstream-scope-max`)
  const beyond = scope === undefined || mount.config.scopeMax === undefined ? undefined : firstOutside(scope, mount.config.scopeMax);
  if (beyond) return refuse("invalid_scope", `This gateway does not let clients ask for ${beyond}.`);
  return { mount, scope };
}

/** RFC 6749 §4.1.2 with RFC 9207 `iss`: the response parameters appended to the redirect URI's query. */
export function authorizationResponse(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return url.href;
}
