import { deriveKeys, seal, sha256, unseal } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { storeKey } from "../store/store.js";
import type { UpstreamIdentity } from "../upstream/identity.js";
import { split, type TokenContext, type UpstreamTokens } from "./format.js";
import { usedRecordGrant, type RefreshTokenRecord, type UsedRefreshToken } from "./records.js";
import { validateAccessToken } from "./validate.js";

/** A refresh token R~V of ours, opened: V unsealed, nothing in the store read or changed yet. */
export interface OpenedRefreshToken {
  /** SHA-256 of R: the key of its store records. */
  tokenHash: string;
  /** Key material only the holder of R can derive (the hash is in the store, R is not): never stored; it keys the holder's seal. */
  holderSecret: string;
  upstream: UpstreamTokens;
}

/** Throws invalid_grant unless V opens with R (so a forged V can never touch R's records). */
export async function openRefreshToken(ctx: Pick<TokenContext, "keys">, token: string): Promise<OpenedRefreshToken> {
  const halves = split(token);
  if (!halves) throw new OAuthError("invalid_grant", "The refresh token is not one this gateway issued.");
  const tokenHash = sha256(halves[0]);
  const upstream = await unseal<UpstreamTokens>(ctx.keys, halves[1], tokenHash).catch(() => {
    throw new OAuthError("invalid_grant", "The refresh token is invalid.");
  });
  return { tokenHash, holderSecret: sha256(`holder:${halves[0]}`), upstream };
}

/**
 * Seal `value` for the holder of R only: under the gateway key, then under a key derived from the
 * holder's secret. A store dump opens it neither alone nor with the master secret it may hold.
 */
export async function sealForHolder(ctx: Pick<TokenContext, "keys">, value: unknown, opened: OpenedRefreshToken): Promise<string> {
  const binding = `holder:${opened.tokenHash}`;
  return seal(deriveKeys(opened.holderSecret), await seal(ctx.keys, value, binding), binding);
}

export async function openForHolder<T>(ctx: Pick<TokenContext, "keys">, sealed: string, opened: OpenedRefreshToken): Promise<T> {
  const binding = `holder:${opened.tokenHash}`;
  return unseal<T>(ctx.keys, await unseal<string>(deriveKeys(opened.holderSecret), sealed, binding), binding);
}

/** A live token of ours, access or refresh, as /revoke and /introspect see it. */
export interface FoundToken {
  type: "access_token" | "refresh_token";
  grantId: string;
  clientId: string;
  sub: string;
  scope: string;
  audience: string;
  identity?: UpstreamIdentity;
  issuedAt: number;
  expiresAt: number;
  /** The grant's latest upstream tokens this token knows of: what the upstream is asked to revoke. */
  upstream: UpstreamTokens;
}

/** Look a presented token for any of `audiences` up as either kind, the hinted one first (RFC 7009 §2.1, RFC 7662 §2.1). */
export async function findToken(ctx: TokenContext, token: string, audiences: string[], hint?: string): Promise<FoundToken | undefined> {
  const order = hint === "refresh_token" ? [asRefreshToken, asAccessToken] : [asAccessToken, asRefreshToken];
  for (const find of order) {
    const found = await find(ctx, token, audiences);
    if (found) return found;
  }
  return undefined;
}

async function asAccessToken(ctx: TokenContext, token: string, audiences: string[]): Promise<FoundToken | undefined> {
  // /revoke and /introspect are not per request: they read the store itself, never a view that may lag it
  const access = await validateAccessToken({ ...ctx, revocations: undefined }, token, audiences).catch(() => undefined);
  if (!access) return undefined;
  const { claims, identity } = access;
  return {
    type: "access_token",
    grantId: claims.gid,
    clientId: claims.client_id,
    sub: claims.sub,
    scope: claims.scope,
    audience: claims.aud as string,
    ...(identity ? { identity } : {}),
    issuedAt: claims.iat ?? 0,
    expiresAt: claims.exp ?? 0,
    upstream: { access_token: access.upstreamAccessToken },
  };
}

async function asRefreshToken(ctx: TokenContext, token: string, audiences: string[]): Promise<FoundToken | undefined> {
  const refresh = await liveRefreshToken(ctx, token);
  if (!refresh || !audiences.includes(refresh.record.resource)) return undefined;
  const { record } = refresh;
  return {
    type: "refresh_token",
    grantId: record.grantId,
    clientId: record.clientId,
    sub: record.sub,
    scope: record.scope,
    ...(record.identity ? { identity: record.identity } : {}),
    audience: record.resource,
    issuedAt: record.issuedAt,
    expiresAt: record.expiresAt ?? record.issuedAt + ctx.refreshTokenTtl,
    upstream: refresh.upstream,
  };
}

export interface LiveRefreshToken extends OpenedRefreshToken {
  record: RefreshTokenRecord;
}

/**
 * The unrevoked grant a refresh token can still be redeemed for, or undefined. Reads only. A used
 * token whose successor is unused still can (the refresh rule, docs/security.md): it is live, and
 * `upstream` is then what its successor carries, the grant's latest upstream tokens.
 */
export async function liveRefreshToken(ctx: TokenContext, token: string): Promise<LiveRefreshToken | undefined> {
  const opened = await openRefreshToken(ctx, token).catch(() => undefined);
  if (!opened) return undefined;
  const record = await ctx.store.get<RefreshTokenRecord>(storeKey.refreshToken(opened.tokenHash));
  const live = record ? { ...opened, record } : await usedWithUnusedSuccessor(ctx, opened);
  if (!live || (await ctx.store.get(storeKey.revokedGrant(live.record.grantId)))) return undefined;
  return live;
}

/** As the refresh grant's replay sees it: a used token is answered only with a successor still live and the upstream tokens sealed for it. */
async function usedWithUnusedSuccessor(ctx: TokenContext, opened: OpenedRefreshToken): Promise<LiveRefreshToken | undefined> {
  const used = await ctx.store.get<UsedRefreshToken>(storeKey.usedRefreshToken(opened.tokenHash));
  if (!used?.successor || !used.sealedUpstream || !(await ctx.store.get(storeKey.refreshToken(used.successor)))) return undefined;
  const latest = await openForHolder<UpstreamTokens>(ctx, used.sealedUpstream, opened).catch(() => opened.upstream);
  return { ...opened, record: usedRecordGrant(used), upstream: latest };
}
