import type { JWTPayload } from "jose";
import { nowSeconds } from "../clock.js";
import { unseal } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { storeKey } from "../store/store.js";
import type { UpstreamIdentity } from "../upstream/identity.js";
import { split, verifyAccessToken, type AccessTokenClaims, type SealedAccess, type TokenContext } from "./format.js";
import type { RevocationView } from "./revocations.js";

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

export interface ValidationContext extends TokenContext {
  /** Access tokens already verified and unsealed (absent: verify every time). */
  verified?: VerifiedTokens;
  /** The revoked grants this process holds (absent: the store is read for every token). */
  revocations?: RevocationView;
}

/** Throws OAuthError invalid_token (401) for anything but a live token of ours for `audience` (or one of several). */
export async function validateAccessToken(ctx: ValidationContext, token: string, audience: string | string[]): Promise<ValidatedAccess> {
  const cache = typeof audience === "string" ? ctx.verified : undefined;
  const known = cache?.get(token, audience as string, nowSeconds(ctx.clock));
  if (known) {
    // the view answers without a store round trip while it is current; otherwise the store does
    if (ctx.revocations?.revoked(known.claims.gid) ?? (await storedRevocation(ctx, known.claims.gid))) throw invalidToken("The access token has been revoked.");
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
  if (ctx.revocations?.revoked(claims.gid) ?? (await storedRevocation(ctx, claims.gid))) throw invalidToken("The access token has been revoked.");
  try {
    const { access_token, identity } = await unseal<SealedAccess>(ctx.keys, halves[1], claims.jti);
    const access: ValidatedAccess = { claims, upstreamAccessToken: access_token, ...(identity ? { identity } : {}) };
    cache?.set(token, audience as string, access);
    return access;
  } catch {
    throw invalidToken("The access token is invalid.");
  }
}

const storedRevocation = async (ctx: TokenContext, grantId: string): Promise<boolean> => (await ctx.store.get(storeKey.revokedGrant(grantId))) !== undefined;

const invalidToken = (description: string) => new OAuthError("invalid_token", description, 401);
