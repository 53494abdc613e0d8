import type { Clock } from "./clock.js";
import { nowSeconds } from "./clock.js";
import type { JWTPayload } from "jose";
import { deriveKeys, randomToken, seal, sha256, signAccessToken, unseal, verifyAccessToken, type AccessTokenClaims, type Keys } from "./crypto.js";
import { OAuthError } from "./errors.js";
import { storeKey, type Store } from "./store/store.js";
import type { UpstreamIdentity } from "./upstream/identity.js";

/**
 * The token format of DESIGN §3: `access_token = G "~" U`, `refresh_token = R "~" V`.
 * G is a JWT we sign; U and V are upstream tokens sealed under a gateway key and bound to G's jti
 * and to R's hash respectively; R is opaque and stored only as its hash.
 */
export const SEPARATOR = "~";

/** What the upstream gave us, with absolute expiry times (seconds since the epoch). */
export interface UpstreamTokens {
  access_token: string;
  expires_at?: number;
  refresh_token?: string;
  refresh_expires_at?: number;
  scope?: string;
  /** The upstream authorization server that issued them: they are refreshed and revoked there only. */
  issuer?: string;
}

/** One authorization: a user's approval of a client, as every token minted from it remembers it. */
export interface Grant {
  grantId: string;
  clientId: string;
  /** The gateway user. */
  sub: string;
  scope: string;
  /** The gateway resource (one mounted upstream): the tokens' only audience. */
  resource: string;
  /** Who the user is at the upstream, when the upstream tells. */
  identity?: UpstreamIdentity;
  /** When the user approved it (seconds): its absolute lifetime counts from here. Absent in records written before it existed. */
  grantedAt?: number;
}

/** U, sealed: what /mcp needs of the grant without a store read. */
interface SealedAccess {
  access_token: string;
  identity?: UpstreamIdentity;
}

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

/** RFC 6749 §5.1 */
export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token?: string;
  /** Omitted when nothing was granted: RFC 6749 §5.1 lets it go when it is what was asked for. */
  scope?: string;
}

export interface TokenContext {
  keys: Keys;
  store: Store;
  clock: Clock;
  issuer: string;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  /** Access tokens already verified and unsealed (absent: verify every time). */
  verified?: VerifiedTokens;
}

/**
 * Mint G~U and, with `refresh`, R~V. `endsAt`: when the grant ends (its absolute lifetime, seconds):
 * no token of it outlives that. /token always gives it.
 */
export async function issueTokens(
  ctx: TokenContext,
  grant: Grant,
  upstream: UpstreamTokens,
  opts: { refresh: boolean; endsAt?: number },
): Promise<TokenResponse> {
  const { scope } = grant;
  const now = nowSeconds(ctx.clock);
  const upstreamLeft = upstream.expires_at === undefined ? Infinity : upstream.expires_at - now;
  const grantLeft = opts.endsAt === undefined ? Infinity : opts.endsAt - now;
  const expiresIn = Math.max(1, Math.min(ctx.accessTokenTtl, upstreamLeft, grantLeft));
  const jti = randomToken(16);
  const claims: AccessTokenClaims = { sub: grant.sub, client_id: grant.clientId, scope, gid: grant.grantId, jti };
  const g = await signAccessToken(ctx.keys, claims, { issuer: ctx.issuer, audience: grant.resource, expiresAt: now + expiresIn, clock: ctx.clock });
  const sealed: SealedAccess = { access_token: upstream.access_token, ...(grant.identity ? { identity: grant.identity } : {}) };
  const u = await seal(ctx.keys, sealed, jti);
  const response: TokenResponse = { access_token: g + SEPARATOR + u, token_type: "Bearer", expires_in: expiresIn, ...(scope ? { scope } : {}) };
  if (!opts.refresh) return response;

  const r = randomToken(32);
  const rHash = sha256(r);
  const refreshLeft = upstream.refresh_expires_at === undefined ? Infinity : upstream.refresh_expires_at - now;
  const ttl = Math.max(1, Math.min(ctx.refreshTokenTtl, refreshLeft, grantLeft));
  const record: RefreshTokenRecord = {
    grantId: grant.grantId,
    clientId: grant.clientId,
    sub: grant.sub,
    scope: grant.scope,
    resource: grant.resource,
    ...(grant.identity ? { identity: grant.identity } : {}),
    grantedAt: grant.grantedAt ?? now,
    issuedAt: now,
    expiresAt: now + ttl,
  };
  await ctx.store.put(storeKey.refreshToken(rHash), record, ttl);
  response.refresh_token = r + SEPARATOR + (await seal(ctx.keys, upstream, rHash));
  return response;
}

