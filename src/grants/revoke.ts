import { nowSeconds } from "../clock.js";
import { OAuthError } from "../errors.js";
import type { Logger } from "../log.js";
import { storeKey } from "../store/store.js";
import type { Mounts } from "../upstream/mounts.js";
import type { Grant, TokenContext, UpstreamTokens } from "./format.js";
import type { OpenedRefreshToken } from "./lookup.js";
import { findGrants, type GrantRecord, type RefreshTokenRecord, type RevokedGrant } from "./records.js";

type RevokeContext = Pick<TokenContext, "store" | "clock" | "accessTokenTtl" | "refreshTokenTtl">;

/**
 * Every access and refresh token of the grant is refused from now on (checked on each use), for as long
 * as any of them can live: by this process at once, by every other on the store within the bound of
 * docs/security.md RU5 (the marker is published to their revocation views).
 */
export async function revokeGrant(ctx: RevokeContext, grantId: string, opts: { upstreamGivenBack?: boolean } = {}): Promise<void> {
  const marker: RevokedGrant = { revokedAt: nowSeconds(ctx.clock), ...(opts.upstreamGivenBack ? { upstreamGivenBack: true } : {}) };
  await ctx.store.publish(storeKey.revokedGrant(grantId), marker, Math.max(ctx.refreshTokenTtl, ctx.accessTokenTtl));
}

export interface GrantEndDeps extends RevokeContext {
  mounts: Mounts;
  log?: Pick<Logger, "warn">;
}

/**
 * End the selected grants: every instance refuses their tokens within the bound of RU5 at /mcp, and at
 * /token. Their upstream tokens are in the clients' hands only, sealed: they are given back upstream
 * when one of the grant's refresh tokens is next presented (`giveBackIfEnded`).
 */
export async function endGrants(deps: RevokeContext, grants: GrantRecord[]): Promise<void> {
  for (const grant of grants) await revokeGrant(deps, grant.grantId);
}

/** RFC 7592 §2.3: a deleted client's grants end with it (RU2). */
export async function endClientGrants(deps: GrantEndDeps, clientId: string): Promise<void> {
  await endGrants(deps, await findGrants(deps.store, { users: [], clients: [clientId] }, { olderGrants: false }));
}

/** End a grant at refresh (RU1): refused from now on, its upstream tokens given back, the client told why. */
export async function endGrant(deps: GrantEndDeps, grant: Pick<Grant, "grantId" | "resource">, upstream: UpstreamTokens, description: string): Promise<never> {
  await revokeGrant(deps, grant.grantId, { upstreamGivenBack: true });
  await revokeUpstream(deps, grant.resource, upstream);
  throw new OAuthError("invalid_grant", description);
}

/** Give the user's upstream tokens back where the upstream allows; its answer never fails the client's request. */
export async function revokeUpstream(deps: GrantEndDeps, resource: string, upstream: UpstreamTokens): Promise<void> {
  const mount = deps.mounts.byResource(resource);
  if (!mount || !upstream.access_token) return; // nothing of the user's upstream: static credentials or none
  try {
    await mount.client.revoke(upstream);
  } catch (error) {
    deps.log?.warn(`upstream token revocation failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * A live refresh token of a grant that was ended where its upstream tokens were out of reach (the
 * revoke command, RFC 7592 deletion, reuse detection): they are given back upstream now. Once per
 * token: its record is taken.
 */
export async function giveBackIfEnded(deps: GrantEndDeps, opened: OpenedRefreshToken): Promise<void> {
  const record = await deps.store.get<RefreshTokenRecord>(storeKey.refreshToken(opened.tokenHash));
  const revoked = record && (await deps.store.get<RevokedGrant>(storeKey.revokedGrant(record.grantId)));
  if (!revoked || revoked.upstreamGivenBack) return;
  if (await deps.store.take(storeKey.refreshToken(opened.tokenHash))) await revokeUpstream(deps, record.resource, opened.upstream);
}
