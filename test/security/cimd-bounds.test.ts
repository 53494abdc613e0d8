import { describe, expect, it } from "vitest";
import { DOCUMENT_FETCH_RULES, MIN_DOCUMENT_REUSE_SECONDS, type MetadataDocumentDeps } from "../../src/as/cimd.js";
import { CLIENT_TTL_SECONDS, markClientUsed, type ClientRecord } from "../../src/as/clients.js";
import { registerClient } from "../../src/as/registration.js";
import { OAuthError } from "../../src/errors.js";
import { RATE_RULES } from "../../src/ratelimit.js";
import { addressProblem, FetchRefused, guardedFetch } from "../../src/fetch-guard.js";
import { storeKey } from "../../src/store/store.js";
import { TestBrowser } from "../support/browser.js";
import { metadataDocument, type DocumentServer } from "../support/https.js";
import { REDIRECT_URI } from "../support/oauth-steps.js";
import {
  authorizeWith,
  certificate,
  docs,
  expectRefused,
  guarded,
  onOtherHost,
  otherHost,
  privateFetching,
  publish,
  resolver,
  useCimdWorld,
  world,
} from "../support/cimd-world.js";

/** Client ID Metadata Documents: which addresses are never fetched, how fetching and clients are bounded, and what failures say. */
useCimdWorld();

