import type { SimApp, SimUser } from "../options.js";
import { userEmails } from "../options.js";
import { REFRESH_TOKEN_TTL_S, USER_TOKEN_TTL_S, type GrantStore, type MintedTokens } from "../store.js";
import { sha256Base64url } from "../tokens.js";
import { resolveRedirectUri } from "./redirect-uri.js";

export type TokenErrorCode =
  | "incorrect_client_credentials"
  | "bad_verification_code"
  | "redirect_uri_mismatch"
  | "unverified_user_email"
  | "bad_refresh_token"
  | "unsupported_grant_type"
  | "device_flow_disabled";

export interface TokenResponse {
  access_token: string;
  token_type: "bearer";
  scope: string;
  expires_in?: number;
  refresh_token?: string;
  refresh_token_expires_in?: number;
}

export type TokenOutcome = { response: TokenResponse } | { error: TokenErrorCode };

export interface TokenDeps {
  apps: SimApp[];
  users: SimUser[];
  store: GrantStore;
}

const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

export function tokenRequest(params: Map<string, string>, deps: TokenDeps): TokenOutcome {
  const grantType = params.get("grant_type") || "authorization_code";
  if (grantType !== "authorization_code" && grantType !== "refresh_token" && grantType !== DEVICE_CODE_GRANT) {
    return { error: "unsupported_grant_type" };
  }
  const app = deps.apps.find((a) => a.clientId === params.get("client_id"));
  if (grantType === DEVICE_CODE_GRANT) return { error: app ? "device_flow_disabled" : "incorrect_client_credentials" };
  const secret = params.get("client_secret");
  // docs host-integration: "Both GitHub Apps and OAuth Apps require … a client secret", PKCE or not.
  if (!app || !secret || !app.clientSecrets.includes(secret)) return { error: "incorrect_client_credentials" };
  if (grantType === "refresh_token") return refreshGrant(app, params, deps);
  return codeGrant(app, params, deps);
}

function codeGrant(app: SimApp, params: Map<string, string>, deps: TokenDeps): TokenOutcome {
  const code = deps.store.liveCode(params.get("code") ?? "");
  if (!code || code.clientId !== app.clientId) return { error: "bad_verification_code" };
  const sentRedirect = params.get("redirect_uri");
  if (sentRedirect) {
    const allowed = code.redirectUri !== null ? sentRedirect === code.redirectUri : resolveRedirectUri(app, sentRedirect) !== undefined;
    if (!allowed) return { error: "redirect_uri_mismatch" };
  }
  if (code.codeChallenge !== undefined) {
    const verifier = params.get("code_verifier");
    // RFC 7636 §4.6; GitHub's error name for a mismatch is unverified, bad_verification_code is the best guess.
    if (!verifier || sha256Base64url(verifier) !== code.codeChallenge) return { error: "bad_verification_code" };
  }
  const user = deps.users.find((u) => u.id === code.userId);
  if (!user) return { error: "bad_verification_code" };
  if (!userEmails(user).some((e) => e.primary && e.verified)) return { error: "unverified_user_email" };
  deps.store.consumeCode(code);
  return { response: toResponse(deps.store.mintUserTokens(app, user.id, code.scopes)) };
}

/** docs refreshing-user-access-tokens: single use; the loser of a concurrent refresh gets bad_refresh_token. */
function refreshGrant(app: SimApp, params: Map<string, string>, deps: TokenDeps): TokenOutcome {
  if (app.kind !== "github_app" || app.expiringUserTokens === false) return { error: "bad_refresh_token" };
  const minted = deps.store.rotateRefresh(params.get("refresh_token") ?? "", app);
  return minted ? { response: toResponse(minted) } : { error: "bad_refresh_token" };
}

function toResponse({ access, refresh }: MintedTokens): TokenResponse {
  const base = { access_token: access.token, token_type: "bearer" as const, scope: access.scopes.join(",") };
  if (!refresh) return base;
  return {
    ...base,
    expires_in: USER_TOKEN_TTL_S,
    refresh_token: refresh.token,
    refresh_token_expires_in: REFRESH_TOKEN_TTL_S,
  };
}
