import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { deriveKeys } from "../../src/crypto.js";
import { OAuthError } from "../../src/errors.js";
import type { Grant, TokenContext } from "../../src/grants/format.js";
import { issueTokens } from "../../src/grants/issue.js";
import { findToken } from "../../src/grants/lookup.js";
import { REVOCATION_BOUND_MS, RevocationView } from "../../src/grants/revocations.js";
import { revokeGrant } from "../../src/grants/revoke.js";
import { validateAccessToken, VerifiedTokens, type ValidationContext } from "../../src/grants/validate.js";
import type { Logger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { storeKey } from "../../src/store/store.js";

const ISSUER = "https://gw.example.com";
const RESOURCE = `${ISSUER}/mcp`;
const GRANT: Grant = { grantId: "grant-1", clientId: "client-1", sub: "alice", scope: "", resource: RESOURCE };

/** A logger that keeps its lines. */
function lines(): Logger & { said: string[] } {
  const said: string[] = [];
  return { said, info: (m) => void said.push(`info ${m}`), warn: (m) => void said.push(`warn ${m}`), error: (m) => void said.push(`error ${m}`) };
}

async function world() {
  const clock = new ManualClock();
  const store = new MemoryStore(clock);
  const log = lines();
  const revocations = await RevocationView.start(store, { clock, log });
  const ctx: ValidationContext & TokenContext = {
    keys: deriveKeys("revocation-view-secret-0123456789abcdef"),
    store,
    clock,
    issuer: ISSUER,
    accessTokenTtl: 3600,
    refreshTokenTtl: 86_400,
    verified: new VerifiedTokens(),
    revocations,
  };
  const { access_token } = await issueTokens(ctx, GRANT, { access_token: "upstream" }, { refresh: false });
  return { clock, store, log, revocations, ctx, token: access_token };
}

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => "accepted",
    (e: unknown) => (e instanceof OAuthError ? `${e.code}: ${e.description}` : String(e)),
  );

describe("the revocation view (src/grants/revocations.ts)", () => {
  it("RU5 a grant revoked in this process is refused at its next use, verified-token cache hit or not", async () => {
    const { ctx, token } = await world();
    expect(await refusal(validateAccessToken(ctx, token, RESOURCE))).toBe("accepted");
    expect(await refusal(validateAccessToken(ctx, token, RESOURCE))).toBe("accepted"); // now from the cache
    await revokeGrant(ctx, GRANT.grantId);
    expect(await refusal(validateAccessToken(ctx, token, RESOURCE))).toBe("invalid_token: The access token has been revoked.");
    expect(await refusal(validateAccessToken({ ...ctx, verified: new VerifiedTokens() }, token, RESOURCE))).toMatch(/revoked/);
  });

  it("RU5 while current, /mcp's check is the view's alone: a marker the store holds but never published is not read", async () => {
    const { ctx, store, token } = await world();
    await validateAccessToken(ctx, token, RESOURCE);
    await store.put(storeKey.revokedGrant(GRANT.grantId), { revokedAt: 0 }, 60); // behind the view's back
    expect(await refusal(validateAccessToken(ctx, token, RESOURCE))).toBe("accepted");
    // /revoke and /introspect read the store itself
    expect(await findToken(ctx, token, [RESOURCE])).toBeUndefined();
  });

  it("RU5 a view that has lost its feed reads the store for every token (fail closed), and says so once", async () => {
    const { ctx, store, log, revocations, token } = await world();
    await validateAccessToken(ctx, token, RESOURCE);
    revocations.lost("the Redis subscription closed");
    await store.put(storeKey.revokedGrant(GRANT.grantId), { revokedAt: 0 }, 60); // the announcement that never came
    for (let i = 0; i < 3; i++) expect(await refusal(validateAccessToken(ctx, token, RESOURCE))).toMatch(/revoked/);
    expect(log.said.filter((l) => l.startsWith("warn"))).toEqual([
      "warn revocations: the local view cannot vouch for them (the Redis subscription closed): every /mcp request reads the store until it can",
    ]);
    revocations.current(performance.now());
    expect(log.said.at(-1)).toBe("info revocations: the local view is current again; /mcp checks it without a store read");
  });

  it("RU5 tells its listener of each grant the first time it learns the grant is revoked, not on a reload or a longer marker", async () => {
    const { ctx, revocations } = await world();
    const heard: string[] = [];
    revocations.onRevoked((grantId) => heard.push(grantId));
    await revokeGrant(ctx, GRANT.grantId);
    expect(heard).toEqual([GRANT.grantId]);
    revocations.record(storeKey.revokedGrant(GRANT.grantId), 10 * 86_400_000); // the same grant again (a reload), marked longer
    revocations.record(storeKey.revokedGrant("grant-2"), 60_000);
    revocations.record("client:not-a-revocation", 60_000);
    expect(heard).toEqual([GRANT.grantId, "grant-2"]);
  });

  it(`RU5 a view that hears nothing from its store for over ${REVOCATION_BOUND_MS} ms stops answering alone`, async () => {
    const clock = new ManualClock();
    const log = lines();
    const view = new RevocationView({ clock, log });
    expect(view.revoked("g")).toBeUndefined(); // never loaded
    view.current(performance.now());
    expect(view.revoked("g")).toBe(false);
    view.record(storeKey.revokedGrant("r"), 60_000);
    await new Promise((r) => setTimeout(r, REVOCATION_BOUND_MS + 100));
    expect(view.revoked("g")).toBeUndefined();
    expect(view.revoked("r")).toBe(true); // a revocation known is never undone
    expect(view.revoked("g")).toBeUndefined();
    const warnings = log.said.filter((l) => l.startsWith("warn")); // one per time it stopped vouching
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain("its first load has not finished");
    expect(warnings[1]).toContain(`no word from the store for over ${REVOCATION_BOUND_MS} ms (the store stopped confirming)`);
    clock.advance(60_001);
    view.current(performance.now());
    expect(view.revoked("r")).toBe(false); // its marker expired: as the store forgets it
  });
});
