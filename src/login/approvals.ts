import type { AuthorizationRequest } from "../as/authorize.js";
import type { ClientRecord } from "../as/clients.js";
import { nowSeconds, type Clock } from "../clock.js";
import { sha256 } from "../crypto.js";
import { keys, type Store } from "../store/store.js";

/** One consent a user chose to remember ("Remember this client for 30 days" on Screen 1). */
export interface Approval {
  clientId: string;
  /** Exactly the redirect URI approved: another one, even of the same client, asks again. */
  redirectUri: string;
  /** The upstream approved (its gateway resource): another upstream asks again. Absent in approvals from before several upstreams: never honoured. */
  resource?: string;
  /** Of the client's redirect URIs and name when approved: an RFC 7592 update of either forgets it (MC9). */
  fingerprint: string;
  /** Seconds since the epoch. */
  at: number;
}

export const APPROVAL_TTL = 30 * 24 * 3600;
export const APPROVALS_PER_USER = 50;

export const clientFingerprint = (client: Pick<ClientRecord, "redirect_uris" | "client_name">): string =>
  sha256(JSON.stringify([client.redirect_uris, client.client_name ?? null]));

const key = (user: string) => keys.approvals(sha256(user));

/** Remember this approval for the user: newest last, at most APPROVALS_PER_USER, the oldest give way. */
export async function rememberApproval(store: Store, clock: Clock, user: string, request: AuthorizationRequest, client: ClientRecord): Promise<void> {
  const now = nowSeconds(clock);
  const kept = ((await store.get<Approval[]>(key(user))) ?? []).filter(
    (a) => now - a.at < APPROVAL_TTL && !(a.clientId === request.clientId && a.redirectUri === request.redirectUri && a.resource === request.resource),
  );
  kept.push({ clientId: request.clientId, redirectUri: request.redirectUri, resource: request.resource, fingerprint: clientFingerprint(client), at: now });
  await store.put(key(user), kept.slice(-APPROVALS_PER_USER), APPROVAL_TTL);
}

/** MCP Security Best Practices §Confused Deputy: only this user's approval of this client, redirect URI, upstream and metadata counts. */
export async function isRemembered(store: Store, clock: Clock, user: string, request: AuthorizationRequest, client: ClientRecord): Promise<boolean> {
  const now = nowSeconds(clock);
  const fingerprint = clientFingerprint(client);
  return ((await store.get<Approval[]>(key(user))) ?? []).some(
    (a) =>
      a.clientId === request.clientId &&
      a.redirectUri === request.redirectUri &&
      a.resource === request.resource &&
      a.fingerprint === fingerprint &&
      now - a.at < APPROVAL_TTL,
  );
}

/**
 * Fetch Metadata (W3C): a remembered approval is honoured only for a navigation the user started
 * (`none`: typed, bookmarked, opened by a desktop app) or one from the gateway's own pages. A page on
 * another site, or a browser too old to say, gets Screen 1 (docs/security.md WP3).
 */
export const honoursRememberedApproval = (secFetchSite: string | undefined): boolean => secFetchSite === "none" || secFetchSite === "same-origin";
