import { describe, expect, it } from "vitest";
import { STALE_IF_ERROR_SECONDS } from "../../src/as/cimd.js";
import { JWKS_REFETCH_COOLDOWN_SECONDS } from "../../src/as/client-keys.js";
import { ManualClock, nowSeconds } from "../../src/clock.js";
import { metadataDocument } from "../support/https.js";
import {
  assertion,
  assertionForm,
  type AssertionOptions,
  attacker,
  authenticates,
  authenticator,
  chatgpt,
  chatgptEc,
  docs,
  gw,
  introduce,
  type KeyPair,
  keyPair,
  publishChatGpt,
  unsecured,
  useAssertionWorld,
  world,
} from "../support/assertion-world.js";

/** private_key_jwt: fetching, caching and refetching the key set and the document it comes from (test/support/assertion-world.ts). */
useAssertionWorld();

describe("client-assertion", () => {
  it("MC22 a kid the cached key set lacks refetches it at most once per cooldown: rotation works, hammering does not", async () => {
    const clock = new ManualClock();
    const { introduce, authenticate: as } = authenticator(clock, { allowPrivate: true, ca: world.certificate.cert });
    const path = "/oauth/mc22/jwks.json";
    const client = await introduce(publishChatGpt("mc22", {}, [chatgpt.jwk], { "cache-control": "max-age=3600" }));
    const authenticate = (o: AssertionOptions) => as(client.client_id, o);
    expect(await authenticate({})).toBe("authenticated");
    expect(docs.hits(path)).toBe(1);

    // the client rotates to a new key; the cached set (fetched just now) does not know it yet
    const rotated = await keyPair("RS256", "chatgpt-2");
    docs.serve(path, { body: { keys: [chatgpt.jwk, rotated.jwk] }, headers: { "cache-control": "max-age=3600" } });
    expect(await authenticate({ key: rotated.privateKey, kid: "chatgpt-2" })).toBe("invalid_client");
    expect(docs.hits(path)).toBe(1);
    clock.advance(JWKS_REFETCH_COOLDOWN_SECONDS * 1000);
    expect(await authenticate({ key: rotated.privateKey, kid: "chatgpt-2" })).toBe("authenticated");
    expect(docs.hits(path)).toBe(2);

    // unknown kids, however many, cost one fetch per cooldown
    for (let i = 0; i < 5; i++) expect(await authenticate({ key: attacker.privateKey, kid: `forged-${i}` })).toBe("invalid_client");
    expect(docs.hits(path)).toBe(2);
    clock.advance(JWKS_REFETCH_COOLDOWN_SECONDS * 1000);
    for (let i = 0; i < 5; i++) expect(await authenticate({ key: attacker.privateKey, kid: `forged-${i}` })).toBe("invalid_client");
    expect(docs.hits(path)).toBe(3);
    // a known kid never refetches
    clock.advance(JWKS_REFETCH_COOLDOWN_SECONDS * 1000);
    expect(await authenticate({ key: attacker.privateKey, kid: "chatgpt-2" })).toBe("invalid_client");
    expect(await authenticate({})).toBe("authenticated");
    expect(docs.hits(path)).toBe(3);
  });
  it("MC22 an assertion that fails any check but its signature fetches nothing; forged ones fetch a key set served without max-age once per cooldown", async () => {
    const clock = new ManualClock();
    const { introduce, authenticate } = authenticator(clock, { allowPrivate: true, ca: world.certificate.cert });
    const path = "/oauth/mc22-unsigned/jwks.json";
    const { client_id: clientId } = await introduce(publishChatGpt("mc22-unsigned", {}, [chatgpt.jwk])); // the key set has no Cache-Control
    const now = nowSeconds(clock);
    const hs256 = new TextEncoder().encode("a shared secret the client never had".padEnd(32, "!"));
    const garbage: [string, AssertionOptions | string][] = [
      ["HS256", { key: hs256, alg: "HS256" }],
      ["alg none", unsecured(clientId)],
      ["ES256 where the client declared RS256", { key: chatgptEc.privateKey, alg: "ES256", kid: "chatgpt-ec" }],
      ["another issuer", { iss: `${docs.origin}/oauth/other/client.json` }],
      ["another subject", { sub: `${docs.origin}/oauth/other/client.json` }],
      ["another audience", { aud: "https://other-gateway.example/token" }],
      ["two audiences", { aud: [`${gw}/token`, gw] }],
      ["no exp", { exp: null }],
      ["expired", { exp: now - 120 }],
      ["an hour to live", { exp: now + 3600 }],
      ["no jti", { jti: null }],
      ["not a JWT", "not-a-jwt"],
    ];
    for (const [name, o] of garbage) expect([name, await authenticate(clientId, o)]).toEqual([name, "invalid_client"]);
    expect(docs.hits(path)).toBe(0);

    // well-formed assertions signed by someone else: one fetch, and the set is kept for the cooldown although served without max-age
    const forge = async (round: number) => {
      for (let i = 0; i < 10; i++) expect(await authenticate(clientId, { key: attacker.privateKey, kid: `forged-${round}-${i}` })).toBe("invalid_client");
    };
    await forge(1);
    expect(docs.hits(path)).toBe(1);
    expect(await authenticate(clientId)).toBe("authenticated");
    expect(docs.hits(path)).toBe(1);
    clock.advance(JWKS_REFETCH_COOLDOWN_SECONDS * 1000);
    await forge(2);
    expect(docs.hits(path)).toBe(2);
  });

  it("MC24 a rotated key or a moved jwks_uri is honoured at /token once the document's cache lifetime is over, and the old key refused", async () => {
    const [k1, k2] = await Promise.all([keyPair("RS256", "k1"), keyPair("RS256", "k2")]);
    const signedWith = async (clientId: string, key: KeyPair) => assertionForm(await assertion(clientId, { key: key.privateKey, kid: key.jwk.kid! }));
    const briefly = { "cache-control": "max-age=1" };
    const outlive = () => new Promise((resolve) => setTimeout(resolve, 1100));

    // inline keys: k1, then k2
    const inline = publishChatGpt("mc24-inline", { jwks_uri: undefined, jwks: { keys: [k1.jwk] } }, [], {}, briefly);
    await introduce(inline, "mc24-inline");
    expect(await authenticates(await signedWith(inline, k1))).toBe("authenticated");
    publishChatGpt("mc24-inline", { jwks_uri: undefined, jwks: { keys: [k2.jwk] } }, [], {}, briefly);
    await outlive();
    expect(await authenticates(await signedWith(inline, k2))).toBe("authenticated");
    expect(await authenticates(await signedWith(inline, k1))).toBe("400 invalid_client");
    // /revoke authenticates the same way
    const revoke = await fetch(`${gw}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: "anything", ...(await signedWith(inline, k1)) }).toString(),
    });
    expect(revoke.status).toBe(400);

    // a jwks_uri moved to a set holding k2 only, the old set still cached for an hour
    const keySet = (name: string, key: KeyPair) => {
      docs.serve(`/oauth/mc24-uri/${name}.json`, { body: { keys: [key.jwk] }, headers: { "cache-control": "max-age=3600" } });
      return `${docs.origin}/oauth/mc24-uri/${name}.json`;
    };
    const moved = publishChatGpt("mc24-uri", { jwks_uri: keySet("old", k1) }, [], {}, briefly);
    await introduce(moved, "mc24-uri");
    expect(await authenticates(await signedWith(moved, k1))).toBe("authenticated");
    publishChatGpt("mc24-uri", { jwks_uri: keySet("new", k2) }, [], {}, briefly);
    await outlive();
    expect(await authenticates(await signedWith(moved, k2))).toBe("authenticated");
    expect(await authenticates(await signedWith(moved, k1))).toBe("400 invalid_client");
  });

  it("MC24 a document whose refetch fails is refused at /token once its last good copy is past the stale bound", async () => {
    const clock = new ManualClock();
    const { introduce, authenticate, refusal } = authenticator(clock, { allowPrivate: true, ca: world.certificate.cert });
    const hour = { "cache-control": "max-age=3600" };
    const { client_id: clientId } = await introduce(publishChatGpt("mc24-stale", {}, [chatgpt.jwk], hour, hour));
    expect(await authenticate(clientId)).toBe("authenticated");
    docs.serve("/oauth/mc24-stale/client.json", { status: 503, body: "busy" });
    clock.advance((STALE_IF_ERROR_SECONDS - 1) * 1000);
    expect(await authenticate(clientId)).toBe("authenticated"); // the last good copy, under 24 h old
    expect(docs.hits("/oauth/mc24-stale/client.json")).toBe(2);
    clock.advance(2000);
    expect(await refusal(clientId)).toBe(`The client metadata document at ${clientId} could not be fetched.`);
  });

  it("MC24 a public metadata-document client is the copy /authorize kept: /token fetches nothing, so a document host that refuses the gateway never ends its refreshes", async () => {
    const clock = new ManualClock();
    const { introduce, authenticatePublic } = authenticator(clock, { allowPrivate: true, ca: world.certificate.cert });
    const path = "/oauth/mc24-public/claude-code-client-metadata";
    const url = `${docs.origin}${path}`;
    docs.serve(path, {
      headers: { "cache-control": "max-age=3600" },
      body: metadataDocument(url, { client_name: "Claude Code", redirect_uris: ["http://localhost/callback"], token_endpoint_auth_method: "none" }),
    });
    await introduce(url);
    docs.serve(path, { status: 403, body: "Just a moment..." }); // claude.ai's documents have met datacenter fetches so
    clock.advance((STALE_IF_ERROR_SECONDS + 3600) * 1000);
    expect(await authenticatePublic(url)).toBe("authenticated");
    expect(docs.hits(path)).toBe(1);
  });
});
