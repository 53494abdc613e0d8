import { nowSeconds } from "../clock.js";
import { randomToken, seal, sha256 } from "../crypto.js";
import { storeKey } from "../store/store.js";
import {
  SEPARATOR,
  signAccessToken,
  type AccessTokenClaims,
  type Grant,
  type SealedAccess,
  type TokenContext,
  type TokenResponse,
  type UpstreamTokens,
} from "./format.js";
import type { RefreshTokenRecord } from "./records.js";

/**
 * Mint G~U and, with `refresh`, R~V. `endsAt`: when the grant ends (its absolute lifetime, seconds):
 * no token of it outlives that. /token always gives it.
 */
export async function issueTokens(
  ctx: TokenContext,
  grant: Grant,
  upstream: UpstreamTokens,
  opts: { refresh: boolean; endsAt?: number },
): Promise<TokenResponse> {
  const { scope } = grant;
  const now = nowSeconds(ctx.clock);
  const upstreamLeft = upstream.expires_at === undefined ? Infinity : upstream.expires_at - now;
  const grantLeft = opts.endsAt === undefined ? Infinity : opts.endsAt - now;
  const expiresIn = Math.max(1, Math.min(ctx.accessTokenTtl, upstreamLeft, grantLeft));
  const jti = randomToken(16);
  const claims: AccessTokenClaims = { sub: grant.sub, client_id: grant.clientId, scope, gid: grant.grantId, jti };
  const g = await signAccessToken(ctx.keys, claims, { issuer: ctx.issuer, audience: grant.resource, expiresAt: now + expiresIn, clock: ctx.clock });
  const sealed: SealedAccess = { access_token: upstream.access_token, ...(grant.identity ? { identity: grant.identity } : {}) };
  const u = await seal(ctx.keys, sealed, jti);
  const response: TokenResponse = { access_token: g + SEPARATOR + u, token_type: "Bearer", expires_in: expiresIn, ...(scope ? { scope } : {}) };
  if (!opts.refresh) return response;
  const refreshLeft = upstream.refresh_expires_at === undefined ? Infinity : upstream.refresh_expires_at - now;
  const ttl = Math.max(1, Math.min(ctx.refreshTokenTtl, refreshLeft, grantLeft));
  response.refresh_token = await issueRefreshToken(ctx, grant, upstream, { now, ttl });
  return response;
}

/** R~V: R opaque, stored only as its hash, for `ttl` seconds from `now`. */
async function issueRefreshToken(ctx: TokenContext, grant: Grant, upstream: UpstreamTokens, { now, ttl }: { now: number; ttl: number }): Promise<string> {
  const r = randomToken(32);
  const rHash = sha256(r);
  const record: RefreshTokenRecord = {
    grantId: grant.grantId,
    clientId: grant.clientId,
    sub: grant.sub,
    scope: grant.scope,
    resource: grant.resource,
    ...(grant.identity ? { identity: grant.identity } : {}),
    grantedAt: grant.grantedAt ?? now,
    issuedAt: now,
    expiresAt: now + ttl,
  };
  await ctx.store.put(storeKey.refreshToken(rHash), record, ttl);
  return r + SEPARATOR + (await seal(ctx.keys, upstream, rHash));
}
