import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { ManualClock, nowSeconds } from "../../src/clock.js";
import { deriveKeys, sha256, type Keys } from "../../src/crypto.js";
import { OAuthError } from "../../src/errors.js";
import { MemoryStore } from "../../src/store/memory.js";
import { storeKey } from "../../src/store/store.js";
import { SEPARATOR, type Grant, type TokenContext, type UpstreamTokens } from "../../src/grants/format.js";
import { issueTokens } from "../../src/grants/issue.js";
import { liveRefreshToken, openRefreshToken } from "../../src/grants/lookup.js";
import { revokeGrant } from "../../src/grants/revoke.js";
import { validateAccessToken, VerifiedTokens } from "../../src/grants/validate.js";

const ISSUER = "https://gw.example.com";
const RESOURCE = `${ISSUER}/mcp`;
const OLD_SECRET = "old-secret-old-secret-old-secret-0";
const NEW_SECRET = "new-secret-new-secret-new-secret-1";
const GRANT: Grant = { grantId: "grant-1", clientId: "client-1", sub: "alice", scope: "repo read:user", resource: RESOURCE };
const UPSTREAM_AT = "gho_upstreamAccessToken1234567890";
const UPSTREAM_RT = "ghr_upstreamRefreshToken1234567890";

function context(
  keys: Keys = deriveKeys(NEW_SECRET),
  clock = new ManualClock(),
  store = new MemoryStore(clock),
): TokenContext & { clock: ManualClock; store: MemoryStore } {
  return { keys, store, clock, issuer: ISSUER, accessTokenTtl: 3600, refreshTokenTtl: 30 * 86_400 };
}

const upstream = (ctx: TokenContext, lifetimes: { access?: number; refresh?: number } = {}): UpstreamTokens => {
  const now = nowSeconds(ctx.clock);
  return {
    access_token: UPSTREAM_AT,
    refresh_token: UPSTREAM_RT,
    ...(lifetimes.access === undefined ? {} : { expires_at: now + lifetimes.access }),
    ...(lifetimes.refresh === undefined ? {} : { refresh_expires_at: now + lifetimes.refresh }),
    scope: "repo read:user",
  };
};

const failure = async (promise: Promise<unknown>): Promise<OAuthError> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OAuthError);
  return error as OAuthError;
};

describe("issueTokens (DESIGN §3)", () => {
  it("issues G~U: a gateway JWT with the grant's claims, then a sealed upstream half", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true });
    expect(tokens).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "repo read:user" });
    const [g, u, extra] = tokens.access_token.split(SEPARATOR);
    expect(extra).toBeUndefined();
    expect(decodeProtectedHeader(g!)).toMatchObject({ alg: "HS256", typ: "at+jwt" });
    expect(decodeJwt(g!)).toMatchObject({
      iss: ISSUER,
      aud: RESOURCE,
      sub: "alice",
      client_id: "client-1",
      scope: "repo read:user",
      gid: "grant-1",
      exp: nowSeconds(ctx.clock) + 3600,
    });
    expect(decodeProtectedHeader(u!)).toMatchObject({ alg: "dir", enc: "A256GCM" });
  });

  it("never shows the client a raw upstream token", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true });
    const visible = JSON.stringify(tokens);
    expect(visible).not.toContain(UPSTREAM_AT);
    expect(visible).not.toContain(UPSTREAM_RT);
  });

  it.each([
    ["the gateway TTL when the upstream token lives longer", 7200, 3600],
    ["the upstream's remaining lifetime when shorter", 600, 600],
    ["the gateway TTL when the upstream token does not expire", undefined, 3600],
  ])("sets expires_in to %s", async (_what, upstreamLifetime, expected) => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx, { access: upstreamLifetime }), { refresh: false });
    expect(tokens.expires_in).toBe(expected);
    expect(decodeJwt(tokens.access_token.split(SEPARATOR)[0]!).exp).toBe(nowSeconds(ctx.clock) + expected);
  });

  it("issues a refresh token only when asked", async () => {
    const ctx = context();
    expect(await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false })).not.toHaveProperty("refresh_token");
  });

  it("stores the refresh token only as its hash, holding no upstream token", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true });
    const [r] = tokens.refresh_token!.split(SEPARATOR);
    const record = await ctx.store.get(storeKey.refreshToken(sha256(r!)));
    expect(record).toMatchObject({ grantId: "grant-1", clientId: "client-1", sub: "alice", scope: "repo read:user", resource: RESOURCE });
    expect(JSON.stringify(record)).not.toContain(r!);
    expect(JSON.stringify(record)).not.toContain(UPSTREAM_AT);
    expect(JSON.stringify(record)).not.toContain(UPSTREAM_RT);
  });

  it("RU1 no token outlives the grant's end, and the refresh record carries when it was granted", async () => {
    const ctx = context();
    const grantedAt = nowSeconds(ctx.clock) - 1000;
    const endsAt = nowSeconds(ctx.clock) + 600;
    const tokens = await issueTokens(ctx, { ...GRANT, grantedAt }, upstream(ctx), { refresh: true, endsAt });
    expect(tokens.expires_in).toBe(600);
    expect(decodeJwt(tokens.access_token.split(SEPARATOR)[0]!).exp).toBe(endsAt);
    expect((await liveRefreshToken(ctx, tokens.refresh_token!))?.record).toMatchObject({ grantedAt, expiresAt: endsAt });
    ctx.clock.advance(601_000);
    expect(await liveRefreshToken(ctx, tokens.refresh_token!)).toBeUndefined();
  });
});

