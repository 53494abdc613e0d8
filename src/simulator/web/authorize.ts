import type { SimApp, SimQuirks, SimUser } from "../options.js";
import { coversScopes, normalizeScopes, parseScopeParam } from "../scopes.js";
import type { GrantStore, PendingConsent } from "../store.js";
import { resolveRedirectUri } from "./redirect-uri.js";

export type ConsentMode = "auto-approve" | "auto-deny" | "page";

export interface AuthorizeDeps {
  apps: SimApp[];
  browserUser: SimUser;
  consent: ConsentMode;
  quirks: SimQuirks;
  store: GrantStore;
}

export type AuthorizeOutcome =
  | { redirectTo: string }
  | { page: "not_found" }
  | { page: "be_careful" }
  | { page: "error"; message: string }
  | { page: "consent"; app: SimApp; user: SimUser; pending: PendingConsent };

const TROUBLESHOOTING = "/apps/building-integrations/setting-up-and-registering-oauth-apps/troubleshooting-authorization-request-errors/";

/** Byte-for-byte the query strings github.com appends (error_uri keeps its slashes, `#` becomes %23). */
const ERROR_QUERIES = {
  application_suspended: `error=application_suspended&error_description=Your+application+has+been+suspended.+Contact+support@github.com.&error_uri=${TROUBLESHOOTING}%23application-suspended`,
  access_denied: `error=access_denied&error_description=The+user+has+denied+your+application+access.&error_uri=${TROUBLESHOOTING}%23access-denied`,
  redirect_uri_mismatch: `error=redirect_uri_mismatch&error_description=The+redirect_uri+MUST+match+the+registered+callback+URL+for+this+application.&error_uri=${TROUBLESHOOTING}%23redirect-uri-mismatch`,
} as const;

const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export function authorize(params: URLSearchParams, deps: AuthorizeDeps): AuthorizeOutcome {
  const state = params.get("state") ?? undefined;
  const app = deps.apps.find((a) => a.clientId === params.get("client_id"));
  if (!app || app.callbackUrls.length === 0) return { page: "not_found" };
  const firstCallback = app.callbackUrls[0] as string;
  if (app.suspended) return { redirectTo: callbackWith(firstCallback, ERROR_QUERIES.application_suspended, state) };

  const redirectUri = params.get("redirect_uri");
  const redirectTo = resolveRedirectUri(app, redirectUri);
  if (redirectTo === undefined) {
    // RFC 6749 §4.1.2.1: github.com shows its own page instead of redirecting to an unverified URI.
    if (!deps.quirks.legacyRedirectMismatch) return { page: "be_careful" };
    return { redirectTo: callbackWith(firstCallback, ERROR_QUERIES.redirect_uri_mismatch, state) };
  }

  const challenge = params.get("code_challenge") || undefined;
  const method = params.get("code_challenge_method") || undefined;
  if (method !== undefined && method !== "S256") {
    return { page: "error", message: "Invalid code_challenge_method. Only S256 is supported." };
  }
  if (method !== undefined && challenge === undefined) {
    return { page: "error", message: "code_challenge is required when code_challenge_method is given." };
  }
  if (challenge !== undefined && !CODE_CHALLENGE.test(challenge)) {
    return { page: "error", message: "Invalid code_challenge. Must be a 43 character SHA-256 hash." };
  }

  const user = deps.browserUser;
  const previous = deps.store.grantedScopes(app.clientId, user.id);
  const scopes = requestedScopes(app, params, previous);
  const request = { clientId: app.clientId, userId: user.id, redirectTo, redirectUri, scopes, codeChallenge: challenge, state };

  if (deps.consent === "auto-deny") return { redirectTo: callbackWith(redirectTo, ERROR_QUERIES.access_denied, state) };
  const alreadyGranted = previous !== undefined && coversScopes(previous, scopes);
  if (deps.consent === "page" && !alreadyGranted) {
    return { page: "consent", app, user, pending: deps.store.putPending(request) };
  }
  return { redirectTo: approve(request, deps.store) };
}

/** The simulator-only consent form posts here. */
export function decide(form: Map<string, string>, deps: AuthorizeDeps): AuthorizeOutcome {
  const pending = deps.store.takePending(form.get("authorization_request") ?? "");
  if (!pending) return { page: "error", message: "This authorization request has expired. Please start over." };
  if (form.get("decision") !== "authorize") {
    return { redirectTo: callbackWith(pending.redirectTo, ERROR_QUERIES.access_denied, pending.state) };
  }
  return { redirectTo: approve(pending, deps.store) };
}

type ApprovedRequest = Omit<PendingConsent, "id" | "expiresAt">;

function approve(request: ApprovedRequest, store: GrantStore): string {
  store.rememberGrant(request.clientId, request.userId, request.scopes);
  const code = store.issueCode({
    clientId: request.clientId,
    userId: request.userId,
    redirectUri: request.redirectUri,
    scopes: request.scopes,
    ...(request.codeChallenge !== undefined && { codeChallenge: request.codeChallenge }),
  });
  return callbackWith(request.redirectTo, `code=${code.code}`, request.state);
}

/** docs authorizing-oauth-apps: no `scope` and an existing grant ⇒ the union granted so far; GitHub Apps ignore it. */
function requestedScopes(app: SimApp, params: URLSearchParams, previous: string[] | undefined): string[] {
  if (app.kind === "github_app") return [];
  const raw = params.get("scope");
  if (raw === null) return normalizeScopes(previous ?? []);
  return normalizeScopes(parseScopeParam(raw));
}

function callbackWith(uri: string, query: string, state: string | undefined): string {
  const withState = state === undefined ? query : `${query}&state=${encodeURIComponent(state)}`;
  return `${uri}${uri.includes("?") ? "&" : "?"}${withState}`;
}
