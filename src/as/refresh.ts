import { nowSeconds } from "../clock.js";
import { OAuthError } from "../errors.js";
import type { TokenContext, TokenResponse, UpstreamTokens } from "../grants/format.js";
import { issueTokens } from "../grants/issue.js";
import { openForHolder, openRefreshToken, type OpenedRefreshToken } from "../grants/lookup.js";
import { usedRecordGrant, type RefreshTokenRecord, type UsedRefreshToken } from "../grants/records.js";
import { endGrant, giveBackIfEnded, revokeGrant } from "../grants/revoke.js";
import { liveRecord, markUsed, pointToSuccessor, unmarkUsed, usedRecord, withGrantLock } from "../grants/rotation.js";
import type { Logger } from "../log.js";
import { firstOutside, scopeTokens } from "../scope.js";
import { storeKey } from "../store/store.js";
import { refreshFailure, UpstreamError } from "../upstream/errors.js";
import { stillAllowed } from "../upstream/allow.js";
import type { Mounts } from "../upstream/mounts.js";
import { optionalParam, type ClientRecord } from "./clients.js";

export interface RefreshDeps extends TokenContext {
  mounts: Mounts;
  /** Refresh exchanges under way in this process, so simultaneous duplicates share one answer. */
  refreshes: RefreshFlights;
  /** Where failures that must not fail the request (upstream revocation, a stale metadata document) are told. */
  log?: Pick<Logger, "warn">;
  /** The gateway users now: a grant of a user no longer among them ends at its next refresh (RU1). */
  gatewayUsers: ReadonlySet<string>;
  /** Seconds a grant lives from its sign-in, whatever its refreshes (RU1). */
  grantLifetime: number;
}

/** Refresh the upstream token when it has less than this many seconds left. */
const UPSTREAM_REFRESH_MARGIN = 120;

type Request = { scope: string | undefined; resource: string | undefined };

/** Requests presenting one refresh token to this process at the same moment are one use: they share one answer. */
export class RefreshFlights {
  readonly #running = new Map<string, Promise<TokenResponse>>();