describe("validateAccessToken with the verified-token cache (the /mcp hot path)", () => {
  const cached = () => ({ ...context(), verified: new VerifiedTokens(2) });
  /** A context whose keys cannot verify anything: only the cache can answer. */
  const keysGone = (ctx: ReturnType<typeof cached>) => ({ ...ctx, keys: deriveKeys("an-unrelated-secret-an-unrelated-secret") });

  it("verifies a token once, then answers from the cache", async () => {
    const ctx = cached();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false });
    await expect(validateAccessToken(keysGone(ctx), tokens.access_token, RESOURCE)).rejects.toThrow(OAuthError);
    await validateAccessToken(ctx, tokens.access_token, RESOURCE);
    expect((await validateAccessToken(keysGone(ctx), tokens.access_token, RESOURCE)).upstreamAccessToken).toBe(UPSTREAM_AT);
  });

  it("still checks expiry, revocation and audience on every use", async () => {
    const ctx = cached();
    const short = await issueTokens(ctx, GRANT, upstream(ctx, { access: 120 }), { refresh: false });
    await validateAccessToken(ctx, short.access_token, RESOURCE);
    expect((await failure(validateAccessToken(ctx, short.access_token, "https://other.example/mcp"))).code).toBe("invalid_token");
    ctx.clock.advance(121_000);
    expect((await failure(validateAccessToken(ctx, short.access_token, RESOURCE))).description).toBe("The access token has expired.");

    const revoked = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false });
    await validateAccessToken(ctx, revoked.access_token, RESOURCE);
    await revokeGrant(ctx, GRANT.grantId);
    expect((await failure(validateAccessToken(ctx, revoked.access_token, RESOURCE))).description).toBe("The access token has been revoked.");
  });

  it("keeps a bounded number of tokens, dropping the oldest first", async () => {
    const ctx = cached();
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => issueTokens(ctx, GRANT, upstream(ctx), { refresh: false })));
    for (const t of [a!, b!, c!]) await validateAccessToken(ctx, t.access_token, RESOURCE);
    await expect(validateAccessToken(keysGone(ctx), a!.access_token, RESOURCE)).rejects.toThrow(OAuthError);
    await expect(validateAccessToken(keysGone(ctx), c!.access_token, RESOURCE)).resolves.toBeDefined();
  });
});

