import { sha256 } from "../crypto.js";
import { OAuthError } from "../errors.js";
import type { Logger } from "../log.js";
import { storeKey, type Store } from "../store/store.js";
import {
  revokeGrant,
  type Grant,
  type OpenedRefreshToken,
  type RefreshTokenRecord,
  type RevokedGrant,
  type TokenContext,
  type UpstreamTokens,
} from "../tokens.js";
import type { Mounts } from "../upstream/mounts.js";

/**
 * `grant:<sha256(client_id)>:<grant id>`: one record per grant, written when its code is redeemed, so
 * that a client's or a user's grants can be found and ended (RFC 7592 §2.3, `mcp-oauth-gateway revoke`).
 * The client's hash keeps the prefix of one client from being the prefix of another's.
 */
const grantKeys = {
  grant: (clientId: string, grantId: string) => storeKey.grant(sha256(clientId), grantId),
  ofClient: (clientId: string) => storeKey.grant(sha256(clientId), ""),
  all: storeKey.grants,
} as const;

/** Who a grant is for, and since when: what ending it by user or client needs. */
export interface GrantRecord {
  grantId: string;
  clientId: string;
  sub: string;
  resource: string;
  grantedAt: number;
}

/** Whose grants to end: gateway user names and client ids. */
export interface GrantSelection {
  users: readonly string[];
  clients: readonly string[];
}

export interface GrantEndDeps extends Pick<TokenContext, "store" | "clock" | "accessTokenTtl" | "refreshTokenTtl"> {
  mounts: Mounts;
  log?: Pick<Logger, "warn">;
}

/** Written at code redemption, for as long as the grant can live. */
export async function recordGrant(store: Store, grant: Grant & { grantedAt: number }, ttl: number): Promise<void> {
  const { grantId, clientId, sub, resource, grantedAt } = grant;
  await store.put<GrantRecord>(grantKeys.grant(clientId, grantId), { grantId, clientId, sub, resource, grantedAt }, ttl);
}

/**
 * The unrevoked grants of the selection. `olderGrants`: also those made before grant records existed,
 * found through their refresh tokens' records (a full read of those prefixes: operator work only).
 */
export async function findGrants(store: Store, selection: GrantSelection, opts: { olderGrants: boolean }): Promise<GrantRecord[]> {
  const found = new Map<string, GrantRecord>();
  const chosen = (r: Pick<GrantRecord, "sub" | "clientId">) => selection.users.includes(r.sub) || selection.clients.includes(r.clientId);
  const prefixes = selection.users.length || opts.olderGrants ? [grantKeys.all] : selection.clients.map(grantKeys.ofClient);
  for (const prefix of prefixes) for await (const [, grant] of store.scan<GrantRecord>(prefix)) if (chosen(grant)) found.set(grant.grantId, grant);
  if (opts.olderGrants)
    for (const prefix of [storeKey.refreshToken(""), storeKey.usedRefreshToken("")])
      for await (const [, record] of store.scan<RefreshTokenRecord>(prefix))
        if (chosen(record) && !found.has(record.grantId)) found.set(record.grantId, asGrantRecord(record));
  const live: GrantRecord[] = [];
  for (const grant of found.values()) if (!(await store.get(storeKey.revokedGrant(grant.grantId)))) live.push(grant);
  return live;
}

const asGrantRecord = ({ grantId, clientId, sub, resource, grantedAt, issuedAt }: RefreshTokenRecord): GrantRecord => ({
  grantId,
  clientId,
  sub,
  resource,
  grantedAt: grantedAt ?? issuedAt,
});

/**
 * End the selected grants: every instance refuses their tokens from its next request, at /mcp and at
 * /token. Their upstream tokens are in the clients' hands only, sealed: they are given back upstream
 * when one of the grant's refresh tokens is next presented (`giveBackIfEnded`).
 */
export async function endGrants(deps: Pick<GrantEndDeps, "store" | "clock" | "accessTokenTtl" | "refreshTokenTtl">, grants: GrantRecord[]): Promise<void> {
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
