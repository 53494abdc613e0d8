import { afterAll, beforeAll, expect } from "vitest";
import { resolveMetadataClient, type MetadataDocumentDeps } from "../../src/as/cimd.js";
import { ManualClock } from "../../src/clock.js";
import type { OAuthError } from "../../src/errors.js";
import { MemoryStore } from "../../src/store/memory.js";
import { TestBrowser } from "./browser.js";
import { metadataDocument, type DocumentServer, type TestCertificate } from "./https.js";
import { startMetadataWorld, type MetadataWorld } from "./metadata-world.js";
import { clientAuthorizeUrl } from "./oauth-steps.js";
import type { GatewayProcess } from "./processes.js";
import { startStack, type Stack } from "./stack.js";

export let certificate: TestCertificate;
export let docs: DocumentServer;
/** A gateway process that trusts the test certificate and may fetch from loopback (`--allow-private-fetch true`). */
export let privateFetching: GatewayProcess;
/** An in-process gateway with the production default: no private addresses. */
export let guarded: Stack;

/** The document server, the simulator, and the gateway processes that fetch from them. */
export let world: MetadataWorld;

/** The document server, a gateway process that fetches from it, and an in-process gateway, for the tests of the calling file. */
export function useCimdWorld(): void {
  beforeAll(async () => {
    world = await startMetadataWorld();
    ({ certificate, docs } = world);
    privateFetching = await world.startGateway();
    guarded = await startStack();
  });
  afterAll(async () => {
    await guarded?.close();
    await world?.close();
  });
}

/** Publish a document at `path` (by default a valid one describing its own URL); its client_id URL. */
export function publish(path: string, answer: Parameters<DocumentServer["serve"]>[1] = {}): string {
  const url = `${docs.origin}${path}`;
  docs.serve(path, typeof answer === "function" ? answer : { body: metadataDocument(url), ...answer });
  return url;
}

/** /authorize for a client_id URL: either on to Screen 1 (302 to /login) or a local error page. */
export async function authorizeWith(gw: string, clientId: string, extra: Record<string, string> = {}, browser = new TestBrowser()) {
  const page = await browser.request(clientAuthorizeUrl(gw, clientId, extra));
  return { ...page, toLogin: page.status === 302 && page.location?.startsWith(`${gw}/login?request=`) === true };
}

export async function expectRefused(gw: string, clientId: string, code = "invalid_client") {
  const page = await authorizeWith(gw, clientId);
  expect([clientId, page.status, page.location]).toEqual([clientId, 400, undefined]);
  expect(page.headers.get("content-type")).toMatch(/^text\/html/);
  expect(page.text).toContain(code);
  return page;
}

/** In-process resolution with its own store and clock, fetching from the test's https server. */
export function resolver(policy: MetadataDocumentDeps["policy"] = { redirectUriAllow: [] }, extra: Partial<MetadataDocumentDeps> = {}) {
  const clock = new ManualClock();
  const warnings: string[] = [];
  const store = new MemoryStore(clock);
  const deps: MetadataDocumentDeps = {
    store,
    clock,
    policy,
    fetch: { allowPrivate: true, ca: certificate.cert, timeoutMs: 500 },
    log: { warn: (line: string) => void warnings.push(line) },
    ...extra,
  };
  const outcome = (url: string, more: Partial<MetadataDocumentDeps> = {}) =>
    resolveMetadataClient(url, { ...deps, ...more }).then(
      (client) => client.client_id,
      (error: OAuthError) => `${error.status} ${error.description}`,
    );
  return { clock, store, deps, warnings, outcome };
}
/** cimd.test, a second host name for the test's server (its certificate names it). */
export const otherHost = { lookup: () => Promise.resolve([{ address: "127.0.0.1", family: 4 }]) };
export const onOtherHost = (path: string, answer: Parameters<DocumentServer["serve"]>[1] = {}) => {
  const url = `https://cimd.test:${docs.port}${path}`;
  docs.serve(path, typeof answer === "function" ? answer : { body: metadataDocument(url), ...answer });
  return url;
};
