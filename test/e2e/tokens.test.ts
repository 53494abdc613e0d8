import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectWithOAuth } from "../support/connect.js";
import { mcpInitialize } from "../support/manual.js";
import { startStack, type Stack } from "../support/stack.js";
import type { RecordingOAuthProvider } from "../support/oauth-client.js";

/** DESIGN §3: what the client holds never reveals or carries an upstream token in the clear. */
describe("concatenated tokens", () => {
  let stack: Stack;
  let alice: RecordingOAuthProvider;
  let bob: RecordingOAuthProvider;

  beforeAll(async () => {
    stack = await startStack({ mode: "github_app" });
    const a = await connectWithOAuth(stack.mcpUrl);
    await a.client.callTool({ name: "get_me", arguments: {} });
    stack.clock.advance(8 * 3600_000 + 60_000);
    await a.client.callTool({ name: "get_me", arguments: {} }); // one refresh, upstream too
    await a.client.close();
    const b = await connectWithOAuth(stack.mcpUrl);
    await b.client.close();
    alice = a.provider;
    bob = b.provider;
  });
  afterAll(() => stack?.close());

  const decodedPieces = (token: string) => token.split(/[~.]/).flatMap((piece) => [piece, Buffer.from(piece, "base64url").toString("latin1")]);

  it("holds no upstream token in readable form, in any part of any token", () => {
    const upstream = stack.simulator.issuedTokens();
    const secrets = [...upstream.access, ...upstream.refresh];
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    const received = [...alice.tokenHistory, ...bob.tokenHistory].flatMap((t) => [t.access_token, t.refresh_token ?? ""]);
    expect(received.length).toBe(6);
    for (const token of received) {
      expect(token.split("~")).toHaveLength(2);
      for (const piece of decodedPieces(token)) for (const secret of secrets) expect(piece).not.toContain(secret);
    }
  });

  it("refuses a token whose halves come from different grants", async () => {
    const [gA] = alice.tokenHistory.at(-1)!.access_token.split("~");
    const [, uB] = bob.tokenHistory.at(-1)!.access_token.split("~");
    const response = await mcpInitialize(stack.mcpUrl, `Bearer ${gA}~${uB}`);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it.each([
    ["the gateway half's signature", (g: string, u: string) => `${g.slice(0, -3)}${g.endsWith("AAA") ? "BBB" : "AAA"}~${u}`],
    [
      "the gateway half's claims",
      (g: string, u: string) => {
        const [h, p, s] = g.split(".");
        const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
        claims.scope = "admin";
        return `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}~${u}`;
      },
    ],
    [
      "the sealed half's ciphertext",
      (g: string, u: string) => {
        const parts = u.split(".");
        parts[3] = parts[3]!.replace(/^./, (c) => (c === "A" ? "B" : "A"));
        return `${g}~${parts.join(".")}`;
      },
    ],
    [
      "the sealed half's header",
      (g: string, u: string) => {
        const parts = u.split(".");
        const h = JSON.parse(Buffer.from(parts[0]!, "base64url").toString());
        h.bnd = "x";
        parts[0] = Buffer.from(JSON.stringify(h)).toString("base64url");
        return `${g}~${parts.join(".")}`;
      },
    ],
    ["a missing half", (g: string) => g],
  ])("refuses a token with %s tampered", async (_what, tamper) => {
    const [g, u] = bob.tokenHistory.at(-1)!.access_token.split("~") as [string, string];
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${g}~${u}`)).status).toBe(200);
    const response = await mcpInitialize(stack.mcpUrl, `Bearer ${tamper(g, u)}`);
    expect(response.status).toBe(401);
  });

  it("refuses a raw upstream token presented to /mcp", async () => {
    const raw = stack.simulator.issuedTokens().access.at(-1)!;
    expect((await mcpInitialize(stack.mcpUrl, `Bearer ${raw}`)).status).toBe(401);
  });

  it("lets the upstream see only upstream tokens and the gateway's own client credentials", () => {
    const gatewayHalves = [...alice.tokenHistory, ...bob.tokenHistory].flatMap((t) => [t.access_token.split("~")[0]!, t.refresh_token!.split("~")[0]!]);
    const mcpCalls = stack.simulator.requests.filter((r) => r.origin === "mcp" && r.method === "POST" && !r.path.startsWith("/.well-known"));
    expect(mcpCalls.length).toBeGreaterThan(3);
    const authorized = mcpCalls.filter((r) => r.headers.authorization);
    for (const r of authorized) expect(r.headers.authorization).toMatch(/^Bearer ghu_\w+$/);
    for (const r of stack.simulator.requests) {
      const seen = JSON.stringify(r.headers) + r.body + r.path;
      for (const half of gatewayHalves) expect(seen).not.toContain(half);
      expect(seen).not.toContain("~");
    }
    const tokenCalls = stack.simulator.requests.filter((r) => r.path.startsWith("/login/oauth/access_token"));
    expect(tokenCalls.length).toBe(3); // two code exchanges and one refresh
    for (const r of tokenCalls) {
      const form = new URLSearchParams(r.body);
      expect(form.get("client_id")).toBe(stack.app.clientId);
      expect(form.get("client_secret")).toBe(stack.app.clientSecrets[0]);
    }
  });
});