describe("validateAccessToken", () => {
  it("returns the claims and the unsealed upstream token", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false });
    const { claims, upstreamAccessToken } = await validateAccessToken(ctx, tokens.access_token, RESOURCE);
    expect(upstreamAccessToken).toBe(UPSTREAM_AT);
    expect(claims).toMatchObject({ sub: "alice", client_id: "client-1", gid: "grant-1" });
  });

  it("refuses the token once expired by the clock", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx, { access: 120 }), { refresh: false });
    ctx.clock.advance(60_000);
    await expect(validateAccessToken(ctx, tokens.access_token, RESOURCE)).resolves.toBeDefined();
    ctx.clock.advance(61_000);
    const error = await failure(validateAccessToken(ctx, tokens.access_token, RESOURCE));
    expect([error.code, error.status, error.description]).toEqual(["invalid_token", 401, "The access token has expired."]);
  });

  it("refuses another audience (RFC 8707)", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false });
    expect((await failure(validateAccessToken(ctx, tokens.access_token, "https://other.example/mcp"))).code).toBe("invalid_token");
  });

  it("refuses a token of another issuer", async () => {
    const ctx = context();
    const tokens = await issueTokens({ ...ctx, issuer: "https://other-gw.example" }, GRANT, upstream(ctx), { refresh: false });
    expect((await failure(validateAccessToken(ctx, tokens.access_token, RESOURCE))).code).toBe("invalid_token");
  });

  it("refuses a token whose grant was revoked", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false });
    await revokeGrant(ctx, GRANT.grantId);
    const error = await failure(validateAccessToken(ctx, tokens.access_token, RESOURCE));
    expect([error.code, error.status]).toEqual(["invalid_token", 401]);
  });

  it("refuses U from one token with G from another (the halves are bound by jti)", async () => {
    const ctx = context();
    const a = (await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false })).access_token.split(SEPARATOR);
    const b = (await issueTokens(ctx, GRANT, { access_token: "gho_someoneElse" }, { refresh: false })).access_token.split(SEPARATOR);
    expect((await failure(validateAccessToken(ctx, `${a[0]}${SEPARATOR}${b[1]}`, RESOURCE))).code).toBe("invalid_token");
  });

  it.each([
    ["G alone", (t: string) => t.split(SEPARATOR)[0]!],
    ["an extra separator", (t: string) => `${t}${SEPARATOR}x`],
    ["a tampered signature", (t: string) => t.replace(/\.([\w-])([\w-]*)~/, (_m, c: string, rest: string) => `.${c === "A" ? "B" : "A"}${rest}~`)],
    [
      "a tampered sealed half",
      (t: string) => t.replace(/(~[\w-]+\.[\w-]*\.[\w-]+\.)([\w-])/, (_m, head: string, c: string) => `${head}${c === "A" ? "B" : "A"}`),
    ],
    ["a raw upstream token", () => UPSTREAM_AT],
    ["an empty string", () => ""],
  ])("refuses %s", async (_what, mangle) => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false });
    const presented = mangle(tokens.access_token);
    expect(presented).not.toBe(tokens.access_token);
    expect((await failure(validateAccessToken(ctx, presented, RESOURCE))).code).toBe("invalid_token");
  });
});

