import { setTimeout as sleep } from "node:timers/promises";
import { nowSeconds } from "../clock.js";
import { randomToken, seal, sha256, unseal } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { keys, type Store } from "../store/store.js";
import {
  issueTokens,
  openRefreshToken,
  revokeGrant,
  SEPARATOR,
  type OpenedRefreshToken,
  type RefreshTokenRecord,
  type TokenResponse,
  type UpstreamTokens,
} from "../tokens.js";
import { refreshFailure, UpstreamError } from "../upstream/errors.js";
import { canonicalResource } from "./authorize.js";
import { optionalParam, type ClientRecord } from "./clients.js";
import type { TokenDeps } from "./token.js";

/** How long a used refresh token may be presented again by an honest client whose answer was lost. */
export const REFRESH_GRACE_SECONDS = 60;
/** A lock outlives the longest upstream refresh (15 s fetch limit), so a crashed holder frees it. */
const LOCK_TTL_SECONDS = 30;
const LOCK_WAIT_MS = 10_000;
const LOCK_POLL_MS = 25;
/** Refresh the upstream token when it has less than this many seconds left. */
const UPSTREAM_REFRESH_MARGIN = 120;

/** `usedrefresh:<hash>`: a refresh token already exchanged, kept for reuse detection. */
type UsedRefreshToken = RefreshTokenRecord & { usedAt: number };
/** `refresh-grace:<hash>`: for the grace window, what a retry is answered from. */
interface RefreshGrace {
  /** Hash of the refresh token issued in exchange; retired when the retry is answered. */
  successor: string;
  /** The grant's latest upstream tokens, sealed and bound to the used token's holder. */
  sealedUpstream: string;
}

/**
 * RFC 6749 §6 with OAuth 2.1 §4.3.1 rotation and reuse detection. Every exchange of one grant runs
 * under one store lock, on whichever instance it lands: the holder rotates (and refreshes upstream
 * when due) and leaves its result for the grace window; a duplicate waits for the lock and is then
 * answered from that result instead of being taken for a thief.
 */
export async function refreshTokenGrant(body: Record<string, unknown>, client: ClientRecord, deps: TokenDeps): Promise<TokenResponse> {
  const presented = optionalParam(body, "refresh_token");
  if (!presented) throw new OAuthError("invalid_request", "refresh_token is required.");
  const request = { scope: optionalParam(body, "scope"), resource: optionalParam(body, "resource") };
  const opened = await openRefreshToken(deps, presented);
  const known =
    (await deps.store.get<RefreshTokenRecord>(keys.refreshToken(opened.tokenHash))) ??
    (await deps.store.get<UsedRefreshToken>(keys.usedRefreshToken(opened.tokenHash)));
  if (!known) throw new OAuthError("invalid_grant", "The refresh token is invalid, expired or already used.");
  return withGrantLock(deps.store, known.grantId, async () => {
    const record = await deps.store.get<RefreshTokenRecord>(keys.refreshToken(opened.tokenHash));
    return record ? rotate(record, opened, client, request, deps) : replay(opened, client, request, deps);
  });
}

type Request = { scope: string | undefined; resource: string | undefined };

async function rotate(record: RefreshTokenRecord, opened: OpenedRefreshToken, client: ClientRecord, request: Request, deps: TokenDeps): Promise<TokenResponse> {
  await checkRequest(record, client, request, deps);
  // marked used before it is taken, so a duplicate arriving on any instance finds one record or the other
  const used: UsedRefreshToken = { ...record, usedAt: nowSeconds(deps.clock) };
  await deps.store.put(keys.usedRefreshToken(opened.tokenHash), used, deps.refreshTokenTtl);
  const key = keys.refreshToken(opened.tokenHash);
  if (!(await deps.store.take<RefreshTokenRecord>(key))) return replay(opened, client, request, deps);
  return undoUnlessEnded(
    async () => answer(used, await freshUpstream(opened.upstream, deps, record), opened, request, deps),
    async () => {
      await deps.store.put(key, record, lifeLeft(record, deps));
      await deps.store.delete(keys.usedRefreshToken(opened.tokenHash));
    },
  );
}

/** OAuth 2.1 §4.3.1: a used refresh token is answered again only as an honest retry; otherwise the grant dies. */
async function replay(opened: OpenedRefreshToken, client: ClientRecord, request: Request, deps: TokenDeps): Promise<TokenResponse> {
  const used = await deps.store.get<UsedRefreshToken>(keys.usedRefreshToken(opened.tokenHash));
  if (!used) throw new OAuthError("invalid_grant", "The refresh token is invalid, expired or already used.");
  await checkRequest(used, client, request, deps);
  const grace = await deps.store.get<RefreshGrace>(keys.refreshGrace(opened.tokenHash));
  const successor = grace && (await deps.store.take<RefreshTokenRecord>(keys.refreshToken(grace.successor)));
  if (!grace || !successor) {
    await revokeGrant(deps, used.grantId);
    throw new OAuthError("invalid_grant", "This refresh token was already used: the grant is revoked, authorize again.");
  }
  return undoUnlessEnded(
    async () => {
      const latest = await unseal<UpstreamTokens>(deps.keys, grace.sealedUpstream, opened.holderBinding);
      return answer(used, await freshUpstream(latest, deps, used), opened, request, deps);
    },
    () => deps.store.put(keys.refreshToken(grace.successor), successor, lifeLeft(successor, deps)),
  );
}