describe("cimd", () => {
  it("MC10 an IPv6 address that carries a private IPv4 address, in any form, is never fetched", async () => {
    const forms = [
      "::ffff:127.0.0.1", // IPv4-mapped (::ffff:0:0/96), dotted and hex
      "::ffff:7f00:1",
      "0:0:0:0:0:ffff:a9fe:a9fe",
      "::ffff:0:7f00:1", // IPv4-translated (::ffff:0:0:0/96, RFC 2765)
      "::ffff:0:127.0.0.1",
      "::ffff:0:a00:1",
      "::7f00:1", // IPv4-compatible (::/96)
      "64:ff9b::7f00:1", // NAT64 (RFC 6052)
      "64:ff9b:1::a00:1",
      "2002:a9fe:a9fe::1", // 6to4
      "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo
      "2001:db9::5efe:a00:1", // ISATAP (RFC 5214)
      "2001:db9::200:5efe:c0a8:101",
    ];
    for (const address of forms) expect([address, addressProblem(address)]).toEqual([address, expect.any(String)]);
    // and no connection is tried when a name resolves to one of them
    const path = "/mc10/forms.json";
    const url = onOtherHost(path);
    const before = docs.connections;
    for (const address of forms) {
      const lookup = () => Promise.resolve([{ address, family: 6 }]);
      const refusal = await guardedFetch(url, { allowPrivate: false, ca: certificate.cert, lookup }).catch((error: unknown) => error);
      expect([address, refusal instanceof FetchRefused && refusal.message]).toEqual([
        address,
        expect.stringMatching(/^cimd\.test resolves to an? .* address$/),
      ]);
    }
    expect(docs.connections).toBe(before);
  });

  it("MC26 a client first named by a metadata document counts toward --max-clients and its address's registration limit", async () => {
    const { store, clock, deps, outcome } = resolver({ redirectUriAllow: [], maxClients: 3, unusedClientTtl: 3600 }, { address: "198.51.100.7" });
    const urls = [1, 2, 3, 4].map((i) => publish(`/mc26/cap-${i}.json`, { headers: { "cache-control": "max-age=3600" } }));
    for (const url of urls.slice(0, 3)) expect(await outcome(url)).toBe(url);
    expect(await outcome(urls[3]!)).toMatch(/^429 .*--max-clients/);
    expect(await store.get(storeKey.client(urls[3]!))).toBeUndefined();
    // a client already known is not new; registration shares the cap
    expect(await outcome(urls[0]!)).toBe(urls[0]);
    const registration = { store, clock, issuer: "https://gw.example", registration: deps.policy as Required<MetadataDocumentDeps["policy"]> };
    const registered = await registerClient({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" }, registration).catch((e: OAuthError) => e);
    expect((registered as OAuthError).status).toBe(429);

    // 60 new clients per 10 minutes from one address, as for /register, counted before anything is fetched
    const flood = resolver({ redirectUriAllow: [] }, { address: "198.51.100.8" });
    const many = Array.from({ length: 61 }, (_, i) => publish(`/mc26/address-${i}.json`));
    for (const url of many.slice(0, 60)) expect(await flood.outcome(url)).toBe(url);
    expect(await flood.outcome(many[60]!)).toMatch(/^429 Too many client registrations from this address/);
    expect(docs.hits("/mc26/address-60.json")).toBe(0);
    // another address may still bring a new client (from another host: this one's fetch budget is spent)
    const elsewhere = onOtherHost("/mc26/address-other.json");
    expect(await flood.outcome(elsewhere, { address: "198.51.100.9", fetch: { ...flood.deps.fetch, ...otherHost } })).toBe(elsewhere);
  });

  it("MC26 over HTTP, /authorize counts a client first named by a metadata document as a registration from the request's address", async () => {
    const gateway = await world.startGateway(["--trust-proxy", "loopback"]);
    try {
      const from = (address: string) => new TestBrowser({ "x-forwarded-for": address });
      // all but one of the address's registrations used at /register
      for (let i = 1; i < RATE_RULES.register.limit; i++) {
        const registered = await fetch(`${gateway.url}/register`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-forwarded-for": "198.51.100.20" },
          body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" }),
        });
        expect(registered.status).toBe(201);
      }
      const [first, second] = ["first", "second"].map((name) => publish(`/mc26-http/${name}.json`));
      expect((await authorizeWith(gateway.url, first!, {}, from("198.51.100.20"))).toLogin).toBe(true);
      const refused = await authorizeWith(gateway.url, second!, {}, from("198.51.100.20"));
      expect([refused.status, refused.location]).toEqual([429, undefined]);
      expect(refused.text).toContain("Too many client registrations from this address");
      expect(docs.hits("/mc26-http/second.json")).toBe(0);
      // another address may bring it
      expect((await authorizeWith(gateway.url, second!, {}, from("198.51.100.21"))).toLogin).toBe(true);
    } finally {
      await gateway.kill();
    }
  });

  it("MC26 a metadata-document client lives --unused-client-ttl until it redeems a code, and the long lifetime from then on", async () => {
    const { store, clock, outcome } = resolver({ redirectUriAllow: [], unusedClientTtl: 3600 });
    const unused = publish("/mc26/unused.json", { headers: { "cache-control": "max-age=600" } });
    const used = publish("/mc26/used.json", { headers: { "cache-control": "max-age=600" } });
    expect([await outcome(unused), await outcome(used)]).toEqual([unused, used]);
    clock.advance(1800_000);
    // resolving again does not renew the unused lifetime
    expect(await outcome(unused)).toBe(unused);
    await markClientUsed(store, (await store.get<ClientRecord>(storeKey.client(used)))!); // what /token does at the first redeemed code
    clock.advance(1801_000);
    expect(await store.get(storeKey.client(unused))).toBeUndefined();
    expect(await store.get(storeKey.client(used))).toMatchObject({ used: true });
    // once used, a refetched document keeps it used, for the long lifetime
    expect(await outcome(used)).toBe(used);
    expect(docs.hits("/mc26/used.json")).toBe(2);
    clock.advance((CLIENT_TTL_SECONDS - 60) * 1000);
    expect(await store.get(storeKey.client(used))).toMatchObject({ used: true, client_id: used });
  });

  it("MC26 refetching is bounded: a document is reused for at least 60 s, and fetches per URL and per host are limited", async () => {
    const { clock, outcome, warnings } = resolver();
    const noStore = publish("/mc26/no-store.json", { headers: { "cache-control": "no-store" } });
    const maxAge0 = publish("/mc26/max-age-0.json", { headers: { "cache-control": "max-age=0" } });
    for (let i = 0; i < 5; i++) expect([await outcome(noStore), await outcome(maxAge0)]).toEqual([noStore, maxAge0]);
    clock.advance((MIN_DOCUMENT_REUSE_SECONDS - 1) * 1000);
    await Promise.all([outcome(noStore), outcome(maxAge0)]);
    expect([docs.hits("/mc26/no-store.json"), docs.hits("/mc26/max-age-0.json")]).toEqual([1, 1]);
    clock.advance(2000);
    await Promise.all([outcome(noStore), outcome(maxAge0)]);
    expect([docs.hits("/mc26/no-store.json"), docs.hits("/mc26/max-age-0.json")]).toEqual([2, 2]);

    // a URL that fails is fetched at most 10 times per 10 minutes
    const failing = publish("/mc26/failing.json", { status: 503, body: "busy" });
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await outcome(failing));
    expect(answers.slice(0, 10).every((a) => a.startsWith("400 "))).toBe(true);
    expect(answers.slice(10).every((a) => a.startsWith("429 This client's metadata document was fetched too often"))).toBe(true);
    expect(docs.hits("/mc26/failing.json")).toBe(DOCUMENT_FETCH_RULES.url.limit);
    clock.advance(DOCUMENT_FETCH_RULES.url.windowSeconds * 1000);
    await outcome(failing);
    expect(docs.hits("/mc26/failing.json")).toBe(DOCUMENT_FETCH_RULES.url.limit + 1);

    // 60 fetches per host per 10 minutes, whatever the URLs; a known client is then served its last good copy
    const host = resolver(undefined, { fetch: { allowPrivate: true, ca: certificate.cert, ...otherHost } });
    const known = onOtherHost("/mc26/host-known.json", { headers: { "cache-control": "no-store" } });
    expect(await host.outcome(known)).toBe(known);
    const fetches = docs.requests.length;
    for (let i = 1; i < DOCUMENT_FETCH_RULES.host.limit; i++) await host.outcome(onOtherHost(`/mc26/host-${i}.json`, { status: 404 }));
    expect(docs.requests.length).toBe(fetches + DOCUMENT_FETCH_RULES.host.limit - 1);
    expect(await host.outcome(onOtherHost("/mc26/host-over.json"))).toMatch(/^429 Client metadata documents on this host were fetched too often/);
    // the budget is this address's: another address still brings that host's clients (no one spends a popular host's for all)
    const over = onOtherHost("/mc26/host-over.json");
    expect(await host.outcome(over, { address: "198.51.100.99" })).toBe(over);
    host.clock.advance((MIN_DOCUMENT_REUSE_SECONDS + 1) * 1000);
    expect(await host.outcome(known)).toBe(known);
    expect(docs.requests.length).toBe(fetches + DOCUMENT_FETCH_RULES.host.limit);
    expect(host.warnings.at(-1)).toMatch(/fetch budget is spent; serving the copy fetched 1 min ago/);
    // the other host is not held back
    expect(await outcome(publish("/mc26/first-host.json"))).toBe(`${docs.origin}/mc26/first-host.json`);
    expect(warnings.at(-1)).toMatch(/failing\.json answered HTTP 503$/);
  });

  it("MC28 a metadata document naming a redirect URI on the gateway is refused", async () => {
    const gw = privateFetching.url;
    const own = publish("/mc28/own.json", { body: metadataDocument(`${docs.origin}/mc28/own.json`, { redirect_uris: [`${gw}/login?request=x`] }) });
    const port = new URL(gw).port;
    const alias = publish("/mc28/alias.json", { body: metadataDocument(`${docs.origin}/mc28/alias.json`, { redirect_uris: [`http://localhost:${port}/cb`] }) });
    for (const url of [own, alias]) expect((await expectRefused(gw, url)).text).toContain("own address");
    // the control: the same document with another port is a client
    const fine = publish("/mc28/fine.json", {
      body: metadataDocument(`${docs.origin}/mc28/fine.json`, { redirect_uris: [`http://localhost:${Number(port) + 1}/cb`] }),
    });
    const control = await authorizeWith(gw, fine, { redirect_uri: `http://localhost:${Number(port) + 1}/cb` });
    expect(control.toLogin).toBe(true);
  });

  it("MC32 every failed fetch of a metadata document tells the client the same, and only the log says why", async () => {
    const { outcome, warnings } = resolver();
    const failures: [string, Parameters<DocumentServer["serve"]>[1], string][] = [
      ["/mc32/404.json", { status: 404, body: { error: "not found" } }, "answered HTTP 404"],
      ["/mc32/503.json", { status: 503, body: "busy" }, "answered HTTP 503"],
      ["/mc32/redirect.json", { status: 302, headers: { location: "/mc32/elsewhere.json" } }, "redirect"],
      ["/mc32/silent.json", () => undefined, "no answer within"],
      ["/mc32/reset.json", (res) => void res.socket?.destroy(), "could not be reached"],
      ["/mc32/large.json", { body: { padding: "x".repeat(6000) } }, "larger than"],
      ["/mc32/html.json", { body: "<html>hello</html>" }, "not a JSON object"],
      ["/mc32/array.json", { body: [1, 2] }, "not a JSON object"],
    ];
    const answers: string[] = [];
    for (const [path, answer, detail] of failures) {
      const url = publish(path, answer);
      answers.push((await outcome(url)).replace(url, "<url>"));
      expect(warnings.at(-1)).toContain(detail);
    }
    // refused before any connection: a private address, a name that does not resolve
    const unresolvable = { fetch: { allowPrivate: false, lookup: () => Promise.reject(new Error("ENOTFOUND")) } };
    answers.push((await outcome(publish("/mc32/private.json"), { fetch: { allowPrivate: false } })).replace(`${docs.origin}/mc32/private.json`, "<url>"));
    expect(warnings.at(-1)).toContain("loopback");
    answers.push((await outcome("https://nowhere.invalid/mc32.json", unresolvable)).replace("https://nowhere.invalid/mc32.json", "<url>"));
    expect(warnings.at(-1)).toContain("does not resolve");
    expect(new Set(answers)).toEqual(new Set(["400 The client metadata document at <url> could not be fetched."]));

    // through the gateway: the page says no more than that
    const gw = guarded.gateway.publicUrl;
    for (const clientId of [`https://127.0.0.1:${docs.port}/mc32/private.json`, "https://nowhere.invalid/mc32.json"]) {
      const page = await expectRefused(gw, clientId);
      expect(page.text).toContain("could not be fetched");
      expect(page.text).not.toMatch(/loopback|resolve|reach|HTTP \d/);
    }
  });
});
