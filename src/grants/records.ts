import { sha256 } from "../crypto.js";
import { storeKey, type Store } from "../store/store.js";
import type { Grant } from "./format.js";

/** `refresh:<hash of R>`: a live refresh token. */
export interface RefreshTokenRecord extends Grant {
  issuedAt: number;
  /** Absent in records written before `expiresAt` existed: read as the full lifetime left. */
  expiresAt?: number;
}

/**
 * `usedrefresh:<hash>`: a refresh token already exchanged, for as long as it would have lived. Without
 * a successor (retired, or written by an earlier version) any use of it revokes the grant.
 */
export interface UsedRefreshToken extends RefreshTokenRecord {
  usedAt: number;
  /** Hash of the refresh token issued for it last. */
  successor?: string;
  /** The upstream tokens the successor carries, sealed for this token's holder: what a replay is answered from. */
  sealedUpstream?: string;
}

/** The grant's record a used token was exchanged under, without what its use added. */
export function usedRecordGrant(used: UsedRefreshToken): RefreshTokenRecord {
  const { usedAt: _usedAt, successor: _successor, sealedUpstream: _sealed, ...record } = used;
  return record;
}

/** `revoked:<grant id>`. `upstreamGivenBack`: the upstream was asked to revoke the grant's tokens as it ended. */
export interface RevokedGrant {
  revokedAt: number;
  upstreamGivenBack?: true;
}

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
