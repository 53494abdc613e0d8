import { setTimeout as sleep } from "node:timers/promises";
import { nowSeconds } from "../clock.js";
import { randomToken, sha256 } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { storeKey, type Store } from "../store/store.js";
import { SEPARATOR, type TokenContext, type TokenResponse, type UpstreamTokens } from "./format.js";
import { sealForHolder, type OpenedRefreshToken } from "./lookup.js";
import type { RefreshTokenRecord, UsedRefreshToken } from "./records.js";

type RotationContext = Pick<TokenContext, "store" | "clock" | "refreshTokenTtl">;

/** The live record of a refresh token, by the hash of R. */
export const liveRecord = (ctx: Pick<TokenContext, "store">, tokenHash: string): Promise<RefreshTokenRecord | undefined> =>
  ctx.store.get<RefreshTokenRecord>(storeKey.refreshToken(tokenHash));

/** The used record of a refresh token already exchanged, by the hash of R. */
export const usedRecord = (ctx: Pick<TokenContext, "store">, tokenHash: string): Promise<UsedRefreshToken | undefined> =>
  ctx.store.get<UsedRefreshToken>(storeKey.usedRefreshToken(tokenHash));

/** Seconds a refresh record has left; records stored before `expiresAt` existed get the full lifetime. */
export const lifeLeft = (record: RefreshTokenRecord, ctx: Pick<TokenContext, "clock" | "refreshTokenTtl">): number =>
  record.expiresAt === undefined ? ctx.refreshTokenTtl : Math.max(1, record.expiresAt - nowSeconds(ctx.clock));

/**
 * Move a live refresh token to a used record without successor, or undefined if it was used already.
 * Marked used before it is taken, so a request arriving meanwhile on any instance finds one record or the other.
 */
export async function markUsed(ctx: RotationContext, tokenHash: string, record: RefreshTokenRecord): Promise<UsedRefreshToken | undefined> {
  const used: UsedRefreshToken = { ...record, usedAt: nowSeconds(ctx.clock) };
  if (!(await ctx.store.add(storeKey.usedRefreshToken(tokenHash), used, lifeLeft(record, ctx)))) return undefined;
  if (await ctx.store.take<RefreshTokenRecord>(storeKey.refreshToken(tokenHash))) return used;
  await ctx.store.delete(storeKey.usedRefreshToken(tokenHash));
  return undefined;
}

/** Undo `markUsed`: the token is live again, as it was. */
export async function unmarkUsed(ctx: RotationContext, tokenHash: string, record: RefreshTokenRecord): Promise<void> {
  await ctx.store.put(storeKey.refreshToken(tokenHash), record, lifeLeft(record, ctx));
  await ctx.store.delete(storeKey.usedRefreshToken(tokenHash));
}

/** Point the used token at the successor just issued, with what a replay of it is answered from. */
export async function pointToSuccessor(
  ctx: RotationContext & Pick<TokenContext, "keys">,
  opened: OpenedRefreshToken,
  used: UsedRefreshToken,
  successor: TokenResponse,
  upstream: UpstreamTokens,
): Promise<void> {
  const pointed: UsedRefreshToken = {
    ...used,
    successor: sha256(successor.refresh_token!.split(SEPARATOR)[0]!),
    sealedUpstream: await sealForHolder(ctx, upstream, opened),
  };
  await ctx.store.put(storeKey.usedRefreshToken(opened.tokenHash), pointed, lifeLeft(used, ctx));
}

/**
 * A lock outlives the longest upstream refresh (a discovery when none is known yet, 5 s per request,
 * then the 15 s token request), so only a crashed holder's lock runs out.
 */
const LOCK_TTL_SECONDS = 60;
const LOCK_WAIT_MS = 10_000;
const LOCK_POLL_MS = 25;

/** Run `work` holding the grant's refresh lock (NA3); wait a bounded time for another holder to finish. */
export async function withGrantLock<T>(store: Store, grantId: string, work: () => Promise<T>): Promise<T> {
  const key = storeKey.refreshLock(grantId);
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
