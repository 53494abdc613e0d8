import { randomToken, seal, sha256, unseal } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { storeKey } from "../store/store.js";
import type { UpstreamIdentity } from "../upstream/identity.js";
import type { TokenContext, UpstreamTokens } from "./format.js";
import { revokeGrant } from "./revoke.js";

/** A gateway authorization code's record (stored under `code:<hash>`), minted at /upstream/callback. */
export interface CodeRecord {
  clientId: string;
  redirectUri: string;
  redirectUriGiven: boolean;
  codeChallenge: string;
  resource: string;
  scope: string;
  sub: string;
  identity?: UpstreamIdentity;
  /** The upstream tokens, sealed and bound to the code's hash. */
  sealedUpstream: string;
}

export const CODE_TTL = 60;

/** What of the authorization request a code remembers. */
export type CodeRequest = Pick<CodeRecord, "clientId" | "redirectUri" | "redirectUriGiven" | "codeChallenge" | "resource"> & { scope?: string };

/** A gateway code: single use, short-lived, holding the upstream tokens sealed to it. */
export async function issueCode(
  ctx: Pick<TokenContext, "store" | "keys">,
  request: CodeRequest,
  sub: string,
  upstream: UpstreamTokens,
  identity?: UpstreamIdentity,
  ttl = CODE_TTL,
): Promise<string> {
  const code = randomToken(32);
  const codeHash = sha256(code);
  const record: CodeRecord = {
    clientId: request.clientId,
    redirectUri: request.redirectUri,
    redirectUriGiven: request.redirectUriGiven,
    codeChallenge: request.codeChallenge,
    resource: request.resource,
    scope: request.scope ?? "",
    sub,
    ...(identity ? { identity } : {}),
    sealedUpstream: await seal(ctx.keys, upstream, codeHash),
  };
  await ctx.store.put(storeKey.code(codeHash), record, ttl);
  return code;
}

/** A code taken from the store, and the id of the grant it starts. */
export interface RedeemedCode {
  record: CodeRecord;
  codeHash: string;
  grantId: string;
}

/** Take the code (single use) and remember it was used, with the grant it starts, for as long as that grant's refresh tokens can live. */
export async function redeemCode(ctx: Pick<TokenContext, "store" | "clock" | "accessTokenTtl" | "refreshTokenTtl">, code: string): Promise<RedeemedCode> {
  const codeHash = sha256(code);
  const record = await ctx.store.take<CodeRecord>(storeKey.code(codeHash));
  if (!record) {
    // OAuth 2.1 §4.1.3: a replayed code revokes the tokens it issued
    const used = await ctx.store.get<{ grantId: string }>(storeKey.usedCode(codeHash));
    if (used) await revokeGrant(ctx, used.grantId);
    throw new OAuthError("invalid_grant", "The authorization code is invalid, expired or already used.");
  }
  const grantId = randomToken(16);
  await ctx.store.put(storeKey.usedCode(codeHash), { grantId }, ctx.refreshTokenTtl);
  return { record, codeHash, grantId };
}

/** The upstream tokens a redeemed code holds. */
export const codeUpstream = (ctx: Pick<TokenContext, "keys">, redeemed: RedeemedCode): Promise<UpstreamTokens> =>
  unseal<UpstreamTokens>(ctx.keys, redeemed.record.sealedUpstream, redeemed.codeHash);