  run(key: string, exchange: () => Promise<TokenResponse>): Promise<TokenResponse> {
    const running = this.#running.get(key);
    if (running) return running;
    const started = exchange().finally(() => this.#running.delete(key));
    this.#running.set(key, started);
    return started;
  }
}

/**
 * RFC 6749 §6 with OAuth 2.1 §4.3.1 rotation and RFC 9700 §4.14.2 reuse detection. A refresh token
 * stays valid until its successor is first used; using it again meanwhile forks the chain (a new
 * successor, the unused one retired); any use of a used token whose successor was used, or of a
 * retired one, revokes the grant. Every exchange of one grant runs under one store lock, on
 * whichever instance it lands, so the upstream is refreshed once at a time.
 */
export async function refreshTokenGrant(body: Record<string, unknown>, client: ClientRecord, deps: RefreshDeps): Promise<TokenResponse> {
  const presented = optionalParam(body, "refresh_token");
  if (!presented) throw new OAuthError("invalid_request", "refresh_token is required.");
  const request = { scope: optionalParam(body, "scope"), resource: optionalParam(body, "resource") };
  const opened = await openRefreshToken(deps, presented);
  const flight = JSON.stringify([opened.tokenHash, client.client_id, request.scope ?? null, request.resource ?? null]);
  return deps.refreshes.run(flight, () => exchange(opened, client, request, deps));
}

async function exchange(opened: OpenedRefreshToken, client: ClientRecord, request: Request, deps: RefreshDeps): Promise<TokenResponse> {
  const known = (await liveRecord(deps, opened.tokenHash)) ?? (await usedRecord(deps, opened.tokenHash));
  if (!known) throw new OAuthError("invalid_grant", "The refresh token is invalid, expired or already used.");
  return withGrantLock(deps.store, known.grantId, async () => {
    const record = await liveRecord(deps, opened.tokenHash);
    return record ? rotate(record, opened, client, request, deps) : replay(opened, client, request, deps);
  });
}

/**
 * MCP §Step-Up Authorization: a refresh cannot widen a grant, and the upstream asked this one for more
 * scope. MCP clients refresh before they re-authorize (the SDK does, on a 403 `insufficient_scope`), so
 * the first refresh after the challenge answers `invalid_grant`, and the client authorizes again with
 * the scope the challenge named. The refresh token stays as it was; the next refresh works again.
 */
async function refuseDuringStepUp(grantId: string, deps: RefreshDeps): Promise<void> {
  const scope = await deps.store.take<string>(storeKey.stepUp(grantId));
  if (scope !== undefined) throw new OAuthError("invalid_grant", `The upstream needs more scope for this grant (${scope}): authorize again with it.`);
}

/** The first use of a refresh token: it becomes used, and its successor is issued. */
async function rotate(
  record: RefreshTokenRecord,
  opened: OpenedRefreshToken,
  client: ClientRecord,
  request: Request,
  deps: RefreshDeps,
): Promise<TokenResponse> {
  await checkRequest(record, client, request, opened, deps);
  await refuseDuringStepUp(record.grantId, deps);
  const used = await markUsed(deps, opened.tokenHash, record);
  if (!used) return replay(opened, client, request, deps);
  return undoUnlessEnded(
    async () => renew(used, opened.upstream, opened, deps),
    () => unmarkUsed(deps, opened.tokenHash, record),
  );
}

/**
 * A used refresh token presented again. While its successor is unused (a lost answer, a late retry,
 * a thief before the honest client) the chain forks: a new successor is issued and the unused one is
 * retired, so whoever holds it is caught on its next use.
 */
async function replay(opened: OpenedRefreshToken, client: ClientRecord, request: Request, deps: RefreshDeps): Promise<TokenResponse> {
  const used = await usedRecord(deps, opened.tokenHash);
  if (!used) throw new OAuthError("invalid_grant", "The refresh token is invalid, expired or already used.");
  await checkRequest(used, client, request, opened, deps);
  const { successor, sealedUpstream } = used;
  const unused = successor && sealedUpstream && (await liveRecord(deps, successor));
  const retired = unused && (await markUsed(deps, successor, unused));
  // RFC 9700 §4.14.2: a used refresh token whose successor was used (or a retired one) revokes the grant
  if (!retired) {
    await revokeGrant(deps, used.grantId);
    throw new OAuthError("invalid_grant", "This refresh token was already used: the grant is revoked, authorize again.");
  }
  await refuseDuringStepUp(used.grantId, deps);
  return undoUnlessEnded(
    async () => {
      const latest = await openForHolder<UpstreamTokens>(deps, sealedUpstream, opened);
      return renew(used, latest, opened, deps);
    },
    () => unmarkUsed(deps, successor, unused),
  );
}

/** A failure that did not end the grant leaves the presented token as it was, so a retry works (NA2). */
async function undoUnlessEnded<T>(work: () => Promise<T>, undo: () => Promise<void>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof OAuthError && error.code === "invalid_grant")) await undo();
    throw error;
  }
}

/**
 * The grant goes on only within its absolute lifetime, for a user the gateway still has, whom the
 * upstream's allowlists still admit (RU1); else it ends here, its upstream tokens given back.
 */
async function renew(used: UsedRefreshToken, current: UpstreamTokens, opened: OpenedRefreshToken, deps: RefreshDeps): Promise<TokenResponse> {
  const grantedAt = used.grantedAt ?? used.issuedAt;
  const endsAt = grantedAt + deps.grantLifetime;
  if (nowSeconds(deps.clock) >= endsAt)
    return endGrant(
      deps,
      used,
      current,
      `This grant has reached the gateway's grant lifetime (${describeSeconds(deps.grantLifetime)} from sign-in): authorize again.`,
    );
  if (!deps.gatewayUsers.has(used.sub)) return endGrant(deps, used, current, `The gateway user ${used.sub} no longer exists: the grant has ended.`);
  const upstream = await freshUpstream(current, deps, used);
  await checkAllowlists(used, upstream, deps);
  return answer({ ...used, grantedAt }, upstream, opened, endsAt, deps);
}

/** The allowlists as they are now; a check the upstream could not answer leaves the grant and the token as they were (NA2). */
async function checkAllowlists(grant: UsedRefreshToken, upstream: UpstreamTokens, deps: RefreshDeps): Promise<void> {
  const mount = deps.mounts.byResource(grant.resource);
  const refusal = mount && (await stillAllowed(mount, grant, upstream));
  if (!refusal) return;
  if (refusal.error === "temporarily_unavailable") throw new OAuthError("temporarily_unavailable", refusal.reason, 503, { "Retry-After": "5" });
  await endGrant(deps, grant, upstream, `${refusal.reason} The grant has ended.`);
}

