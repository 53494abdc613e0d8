import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSuite, signInWhenAsked, startEverything, startGateway, tally, type Service, type SuiteRun } from "../support/conformance.js";
import { metadataDocument, selfSignedCertificate, startDocumentServer, type DocumentServer, type TestCertificate } from "../support/https.js";
import { freePort, killAll, type GatewayProcess } from "../support/processes.js";

/**
 * The official conformance suite's `authorization` scenarios (authorization-server-metadata-endpoint,
 * then authorization-code-grant) against the gateway's authorization server, with a client
 * registered by RFC 7591 and with a Client ID Metadata Document. The suite prints the authorization
 * URL and waits on its own loopback callback; the test's browser signs in and approves on Screen 1.
 */

let certificate: TestCertificate;
let documents: DocumentServer;
let everything: Service;
let gateway: GatewayProcess & { issuer: string; mcpUrl: string };

beforeAll(async () => {
  certificate = selfSignedCertificate();
  documents = await startDocumentServer(certificate);
  everything = await startEverything();
  // The metadata document is served from https://127.0.0.1 with the test's own certificate: the SSRF
  // guard refuses loopback addresses unless told otherwise, and the gateway must trust the certificate.
  gateway = await startGateway(everything.url, { args: ["--allow-private-fetch", "true"], env: { NODE_EXTRA_CA_CERTS: certificate.certFile } });
}, 60_000);

afterAll(async () => {
  await gateway?.kill();
  await everything?.stop();
  await documents?.close();
  certificate?.remove();
  killAll();
});

/** `conformance authorization` for one client, the human step done by the test's browser. */
async function authorizationSuite(clientId: string, callbackPort: number): Promise<SuiteRun> {
  const args = ["authorization", "--url", gateway.issuer, "--client-id", clientId, "--resource", gateway.mcpUrl, "--port", String(callbackPort)];
  return runSuite(args, { whileRunning: (suite) => signInWhenAsked(suite, callbackPort) });
}

function expectAllPassed(run: SuiteRun, label: string): void {
  const t = tally(run.checks);
  console.log(`conformance authorization (${label}): ${t.SUCCESS} passed, ${t.FAILURE} failed, ${t.WARNING} warnings (${run.checks.length} checks)`);
  expect(run.checks.map((c) => `${c.scenario} › ${c.id}: ${c.status} ${c.errorMessage ?? ""}`.trim())).toEqual([
    "authorization-server-metadata-endpoint › authorization-server-metadata: SUCCESS",
    "authorization-server-metadata-endpoint › authorization-server-metadata-cimd: SUCCESS",
    "authorization-code-grant › authorization-code-grant: SUCCESS",
  ]);
  expect(run.code, run.output).toBe(0);
}

describe("official conformance suite: authorization scenarios against the gateway's authorization server", () => {
  it("passes every check with a client registered by RFC 7591 dynamic registration", async () => {
    const callbackPort = await freePort();
    const response = await fetch(new URL("/register", gateway.issuer), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "conformance suite",
        redirect_uris: [`http://127.0.0.1:${callbackPort}/callback`],
        token_endpoint_auth_method: "none",
      }),
    });
    expect(response.status).toBe(201);
    const { client_id } = (await response.json()) as { client_id: string };
    expectAllPassed(await authorizationSuite(client_id, callbackPort), "DCR client");
  }, 90_000);

  it("passes every check with a Client ID Metadata Document as client_id", async () => {
    const callbackPort = await freePort();
    const clientId = `${documents.origin}/conformance/client.json`;
    documents.serve("/conformance/client.json", {
      body: metadataDocument(clientId, { client_name: "conformance suite (CIMD)", redirect_uris: [`http://127.0.0.1:${callbackPort}/callback`] }),
    });
    expectAllPassed(await authorizationSuite(clientId, callbackPort), "CIMD client");
    expect(documents.hits("/conformance/client.json")).toBeGreaterThan(0);
  }, 90_000);
});
