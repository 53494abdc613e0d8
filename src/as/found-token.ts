import { storeKey } from "../store/store.js";
import {
  openForHolder,
  openRefreshToken,
  validateAccessToken,
  type OpenedRefreshToken,
  type RefreshTokenRecord,
  type TokenContext,
  type UpstreamTokens,
  type UsedRefreshToken,
  usedRecordGrant,
} from "../tokens.js";
import type { UpstreamIdentity } from "../upstream/identity.js";

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
  const asAccess = async (): Promise<FoundToken | undefined> => {
    const access = await validateAccessToken(ctx, token, audiences).catch(() => undefined);
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
  };
  const asRefresh = async (): Promise<FoundToken | undefined> => {
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
  };
  const order = hint === "refresh_token" ? [asRefresh, asAccess] : [asAccess, asRefresh];
  for (const find of order) {
    const found = await find();
    if (found) return found;
  }
  return undefined;
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

/** As refresh.ts's replay sees it: a used token is answered only with a successor still live and the upstream tokens sealed for it. */
async function usedWithUnusedSuccessor(ctx: TokenContext, opened: OpenedRefreshToken): Promise<LiveRefreshToken | undefined> {
  const used = await ctx.store.get<UsedRefreshToken>(storeKey.usedRefreshToken(opened.tokenHash));
  if (!used?.successor || !used.sealedUpstream || !(await ctx.store.get(storeKey.refreshToken(used.successor)))) return undefined;
  const latest = await openForHolder<UpstreamTokens>(ctx, used.sealedUpstream, opened).catch(() => opened.upstream);
  return { ...opened, record: usedRecordGrant(used), upstream: latest };
}
