import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectWithOAuth } from "../support/connect.js";
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
