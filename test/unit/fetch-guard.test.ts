import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientIdUrlProblem } from "../../src/as/cimd.js";
import { addressProblem, cacheLifetime, fetchDocument, FetchRefused, guardedFetch, httpsUrlProblem } from "../../src/fetch-guard.js";
import { selfSignedCertificate, startDocumentServer, type DocumentServer, type TestCertificate } from "../support/https.js";

describe("addressProblem (SSRF guard)", () => {
  it.each([
    ["127.0.0.1", "a loopback"],
    ["127.255.0.9", "a loopback"],
    ["10.0.0.1", "a private"],
    ["172.16.5.4", "a private"],
    ["192.168.1.1", "a private"],
    ["169.254.169.254", "a link-local"],
    ["100.64.0.1", "a shared (CGNAT)"],
    ["0.0.0.0", "an unspecified"],
    ["224.0.0.1", "a multicast"],
    ["255.255.255.255", "a reserved or broadcast"],
    ["::1", "a loopback"],
    ["::", "an unspecified"],
    ["::ffff:10.0.0.1", "a private"],
    ["::ffff:127.0.0.1", "a loopback"],
    ["::ffff:a9fe:a9fe", "a link-local"],
    ["fd00::1", "a unique-local"],
    ["fe80::1", "a link-local"],
    ["ff02::1", "a multicast"],
    ["64:ff9b::a00:1", "a private"],
    ["2002:7f00:1::1", "a loopback"],
    ["not an address", "an invalid"],
  ])("refuses %s (%s)", (address, kind) => {
    expect(addressProblem(address)).toBe(kind);
  });

  it.each(["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::6810:84e5", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"])(
    "accepts the public address %s",
    (address) => {
      expect(addressProblem(address)).toBeUndefined();
    },
  );
});

describe("guardedFetch", () => {
  let certificate: TestCertificate;
  let docs: DocumentServer;
  beforeAll(async () => {
    certificate = selfSignedCertificate();
    docs = await startDocumentServer(certificate);
    docs.serve("/doc.json", { body: { ok: true } });
  });
  afterAll(async () => {
    await docs.close();
    certificate.remove();
  });

  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => "fetched",
      (e: unknown) => (e instanceof FetchRefused ? e.message : `other: ${String(e)}`),
    );

  it("connects to the address it checked, never asking DNS again (no rebinding gap)", async () => {
    let lookups = 0;
    const lookup = async () => {
      lookups++;
      return lookups === 1 ? [{ address: "127.0.0.1", family: 4 }] : [{ address: "10.9.9.9", family: 4 }];
    };
    const response = await guardedFetch(`https://cimd.test:${docs.port}/doc.json`, { allowPrivate: true, ca: certificate.cert, lookup });
    expect([response.status, JSON.parse(response.body)]).toEqual([200, { ok: true }]);
    expect(lookups).toBe(1);
  });

  it("refuses a name when any of its addresses is private, before connecting", async () => {
    const before = docs.connections;
    const lookup = async () => [
      { address: "93.184.216.34", family: 4 },
      { address: "127.0.0.1", family: 4 },
    ];
    expect(await refusal(guardedFetch(`https://cimd.test:${docs.port}/doc.json`, { allowPrivate: false, ca: certificate.cert, lookup }))).toMatch(/loopback/);
    expect(docs.connections).toBe(before);
  });

  it("fetches https only, and checks the certificate even when private addresses are allowed", async () => {
    expect(await refusal(guardedFetch(`http://127.0.0.1:${docs.port}/doc.json`, { allowPrivate: true }))).toMatch(/https/);
    expect(await refusal(guardedFetch(`${docs.origin}/doc.json`, { allowPrivate: true }))).toMatch(/could not be reached/);
  });

  it("gives up after its time limit", async () => {
    const silent = createServer({ key: certificate.key, cert: certificate.cert }, () => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const started = Date.now();
    const url = `https://127.0.0.1:${(silent.address() as AddressInfo).port}/doc.json`;
    expect(await refusal(guardedFetch(url, { allowPrivate: true, ca: certificate.cert, timeoutMs: 300 }))).toMatch(/within/);
    expect(Date.now() - started).toBeLessThan(3000);
    silent.closeAllConnections();
    silent.close();
  });

  it("fetchDocument gives the 200 body with its cache lifetime, or why there is none", async () => {
    const guard = { allowPrivate: true, ca: certificate.cert };
    docs.serve("/kept.json", { body: { ok: 1 }, headers: { "cache-control": "max-age=60" } });
    docs.serve("/moved.json", { status: 301, headers: { location: `${docs.origin}/doc.json` } });
    expect(await fetchDocument(`${docs.origin}/kept.json`, guard)).toEqual({ body: '{"ok":1}', lifetime: 60 });
    expect(await fetchDocument(`${docs.origin}/doc.json`, guard)).toEqual({ body: '{"ok":true}', lifetime: 0 });
    expect(await fetchDocument(`${docs.origin}/moved.json`, guard)).toBe("answered with a redirect (HTTP 301), which is not followed");
    expect(await fetchDocument(`${docs.origin}/missing.json`, guard)).toBe("answered HTTP 404");
    expect(await fetchDocument(`${docs.origin}/doc.json`, { allowPrivate: false })).toMatch(/^could not be fetched: .*loopback/);
  });
});

describe("httpsUrlProblem", () => {
  it.each([
    ["https://keys.example/jwks.json", undefined],
    ["http://keys.example/jwks.json", "must be an https URL"],
    ["https://u:p@keys.example/jwks.json", "must not contain userinfo"],
    ["https://keys.example/jwks.json#k", "must not contain a fragment"],
    ["https://keys.example/jwks.json#", "must not contain a fragment"],
    ["not a url", "is not a URL"],
    [`https://keys.example/${"x".repeat(100)}`, "must be a URL of at most 100 characters"],
    [42, "must be a URL of at most 100 characters"],
  ])("%j: %s", (value, problem) => {
    expect(httpsUrlProblem(value, 100)).toBe(problem);
  });
});

describe("clientIdUrlProblem (CIMD draft §3)", () => {
  it.each(["https://client.example/oauth/client.json", "https://client.example:8443/c", "https://client.example/c?v=1"])("accepts %s", (url) => {
    expect(clientIdUrlProblem(url)).toBeUndefined();
  });

  it.each([
    ["http", "http://client.example/c.json"],
    ["no path", "https://client.example"],
    ["the root path", "https://client.example/"],
    ["a fragment", "https://client.example/c.json#x"],
    ["userinfo", "https://u:p@client.example/c.json"],
    ["a dot segment", "https://client.example/a/./c.json"],
    ["a double-dot segment", "https://client.example/a/../c.json"],
    ["an encoded double-dot segment", "https://client.example/a/%2E%2e/c.json"],
    ["an upper-case host", "https://Client.example/c.json"],
    ["a default port", "https://client.example:443/c.json"],
    ["not a URL", "https://"],
  ])("refuses %s", (_what, url) => {
    expect(clientIdUrlProblem(url)).toEqual(expect.any(String));
  });
});

describe("cacheLifetime (RFC 9111 §5.2.2)", () => {
  it.each([
    [undefined, 0],
    ["max-age=300", 300],
    ["public, max-age=300", 300],
    ["Max-Age=300", 300],
    [["public", "max-age=60"], 60],
    ["max-age=999999", 86400],
    ["no-store, max-age=300", 0],
    ["no-cache, max-age=300", 0],
    ["max-age=-1", 0],
    ["max-age=1e3", 0],
    ["private", 0],
  ])("reads %j as %i seconds", (header, seconds) => {
    expect(cacheLifetime(header)).toBe(seconds);
  });
});
