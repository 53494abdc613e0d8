import type { JWTPayload } from "jose";
import type { Clock } from "../clock.js";
import { signJwt, verifyJwt, type Keys } from "../crypto.js";
import type { Store } from "../store/store.js";
import type { UpstreamIdentity } from "../upstream/identity.js";

/**
 * The token format of DESIGN §3: `access_token = G "~" U`, `refresh_token = R "~" V`.
 * G is a JWT we sign; U and V are upstream tokens sealed under a gateway key and bound to G's jti
 * and to R's hash respectively; R is opaque and stored only as its hash.
 */
export const SEPARATOR = "~";

/** The two halves of `G~U` or `R~V`, or undefined for anything else. */
export const split = (token: string): [string, string] | undefined => {
  const parts = token.split(SEPARATOR);
  return parts.length === 2 && parts[0] && parts[1] ? [parts[0], parts[1]] : undefined;
};

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
export interface SealedAccess {
  access_token: string;
  identity?: UpstreamIdentity;
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

/** What issuing, looking up and revoking tokens work with. */
export interface TokenContext {
  keys: Keys;
  store: Store;
  clock: Clock;
  issuer: string;
  accessTokenTtl: number;
  refreshTokenTtl: number;
}

/** Claims of the gateway half (G) of an access token. */
export interface AccessTokenClaims {
  sub: string;
  client_id: string;
  scope: string;
  /** Grant id: every token of one authorization shares it; revocation is by grant. */
  gid: string;
  jti: string;
}

/** RFC 9068 §2.1 */
const ACCESS_TOKEN_TYP = "at+jwt";

export async function signAccessToken(
  keys: Keys,
  claims: AccessTokenClaims,
  opts: { issuer: string; audience: string; expiresAt: number; clock: Clock },
): Promise<string> {
  const iat = Math.floor(opts.clock.now() / 1000);
  return signJwt(keys, ACCESS_TOKEN_TYP, { ...claims, iss: opts.issuer, aud: opts.audience, iat, exp: opts.expiresAt });
}

/** Throws (a jose error) unless the token is ours, unexpired, for this audience (one of these), and well-formed. */
export async function verifyAccessToken(
  keys: Keys,
  token: string,
  opts: { issuer: string; audience: string | string[]; clock: Clock },
): Promise<AccessTokenClaims & JWTPayload> {
  const payload = await verifyJwt(keys, token, {
    typ: ACCESS_TOKEN_TYP,
    issuer: opts.issuer,
    audience: opts.audience,
    currentDate: new Date(opts.clock.now()),
    requiredClaims: ["exp", "sub", "jti"],
  });
  for (const claim of ["client_id", "scope", "gid", "jti", "sub", "aud"] as const)
    if (typeof payload[claim] !== "string") throw new TypeError(`access token without ${claim}`);
  return payload as AccessTokenClaims & JWTPayload;
}
