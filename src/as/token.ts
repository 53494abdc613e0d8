import { nowSeconds } from "../clock.js";
import { s256, safeEqual } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { codeUpstream, redeemCode, type RedeemedCode } from "../grants/codes.js";
import type { TokenResponse } from "../grants/format.js";
import { issueTokens } from "../grants/issue.js";
import { openRefreshToken } from "../grants/lookup.js";
import { recordGrant } from "../grants/records.js";
import { giveBackIfEnded } from "../grants/revoke.js";
import type { Mounts } from "../upstream/mounts.js";
import { authenticateClient, type ClientAuthDeps } from "./client-auth.js";
import { markClientUsed, optionalParam, type ClientCredentials, type ClientRecord } from "./clients.js";
import { redeemDeviceCode } from "./device-token.js";
import { DEVICE_CODE_GRANT } from "./grant-types.js";
import { refreshTokenGrant, type RefreshDeps } from "./refresh.js";

export interface TokenDeps extends RefreshDeps, ClientAuthDeps {
  mounts: Mounts;
}

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/** POST /token (RFC 6749 §3.2, §4.1.3, §6). */
export async function token(body: Record<string, unknown>, credentials: ClientCredentials, deps: TokenDeps): Promise<TokenResponse> {
  const grantType = optionalParam(body, "grant_type");
  if (!grantType) throw new OAuthError("invalid_request", "grant_type is required.");
  if (grantType !== "authorization_code" && grantType !== "refresh_token" && grantType !== DEVICE_CODE_GRANT)
    throw new OAuthError("unsupported_grant_type", `Only authorization_code, refresh_token and ${DEVICE_CODE_GRANT} are supported.`);
  const client = await authenticateClient(deps, credentials).catch(async (error: unknown) => {
    if (grantType === "refresh_token" && error instanceof OAuthError && error.code === "invalid_client") await giveBackOrphaned(body, deps);
    throw error;
  });
  if (!client.grant_types.includes(grantType)) throw new OAuthError("unauthorized_client", `This client did not register the ${grantType} grant.`);
  if (grantType === DEVICE_CODE_GRANT) return grantFromCode(await redeemDeviceCode(body, client, deps), client, deps);
  return grantType === "authorization_code" ? authorizationCodeGrant(body, client, deps) : refreshTokenGrant(body, client, deps);
}

async function authorizationCodeGrant(body: Record<string, unknown>, client: ClientRecord, deps: TokenDeps): Promise<TokenResponse> {
  const code = optionalParam(body, "code");
  if (!code) throw new OAuthError("invalid_request", "code is required.");
  const redirectUri = optionalParam(body, "redirect_uri");
  const verifier = optionalParam(body, "code_verifier");
  const resource = optionalParam(body, "resource");
  const redeemed = await redeemCode(deps, code);
  const { record } = redeemed;
  if (record.clientId !== client.client_id) throw new OAuthError("invalid_grant", "The authorization code was issued to another client.");
  if ((record.redirectUriGiven || redirectUri !== undefined) && redirectUri !== record.redirectUri)
    throw new OAuthError("invalid_grant", "redirect_uri differs from the one in the authorization request.");
  if (!verifier) throw new OAuthError("invalid_request", "code_verifier is required (PKCE).");
  if (!CODE_VERIFIER.test(verifier))
    throw new OAuthError("invalid_grant", "code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~' (RFC 7636 §4.1).");
  // RFC 7636 §4.6
  if (!safeEqual(s256(verifier), record.codeChallenge)) throw new OAuthError("invalid_grant", "The code_verifier does not match the code_challenge.");
  if (resource !== undefined && deps.mounts.resolve(resource)?.resource !== record.resource)
    throw new OAuthError("invalid_target", `This authorization is for ${record.resource} only.`);
  return grantFromCode(redeemed, client, deps);
}

/** The tokens of a redeemed gateway code: the grant recorded, then G~U and R~V (the code and device grants alike). */
export async function grantFromCode(redeemed: RedeemedCode, client: ClientRecord, deps: TokenDeps): Promise<TokenResponse> {
  const { record, grantId } = redeemed;
  const upstream = await codeUpstream(deps, redeemed);
  const grantedAt = nowSeconds(deps.clock);
  const grant = {
    grantId,
    clientId: client.client_id,
    sub: record.sub,
    scope: record.scope,
    resource: record.resource,
    ...(record.identity ? { identity: record.identity } : {}),
    grantedAt,
  };
  const refresh = client.grant_types.includes("refresh_token");
  await recordGrant(deps.store, grant, refresh ? deps.grantLifetime : Math.min(deps.accessTokenTtl, deps.grantLifetime));
  const response = await issueTokens(deps, grant, upstream, { refresh, endsAt: grantedAt + deps.grantLifetime });
  await markClientUsed(deps.store, client);
  return response;
}

/**
 * A refresh token presented by a client that no longer exists (RFC 7592 deletion ended its grants):
 * the upstream tokens it carries are given back (RFC 7592 §2.3); the client still hears invalid_client.
 */
async function giveBackOrphaned(body: Record<string, unknown>, deps: TokenDeps): Promise<void> {
  const presented = body.refresh_token;
  const opened = typeof presented === "string" ? await openRefreshToken(deps, presented).catch(() => undefined) : undefined;
  if (opened) await giveBackIfEnded(deps, opened);
}