const split = (token: string): [string, string] | undefined => {
  const parts = token.split(SEPARATOR);
  return parts.length === 2 && parts[0] && parts[1] ? [parts[0], parts[1]] : undefined;
};

export interface ValidatedAccess {
  claims: AccessTokenClaims & JWTPayload;
  /** Empty for an upstream called without the user's token (static credentials, or none). */
  upstreamAccessToken: string;
  identity?: UpstreamIdentity;
}

/**
 * Access tokens this process has verified, by their exact value: a client sends the same token on
 * every request for up to an hour, and its signature and seal cannot change meanwhile, so they are
 * checked once. Expiry and revocation are checked on every use. Bounded; the oldest entry goes first.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, ValidatedAccess & { audience: string }>();
  constructor(private readonly max = 10_000) {}

  get(token: string, audience: string, now: number): ValidatedAccess | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    // jose's rule (RFC 7519 §4.1.4): expired once now ≥ exp
    if (now >= entry.claims.exp!) return void this.entries.delete(token);
    return entry.audience === audience ? entry : undefined;
  }

  set(token: string, audience: string, access: ValidatedAccess): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { ...access, audience });
  }
}

/** Throws OAuthError invalid_token (401) for anything but a live token of ours for `audience` (or one of several). */
export async function validateAccessToken(ctx: TokenContext, token: string, audience: string | string[]): Promise<ValidatedAccess> {
  const cache = typeof audience === "string" ? ctx.verified : undefined;
  const known = cache?.get(token, audience as string, nowSeconds(ctx.clock));
  if (known) {
    if (await ctx.store.get(storeKey.revokedGrant(known.claims.gid))) throw invalidToken("The access token has been revoked.");
    return known;
  }
  const halves = split(token);
  if (!halves) throw invalidToken("The access token is not a token this gateway issued.");
  let claims: AccessTokenClaims & JWTPayload;
  try {
    claims = await verifyAccessToken(ctx.keys, halves[0], { issuer: ctx.issuer, audience, clock: ctx.clock });
  } catch (error) {
    const expired = (error as { code?: string }).code === "ERR_JWT_EXPIRED";
    throw invalidToken(expired ? "The access token has expired." : "The access token is invalid.");
  }
  if (await ctx.store.get(storeKey.revokedGrant(claims.gid))) throw invalidToken("The access token has been revoked.");
  try {
    const { access_token, identity } = await unseal<SealedAccess>(ctx.keys, halves[1], claims.jti);
    const access: ValidatedAccess = { claims, upstreamAccessToken: access_token, ...(identity ? { identity } : {}) };
    cache?.set(token, audience as string, access);
    return access;
  } catch {
    throw invalidToken("The access token is invalid.");
  }
}

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

/** `revoked:<grant id>`. `upstreamGivenBack`: the upstream was asked to revoke the grant's tokens as it ended. */
export interface RevokedGrant {
  revokedAt: number;
  upstreamGivenBack?: true;
}

/** Every access and refresh token of the grant is refused from now on (checked on each use), for as long as any of them can live. */
export async function revokeGrant(
  ctx: Pick<TokenContext, "store" | "clock" | "accessTokenTtl" | "refreshTokenTtl">,
  grantId: string,
  opts: { upstreamGivenBack?: boolean } = {},
): Promise<void> {
  const marker: RevokedGrant = { revokedAt: nowSeconds(ctx.clock), ...(opts.upstreamGivenBack ? { upstreamGivenBack: true } : {}) };
  await ctx.store.put(storeKey.revokedGrant(grantId), marker, Math.max(ctx.refreshTokenTtl, ctx.accessTokenTtl));
}

const invalidToken = (description: string) => new OAuthError("invalid_token", description, 401);
