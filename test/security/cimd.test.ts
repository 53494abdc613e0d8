import { describe, expect, it } from "vitest";
import { MIN_DOCUMENT_REUSE_SECONDS, resolveMetadataClient, STALE_IF_ERROR_SECONDS } from "../../src/as/cimd.js";
import { markClientUsed, type ClientRecord } from "../../src/as/clients.js";
import { ManualClock } from "../../src/clock.js";
import { OAuthError } from "../../src/errors.js";
import { MemoryStore } from "../../src/store/memory.js";
import { storeKey } from "../../src/store/store.js";
import { TestBrowser } from "../support/browser.js";
import { metadataDocument, type DocumentServer } from "../support/https.js";
import { REDIRECT_URI, authorizeUrl, tokenRequest } from "../support/oauth-steps.js";
import { pkce } from "../support/pkce.js";
import { LOGIN } from "../support/config.js";
import { authorizeWith, certificate, docs, expectRefused, guarded, privateFetching, publish, useCimdWorld } from "../support/cimd-world.js";

useCimdWorld();

describe("cimd", () => {
  it("MC10 a metadata document URL that points at a private address is never fetched", async () => {
    const gw = guarded.gateway.publicUrl;
    publish("/mc10/client.json");
    const before = docs.connections;
    for (const clientId of [
      `https://127.0.0.1:${docs.port}/mc10/client.json`,
      `https://localhost:${docs.port}/mc10/client.json`,
      `https://[::1]:${docs.port}/mc10/client.json`,
      `https://[::ffff:7f00:1]:${docs.port}/mc10/client.json`,
      `https://2130706433:${docs.port}/mc10/client.json`,
      `http://127.0.0.1:${docs.port}/mc10/client.json`,
    ])
      await expectRefused(gw, clientId);
    expect(docs.connections).toBe(before);

    // with private addresses allowed (tests only), the same document is fetched: the refusals above were the guard's
    const pgw = privateFetching.url;
    expect((await authorizeWith(pgw, publish("/mc10/client.json"))).toLogin).toBe(true);
    // no redirect is followed, not even to a document that would be valid
    const target = publish("/mc10/internal.json");
    const redirecting = publish("/mc10/redirect.json", { status: 302, headers: { location: target } });
    docs.serve("/mc10/internal.json", { body: metadataDocument(redirecting) });
    const page = await expectRefused(pgw, redirecting);
    expect(page.text).toContain("could not be fetched");
    expect([docs.hits("/mc10/redirect.json"), docs.hits("/mc10/internal.json")]).toEqual([1, 0]);
    // 5 KB at most, declared or streamed
    const big = publish("/mc10/big.json");
    docs.serve("/mc10/big.json", { body: metadataDocument(big, { padding: "x".repeat(6000) }) });
    await expectRefused(pgw, big);
    const streamed = publish("/mc10/streamed.json", (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(`{"client_id":${JSON.stringify(`${docs.origin}/mc10/streamed.json`)},"padding":"`);
      res.end(`${"x".repeat(6000)}"}`);
    });
    await expectRefused(pgw, streamed);
  });

  it("MC11 a metadata document that does not describe its own URL is refused", async () => {
    const gw = privateFetching.url;
    const forged: [string, (url: string) => unknown][] = [
      ["/mc11/other-id.json", () => metadataDocument(`${docs.origin}/mc11/someone-else.json`)],
      ["/mc11/no-id.json", (url) => ({ ...metadataDocument(url), client_id: undefined })],
      ["/mc11/basic.json", (url) => metadataDocument(url, { token_endpoint_auth_method: "client_secret_basic" })],
      ["/mc11/post.json", (url) => metadataDocument(url, { token_endpoint_auth_method: "client_secret_post" })],
      ["/mc11/jwt.json", (url) => metadataDocument(url, { token_endpoint_auth_method: "client_secret_jwt" })],
      ["/mc11/secret.json", (url) => metadataDocument(url, { client_secret: "s3cret" })],
      ["/mc11/javascript.json", (url) => metadataDocument(url, { redirect_uris: ["javascript:alert(1)"] })],
      ["/mc11/no-redirect.json", (url) => metadataDocument(url, { redirect_uris: [] })],
      ["/mc11/array.json", () => []],
      ["/mc11/text.json", () => "not json"],
    ];
    for (const [path, body] of forged) {
      const url = `${docs.origin}${path}`;
      docs.serve(path, { body: body(url) });
      await expectRefused(gw, url);
      expect(docs.hits(path), path).toBe(1);
    }
    // URLs that cannot name a document are refused without a request
    const valid = publish("/mc11/valid.json");
    const requests = docs.requests.length;
    for (const clientId of [
      `${docs.origin}/mc11/x/../valid.json`,
      `${docs.origin}/mc11/%2e%2e/mc11/valid.json`,
      `${valid}#fragment`,
      `https://user@127.0.0.1:${docs.port}/mc11/valid.json`,
      `${docs.origin}/`,
      `HTTPS://127.0.0.1:${docs.port}/mc11/valid.json`,
    ])
      await expectRefused(gw, clientId);
    expect(docs.requests.length).toBe(requests);

    // the document's redirect URIs are the only ones accepted
    const elsewhere = await authorizeWith(gw, valid, { redirect_uri: "https://evil.example/cb" });
    expect([elsewhere.status, elsewhere.location]).toEqual([400, undefined]);
    // and the honest document works end to end: Screen 1 names its host, the code is redeemed as a public client
    const browser = new TestBrowser();
    const screen1 = await browser.request((await authorizeWith(gw, valid, {}, browser)).location!);
    expect(screen1.text).toContain(`127.0.0.1:${docs.port}`);
    const { verifier, challenge } = pkce();
    const params = {
      response_type: "code",
      client_id: valid,
      redirect_uri: REDIRECT_URI,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "s",
    };
    const redirect = await browser.authorize(authorizeUrl(gw, params), { redirectUri: REDIRECT_URI, ...LOGIN });
    const token = await tokenRequest(gw, {
      grant_type: "authorization_code",
      code: redirect.searchParams.get("code")!,
      code_verifier: verifier,
      client_id: valid,
      redirect_uri: REDIRECT_URI,
    });
    expect(token.status).toBe(200);
    expect(token.body.access_token).toBeTruthy();
  });

  it("MC12 metadata documents are cached as their Cache-Control says and errors are not", async () => {
    const gw = privateFetching.url;
    const twice = async (url: string) => [(await authorizeWith(gw, url)).toLogin, (await authorizeWith(gw, url)).toLogin];
    const cases: [string, Record<string, string>, number][] = [
      ["/mc12/max-age.json", { "cache-control": "public, max-age=3600" }, 1],
      // none of these may be kept, yet each is reused for a minute (MC26)
      ["/mc12/no-store.json", { "cache-control": "no-store" }, 1],
      ["/mc12/no-cache.json", { "cache-control": "no-cache, max-age=3600" }, 1],
      ["/mc12/none.json", {}, 1],
      ["/mc12/garbage.json", { "cache-control": "max-age=soon" }, 1],
    ];
    for (const [path, headers, fetches] of cases) {
      expect(await twice(publish(path, { headers }))).toEqual([true, true]);
      expect([path, docs.hits(path)]).toEqual([path, fetches]);
    }
    // neither an error answer nor an invalid document is cached, whatever its Cache-Control
    const flaky = publish("/mc12/flaky.json", { status: 503, headers: { "cache-control": "max-age=3600" } });
    const invalid = publish("/mc12/invalid.json", { headers: { "cache-control": "max-age=3600" }, body: metadataDocument("https://other.example/c") });
    for (const url of [flaky, invalid]) {
      await expectRefused(gw, url);
      publish(new URL(url).pathname, { headers: { "cache-control": "max-age=3600" } });
      expect(await twice(url)).toEqual([true, true]);
      expect(docs.hits(new URL(url).pathname)).toBe(2);
    }

    // expiry, with the clock in hand: max-age as given, and never more than 24 hours
    const clock = new ManualClock();
    const deps = { store: new MemoryStore(clock), clock, policy: { redirectUriAllow: [] }, fetch: { allowPrivate: true, ca: certificate.cert } };
    const minute = publish("/mc12/minute.json", { headers: { "cache-control": "max-age=60" } });
    const year = publish("/mc12/year.json", { headers: { "cache-control": "max-age=31536000" } });
    const resolve = async (url: string) => (await resolveMetadataClient(url, deps)).client_id;
    expect([await resolve(minute), await resolve(year)]).toEqual([minute, year]);
    clock.advance(59_000);
    await Promise.all([resolve(minute), resolve(year)]);
    expect([docs.hits("/mc12/minute.json"), docs.hits("/mc12/year.json")]).toEqual([1, 1]);
    clock.advance(2_000);
    await Promise.all([resolve(minute), resolve(year)]);
    expect([docs.hits("/mc12/minute.json"), docs.hits("/mc12/year.json")]).toEqual([2, 1]);
    clock.advance(24 * 3600_000 - 62_000);
    await resolve(year);
    expect(docs.hits("/mc12/year.json")).toBe(1);
    clock.advance(2_000);
    await resolve(year);
    expect(docs.hits("/mc12/year.json")).toBe(2);
    // and the resolver refuses what the gateway refuses
    await expect(resolveMetadataClient(`${docs.origin}/mc12/missing.json`, deps)).rejects.toBeInstanceOf(OAuthError);
  });

  it("MC23 a document whose refetch fails is served stale for a bounded time, and logged", async () => {
    const clock = new ManualClock();
    const warnings: string[] = [];
    const deps = {
      store: new MemoryStore(clock),
      clock,
      policy: { redirectUriAllow: [] },
      fetch: { allowPrivate: true, ca: certificate.cert, timeoutMs: 500 },
      log: { warn: (line: string) => void warnings.push(line) },
    };
    const resolve = async (url: string) => (await resolveMetadataClient(url, deps)).client_id;
    const refused = (url: string) =>
      resolveMetadataClient(url, deps).then(
        () => "served",
        (error: OAuthError) => error.description,
      );
    const path = "/mc23/claude-code-client-metadata";
    const url = publish(path, { headers: { "cache-control": "max-age=3600" } });
    expect(await resolve(url)).toBe(url);
    const fetchedAt = clock.now();
    await markClientUsed(deps.store, (await deps.store.get<ClientRecord>(storeKey.client(url)))!); // in use, as claude.ai's is: kept a year

    // the cache has expired and every refetch fails, one way after another: the last good copy answers, each time logged
    const failures: [string, Parameters<DocumentServer["serve"]>[1]][] = [
      ["answered HTTP 403", { status: 403, body: "Just a moment..." }],
      ["answered HTTP 404", { status: 404, body: { error: "not found" } }],
      ["answered HTTP 503", { status: 503, body: "busy" }],
      ["no answer within 0.5 s", () => undefined],
      ["could not be fetched", (res) => void res.socket?.destroy()],
    ];
    clock.advance(3601_000);
    for (const [failure, answer] of failures) {
      docs.serve(path, answer);
      const hits = docs.hits(path);
      expect(await resolve(url)).toBe(url);
      expect(docs.hits(path)).toBe(hits + 1);
      expect(warnings.at(-1)).toContain(url);
      expect(warnings.at(-1)).toContain(failure);
      clock.advance(MIN_DOCUMENT_REUSE_SECONDS * 1000); // a copy served stale is reused for a minute (MC26)
    }
    expect(warnings).toHaveLength(failures.length);

    // up to 24 hours after the last good fetch, not a second longer; the client hears only that it could not be fetched (MC32)
    docs.serve(path, { status: 404, body: { error: "not found" } });
    clock.advance(fetchedAt + STALE_IF_ERROR_SECONDS * 1000 - clock.now());
    expect(await resolve(url)).toBe(url);
    clock.advance(1000);
    expect(await refused(url)).toBe(`The client metadata document at ${url} could not be fetched.`);
    expect(warnings).toHaveLength(failures.length + 2);
    expect(warnings.at(-1)).toContain("answered HTTP 404");

    // a good fetch starts the window again; a document that now answers but is invalid is not covered by a stale copy
    publish(path, { headers: { "cache-control": "max-age=60" } });
    expect(await resolve(url)).toBe(url);
    clock.advance(61_000);
    docs.serve(path, { body: metadataDocument("https://someone-else.example/client.json") });
    expect(await refused(url)).toContain("names a different client_id");
    // and a document never fetched has no copy to fall back on
    expect(await refused(publish("/mc23/never.json", { status: 403, body: "Just a moment..." }))).toMatch(/could not be fetched\.$/);
    expect(warnings.at(-1)).toContain("answered HTTP 403");
  });
});