const describeSeconds = (seconds: number): string => (seconds % 86_400 === 0 ? `${seconds / 86_400} days` : `${seconds} seconds`);

/** Issue the successor pair and point the used token at it, with what a replay of it is answered from. */
async function answer(used: UsedRefreshToken, upstream: UpstreamTokens, opened: OpenedRefreshToken, endsAt: number, deps: RefreshDeps): Promise<TokenResponse> {
  const response = await issueTokens(deps, usedRecordGrant(used), upstream, { refresh: true, endsAt });
  await pointToSuccessor(deps, opened, used, response, upstream);
  return response;
}

async function checkRequest(grant: RefreshTokenRecord, client: ClientRecord, request: Request, opened: OpenedRefreshToken, deps: RefreshDeps): Promise<void> {
  if (grant.clientId !== client.client_id) throw new OAuthError("invalid_grant", "The refresh token was issued to another client.");
  if (await deps.store.get(storeKey.revokedGrant(grant.grantId))) {
    await giveBackIfEnded(deps, opened);
    throw new OAuthError("invalid_grant", "The grant has been revoked.");
  }
  if (request.scope !== undefined) checkScope(grant.scope, request.scope);
  if (request.resource !== undefined && deps.mounts.resolve(request.resource)?.resource !== grant.resource)
    throw new OAuthError("invalid_target", `This grant is for ${grant.resource} only.`);
}

/**
 * RFC 6749 §6: the scope of a refresh may not exceed the grant's. A narrower one is refused too (MC29):
 * the access token would say less than the sealed upstream token can do, and only the upstream enforces
 * scope, so narrowing would bind nothing. The grant's own scope, in any order, is what it always was.
 */
function checkScope(granted: string, requested: string): void {
  if (firstOutside(requested, granted) !== undefined) throw new OAuthError("invalid_scope", "The requested scope exceeds the scope originally granted.");
  if (new Set(scopeTokens(requested)).size < new Set(scopeTokens(granted)).size)
    throw new OAuthError(
      "invalid_scope",
      `This gateway cannot narrow a grant's scope at refresh: the upstream token it holds keeps the scope granted (${granted}). Omit scope, or authorize again with the narrower scope.`,
    );
}

/**
 * Use the upstream token while it lasts; refresh it upstream when it is about to expire, or when
 * the upstream has already refused it at /mcp. Only a definitive upstream answer ends the grant (NA4).
 * A grant whose upstream is no longer configured ends here too.
 */
async function freshUpstream(upstream: UpstreamTokens, deps: RefreshDeps, grant: RefreshTokenRecord): Promise<UpstreamTokens> {
  const { grantId } = grant;
  const mount = deps.mounts.byResource(grant.resource);
  if (!mount) {
    await revokeGrant(deps, grantId);
    throw new OAuthError("invalid_grant", `The gateway no longer serves ${grant.resource}: authorize again.`);
  }
  // A grant made for another kind of upstream auth than the upstream now wants cannot serve it
  const mode = await mount.mode().catch(() => undefined);
  if (mode !== undefined && (mode === "oauth") !== Boolean(upstream.access_token)) {
    await revokeGrant(deps, grantId);
    throw new OAuthError("invalid_grant", "The upstream now wants another kind of sign-in: authorize again.");
  }
  // Static credentials, or none: there is no upstream token to renew
  if (!upstream.access_token) return upstream;
  const rejected = await deps.store.take<boolean>(storeKey.upstreamRejected(grantId));
  const left = upstream.expires_at === undefined ? Infinity : upstream.expires_at - nowSeconds(deps.clock);
  if (!rejected && left > UPSTREAM_REFRESH_MARGIN) return upstream;
  try {
    return await mount.client.refresh(upstream);
  } catch (error) {
    const failure = error instanceof UpstreamError ? error : new UpstreamError(false, undefined, String(error));
    if (failure.endsGrant) await revokeGrant(deps, grantId);
    else if (rejected) await deps.store.put(storeKey.upstreamRejected(grantId), true, deps.refreshTokenTtl);
    throw refreshFailure(failure);
  }
}
