import type { AuthorizationRequest } from "../as/authorize.js";
import type { ClientRecord } from "../as/clients.js";
import { nowSeconds, type Clock } from "../clock.js";
import { sha256 } from "../crypto.js";
import { firstOutside } from "../scope.js";
import { storeKey, type Store } from "../store/store.js";

/**
 * One consent a user gave on Screen 1. Remembered ("Remember this client for 30 days") it may skip
 * Screen 1 later; either way it marks the client as one this user approved, whose errors go back to
 * it by redirect (RFC 9700 §4.11.2, docs/security.md MC25).
 */
export interface Approval {
  clientId: string;
  /** Exactly the redirect URI approved: another one, even of the same client, asks again. */
  redirectUri: string;
  /** The upstream approved (its gateway resource): another upstream asks again. Absent in approvals from before several upstreams: never honoured. */
  resource?: string;
  /** The scope approved, null for the upstream's default; absent in approvals from before scopes were kept: they cover nothing (MC27). */
  scope?: string | null;
  /** False for an approval not to be remembered; absent in approvals from before there were any, which were all remembered. */
  remembered?: boolean;
  /** Of the client's redirect URIs and name when approved: an RFC 7592 update of either forgets it (MC9). */
  fingerprint: string;
  /** Seconds since the epoch. */
  at: number;
}

export const APPROVAL_TTL = 30 * 24 * 3600;
/** Per user, remembered approvals and the others each: the oldest of its kind gives way. */
export const APPROVALS_PER_USER = 50;

export const clientFingerprint = (client: Pick<ClientRecord, "redirect_uris" | "client_name">): string =>
  sha256(JSON.stringify([client.redirect_uris, client.client_name ?? null]));

const key = (user: string) => storeKey.approvals(sha256(user));
const isRememberedKind = (a: Approval): boolean => a.remembered !== false;

async function liveApprovals(store: Store, clock: Clock, user: string): Promise<Approval[]> {
  const now = nowSeconds(clock);
  return ((await store.get<Approval[]>(key(user))) ?? []).filter((a) => now - a.at < APPROVAL_TTL);
}

/**
 * Record that the user approved this request, remembered or not. Not remembering never forgets a
 * remembered approval of the same client, redirect URI and upstream that is still good.
 */
export async function recordApproval(
  store: Store,
  clock: Clock,
  user: string,
  request: AuthorizationRequest,
  client: ClientRecord,
  remembered: boolean,
): Promise<void> {
  const fingerprint = clientFingerprint(client);
  const same = (a: Approval) => a.clientId === request.clientId && a.redirectUri === request.redirectUri && a.resource === request.resource;
  const all = await liveApprovals(store, clock, user);
  const previous = all.find(same);
  if (!remembered && previous && isRememberedKind(previous) && previous.fingerprint === fingerprint) return;
  const kept = all.filter((a) => !same(a));
  kept.push({
    clientId: request.clientId,
    redirectUri: request.redirectUri,
    resource: request.resource,
    scope: request.scope ?? null,
    remembered,
    fingerprint,
    at: nowSeconds(clock),
  });
  const capped = [...kept.filter(isRememberedKind).slice(-APPROVALS_PER_USER), ...kept.filter((a) => !isRememberedKind(a)).slice(-APPROVALS_PER_USER)];
  await store.put(key(user), capped, APPROVAL_TTL);
}

/** MC27: an approval covers the scopes it was given for and no more; the upstream's default only itself. */
export function scopeCovered(approved: string | null | undefined, requested: string | undefined): boolean {
  if (approved === undefined) return false;
  if (requested === undefined || approved === null) return requested === undefined && approved === null;
  return firstOutside(requested, approved) === undefined;
}

/** MCP Security Best Practices §Confused Deputy: only this user's remembered approval of this client, redirect URI, upstream, metadata and scope counts. */
export async function isRemembered(store: Store, clock: Clock, user: string, request: AuthorizationRequest, client: ClientRecord): Promise<boolean> {
  const fingerprint = clientFingerprint(client);
  return (await liveApprovals(store, clock, user)).some(
    (a) =>
      isRememberedKind(a) &&
      a.clientId === request.clientId &&
      a.redirectUri === request.redirectUri &&
      a.resource === request.resource &&
      a.fingerprint === fingerprint &&
      scopeCovered(a.scope, request.scope),
  );
}

/** RFC 9700 §4.11.2: whether this user ever approved this client at this redirect URI (as it is now), so errors may go back to it unasked. */
export async function approvedBefore(store: Store, clock: Clock, user: string, client: ClientRecord, redirectUri: string): Promise<boolean> {
  const fingerprint = clientFingerprint(client);
  return (await liveApprovals(store, clock, user)).some(
    (a) => a.clientId === client.client_id && a.redirectUri === redirectUri && a.fingerprint === fingerprint,
  );
}

/**
 * Fetch Metadata (W3C): a remembered approval is honoured only for a navigation the user started
 * (`none`: typed, bookmarked, opened by a desktop app) or one from the gateway's own pages. A page on
 * another site, or a browser too old to say, gets Screen 1 (docs/security.md WP3).
 */
export const honoursRememberedApproval = (secFetchSite: string | undefined): boolean => secFetchSite === "none" || secFetchSite === "same-origin";