/** Seconds a refresh record has left; records stored before `expiresAt` existed get the full lifetime. */
const lifeLeft = (record: RefreshTokenRecord, deps: TokenDeps): number =>
  record.expiresAt === undefined ? deps.refreshTokenTtl : Math.max(1, record.expiresAt - nowSeconds(deps.clock));

/** A failure that did not end the grant leaves the presented token as it was, so a retry works (NA2). */
async function undoUnlessEnded<T>(work: () => Promise<T>, undo: () => Promise<void>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof OAuthError && error.code === "invalid_grant")) await undo();
    throw error;
  }
}

/** Issue the new pair and keep, for the rest of the grace window, what a retry needs. */
async function answer(used: UsedRefreshToken, upstream: UpstreamTokens, opened: OpenedRefreshToken, request: Request, deps: TokenDeps): Promise<TokenResponse> {
  const { usedAt: _, ...grant } = used;
  const response = await issueTokens(deps, grant, upstream, { refresh: true, ...(request.scope === undefined ? {} : { accessScope: request.scope }) });
  const graceLeft = used.usedAt + REFRESH_GRACE_SECONDS - nowSeconds(deps.clock);
  if (graceLeft > 0) {
    const grace: RefreshGrace = {
      successor: sha256(response.refresh_token!.split(SEPARATOR)[0]!),
      sealedUpstream: await seal(deps.keys, upstream, opened.holderBinding),
    };
    await deps.store.put(keys.refreshGrace(opened.tokenHash), grace, graceLeft);
  }
  return response;
}

async function checkRequest(grant: RefreshTokenRecord, client: ClientRecord, request: Request, deps: TokenDeps): Promise<void> {
  if (grant.clientId !== client.client_id) throw new OAuthError("invalid_grant", "The refresh token was issued to another client.");
  if (await deps.store.get(keys.revokedGrant(grant.grantId))) throw new OAuthError("invalid_grant", "The grant has been revoked.");
  // RFC 6749 §6: a refresh may narrow the scope, never widen it
  const granted = new Set(grant.scope.split(" "));
  if (request.scope !== undefined && !request.scope.split(" ").every((s) => granted.has(s)))
    throw new OAuthError("invalid_scope", "The requested scope exceeds the scope originally granted.");
  if (request.resource !== undefined && canonicalResource(request.resource) !== grant.resource)
    throw new OAuthError("invalid_target", `This grant is for ${grant.resource} only.`);
}

/**
 * Use the upstream token while it lasts; refresh it upstream when it is about to expire, or when
 * the upstream has already refused it at /mcp. Only a definitive upstream answer ends the grant (NA4).
 * A grant whose upstream is no longer configured ends here too.
 */
async function freshUpstream(upstream: UpstreamTokens, deps: TokenDeps, grant: RefreshTokenRecord): Promise<UpstreamTokens> {
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
  const rejected = await deps.store.take<boolean>(keys.upstreamRejected(grantId));
  const left = upstream.expires_at === undefined ? Infinity : upstream.expires_at - nowSeconds(deps.clock);
  if (!rejected && left > UPSTREAM_REFRESH_MARGIN) return upstream;
  try {
    return await mount.client.refresh(upstream);
  } catch (error) {
    const failure = error instanceof UpstreamError ? error : new UpstreamError(false, undefined, String(error));
    if (failure.endsGrant) await revokeGrant(deps, grantId);
    else if (rejected) await deps.store.put(keys.upstreamRejected(grantId), true, deps.refreshTokenTtl);
    throw refreshFailure(failure);
  }
}

/** Run `work` holding the grant's refresh lock (NA3); wait a bounded time for another holder to finish. */
async function withGrantLock<T>(store: Store, grantId: string, work: () => Promise<T>): Promise<T> {
  const key = keys.refreshLock(grantId);
  const holder = randomToken(12);
  for (let waited = 0; !(await store.add(key, holder, LOCK_TTL_SECONDS)); waited += LOCK_POLL_MS) {
    if (waited >= LOCK_WAIT_MS)
      throw new OAuthError("temporarily_unavailable", "Another refresh of this grant is still running; try again shortly.", 503, { "Retry-After": "5" });
    await sleep(LOCK_POLL_MS);
  }
  try {
    return await work();
  } finally {
    if ((await store.get(key)) === holder) await store.delete(key);
  }
}
