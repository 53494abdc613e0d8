import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectWithOAuth } from "../support/connect.js";
import { PLAIN_USER, startGatewayInFront, startPlainAs, type GatewayInFront, type PlainAs } from "../support/plain-as.js";
import { freePort } from "../support/processes.js";
import { expectRefusal } from "../support/refusal.js";

/**
 * Functional bounds, not benchmarks: the gateway's own documents must not wait on an upstream's
 * discovery (which may take 5 s per request), and a sign-in must end once that discovery gives up.
 */
const OWN_DOCUMENT_MS = 2_000;
const SIGN_IN_GIVES_UP_MS = 7_000;

/** Where a sign-in goes once discovery is done: the upstream's endpoints, and the MCP 2025-03-26 defaults. */
const SIGN_IN_PATHS = ["/oauth/authorize", "/oauth/token", "/oauth/register", "/authorize", "/token", "/register"];

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await work();
  return { value, ms: performance.now() - start };
}

async function whoami(mcpUrl: string): Promise<string> {
  const { client } = await connectWithOAuth(mcpUrl);
  try {
    const result = await client.callTool({ name: "whoami", arguments: {} });
    return (result.content as { text: string }[])[0]!.text;
  } finally {
    await client.close();
  }
}

describe("an upstream whose metadata answers headers and then never its body", () => {
  const up: Record<string, PlainAs> = {};
  let front: GatewayInFront;
  beforeAll(async () => {
    up.prm = await startPlainAs({ stall: "protected-resource" });
    up.asm = await startPlainAs({ stall: "authorization-server" });
    front = await startGatewayInFront({ prm: { url: up.prm.mcpUrl }, asm: { url: up.asm.mcpUrl } });
  });
  afterAll(async () => {
    await front?.close();
    for (const u of Object.values(up)) await u.close();
  });

  /** The gateway's RFC 9728 and RFC 8414 documents for `/mcp/<name>`: each answers 200 within OWN_DOCUMENT_MS. */
  async function ownDocumentsAnswer(name: string): Promise<void> {
    const base = front.gateway.publicUrl;
    for (const path of [`/.well-known/oauth-protected-resource/mcp/${name}`, `/.well-known/oauth-authorization-server/mcp/${name}`]) {
      const { value: response, ms } = await timed(() => fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) }));
      expect(response.status, path).toBe(200);
      await response.json();
      expect(ms, path).toBeLessThan(OWN_DOCUMENT_MS);
    }
  }

  it.each(["prm", "asm"])(
    "%s: the gateway's own metadata answers at once, and the sign-in ends with a clear page",
    async (name) => {
      await ownDocumentsAnswer(name);
      const signingIn = timed(() => front.signIn(name));
      // while the sign-in's discovery hangs on the upstream's body
      await ownDocumentsAnswer(name);
      const { value, ms } = await signingIn;
      const page = expectRefusal(value.end, value.browser, {
        state: value.state,
        issuer: front.gateway.publicUrl,
        error: "temporarily_unavailable",
        at: "/login",
      });
      expect(page).toContain(`The gateway cannot use ${name} now`);
      expect.soft(ms).toBeLessThan(SIGN_IN_GIVES_UP_MS);
      // the stall is where discovery stopped: it never went on to register, nor guessed at endpoints
      expect.soft(up[name]!.requests.filter((r) => SIGN_IN_PATHS.includes(r.path)).map((r) => r.path)).toEqual([]);
    },
    30_000,
  );
});

describe("an upstream whose discovery fails, then works", () => {
  let front: GatewayInFront | undefined;
  let up: PlainAs | undefined;
  afterEach(async () => {
    await front?.close();
    await up?.close();
    [front, up] = [undefined, undefined];
  });

  it("not listening at first: the sign-in fails with a clear page, and the next one succeeds without a restart", async () => {
    const port = await freePort();
    front = await startGatewayInFront({ later: { url: `http://127.0.0.1:${port}/mcp`, oauth: {} } });
    const { end, browser, state } = await front.signIn("later");
    const page = expectRefusal(end, browser, { state, issuer: front.gateway.publicUrl, error: "temporarily_unavailable", at: "/login" });
    expect(page).toContain("cannot be reached");

    up = await startPlainAs({}, { port });
    expect(await whoami(front.url("later"))).toBe(PLAIN_USER);
    expect(up.to("/oauth/register")).toHaveLength(1);
  });

  it("RFC 9728 metadata answering 500 at first: the sign-in fails with a clear page, and the next one succeeds", async () => {
    up = await startPlainAs({ resourceMetadataStatus: 500 });
    front = await startGatewayInFront({ flaky: { url: up.mcpUrl } });
    const { end, browser, state } = await front.signIn("flaky");
    expectRefusal(end, browser, { state, issuer: front.gateway.publicUrl, error: "temporarily_unavailable", at: "/login" });
    // a metadata document that exists but failed is no sign of an MCP 2025-03-26 server: no guess at default endpoints
    expect.soft(up.requests.filter((r) => SIGN_IN_PATHS.includes(r.path)).map((r) => r.path)).toEqual([]);

    delete up.quirks.resourceMetadataStatus;
    expect(await whoami(front.url("flaky"))).toBe(PLAIN_USER);
    expect(up.to("/oauth/register")).toHaveLength(1);
  });
});