describe("openRefreshToken and liveRefreshToken", () => {
  it("give back the grant and the upstream tokens, changing nothing", async () => {
    const ctx = context();
    const given = upstream(ctx, { access: 600, refresh: 86_400 });
    const tokens = await issueTokens(ctx, GRANT, given, { refresh: true });
    const live = await liveRefreshToken(ctx, tokens.refresh_token!);
    expect(live?.record).toMatchObject({ grantId: "grant-1", clientId: "client-1", sub: "alice", resource: RESOURCE });
    expect(live?.upstream).toEqual(given);
    expect(live?.tokenHash).toBe(sha256(tokens.refresh_token!.split(SEPARATOR)[0]!));
    expect(await liveRefreshToken(ctx, tokens.refresh_token!)).toEqual(live);
  });

  it("derive the holder secret from R itself, not from the hash the store keys it by", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true });
    const opened = await openRefreshToken(ctx, tokens.refresh_token!);
    expect(opened.holderSecret).not.toBe(opened.tokenHash);
    expect(ctx.store.size).toBe(1);
    expect(await ctx.store.get(storeKey.refreshToken(opened.holderSecret))).toBeUndefined();
  });

  it("find nothing live once the grant is revoked", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true });
    await revokeGrant(ctx, GRANT.grantId);
    expect(await liveRefreshToken(ctx, tokens.refresh_token!)).toBeUndefined();
  });

  it("find nothing live once the upstream refresh token has died", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx, { refresh: 3600 }), { refresh: true });
    ctx.clock.advance(3601_000);
    expect(await liveRefreshToken(ctx, tokens.refresh_token!)).toBeUndefined();
  });

  it("find nothing live after the gateway refresh TTL", async () => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true });
    ctx.clock.advance((ctx.refreshTokenTtl + 1) * 1000);
    expect(await liveRefreshToken(ctx, tokens.refresh_token!)).toBeUndefined();
  });

  it("refuse R with V from another refresh token (V is bound to R)", async () => {
    const ctx = context();
    const a = (await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true })).refresh_token!.split(SEPARATOR);
    const b = (await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true })).refresh_token!.split(SEPARATOR);
    expect((await failure(openRefreshToken(ctx, `${a[0]}${SEPARATOR}${b[1]}`))).code).toBe("invalid_grant");
    expect((await liveRefreshToken(ctx, a.join(SEPARATOR)))?.record.grantId).toBe(GRANT.grantId);
  });

  it.each([["R alone"], ["an access token"], ["garbage"]])("refuse %s", async (what) => {
    const ctx = context();
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: true });
    const presented = what === "R alone" ? tokens.refresh_token!.split(SEPARATOR)[0]! : what === "an access token" ? tokens.access_token : "x~y";
    expect((await failure(openRefreshToken(ctx, presented))).code).toBe("invalid_grant");
  });
});

describe("key rotation", () => {
  it("accepts tokens of a previous secret when that secret is kept for verification", async () => {
    const before = context(deriveKeys(OLD_SECRET));
    const tokens = await issueTokens(before, GRANT, upstream(before), { refresh: true });
    const after = { ...before, keys: deriveKeys(NEW_SECRET, [OLD_SECRET]) };
    expect((await validateAccessToken(after, tokens.access_token, RESOURCE)).upstreamAccessToken).toBe(UPSTREAM_AT);
    expect((await openRefreshToken(after, tokens.refresh_token!)).upstream.refresh_token).toBe(UPSTREAM_RT);
  });

  it("signs new tokens with the new secret only", async () => {
    const ctx = context(deriveKeys(NEW_SECRET, [OLD_SECRET]));
    const tokens = await issueTokens(ctx, GRANT, upstream(ctx), { refresh: false });
    expect((await validateAccessToken({ ...ctx, keys: deriveKeys(NEW_SECRET) }, tokens.access_token, RESOURCE)).upstreamAccessToken).toBe(UPSTREAM_AT);
    expect((await failure(validateAccessToken({ ...ctx, keys: deriveKeys(OLD_SECRET) }, tokens.access_token, RESOURCE))).code).toBe("invalid_token");
  });

  it("refuses tokens of a secret that was dropped", async () => {
    const before = context(deriveKeys(OLD_SECRET));
    const tokens = await issueTokens(before, GRANT, upstream(before), { refresh: true });
    const after = { ...before, keys: deriveKeys(NEW_SECRET) };
    expect((await failure(validateAccessToken(after, tokens.access_token, RESOURCE))).code).toBe("invalid_token");
    expect((await failure(openRefreshToken(after, tokens.refresh_token!))).code).toBe("invalid_grant");
  });
});
