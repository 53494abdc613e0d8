import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { deriveKeys } from "../../src/crypto.js";
import { createLogger } from "../../src/log.js";
import { PublicOrigins } from "../../src/origins.js";
import { JSONRPC } from "../../src/rs/jsonrpc.js";
import type { McpCall, McpPolicy } from "../../src/rs/policy.js";
import { Relays } from "../../src/rs/relays.js";
import { mcpEndpoint } from "../../src/rs/routes.js";
import { McpSessions } from "../../src/rs/sessions.js";
import { StreamLimits } from "../../src/rs/streams.js";
import { MemoryStore } from "../../src/store/memory.js";
import { issueTokens } from "../../src/grants/issue.js";
import type { ValidatedAccess } from "../../src/grants/validate.js";
import { Mount } from "../../src/upstream/mounts.js";

/** The policy hook of /mcp (src/rs/policy.ts): installed through the endpoint's deps, asked before anything goes upstream. */
describe("the /mcp policy hook", () => {
  const clock = new ManualClock();
  const store = new MemoryStore(clock);
  const keys = deriveKeys("policy-secret-policy-secret-policy-0");
  const log = createLogger(() => {});
  const dispatcher = new Agent();
  const relays = new Relays(0);
  const asked: { access: ValidatedAccess; call: McpCall | undefined }[] = [];
  const denyDeletes: McpPolicy = (access, call) => {
    asked.push({ access, call });
    return call?.tool === "delete_repo" ? { allow: false, reason: "delete_repo is not allowed through this gateway" } : { allow: true };
  };
  const upstreamBodies: string[] = [];
  let upstream: Server;
  let gateway: Server;
  let url: string;
  let bearer: string;

  beforeAll(async () => {
    upstream = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        upstreamBodies.push(Buffer.concat(chunks).toString());
        res.writeHead(200, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    gateway = createServer();
    await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
    const publicUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    const config = {
      name: "",
      path: "/mcp",
      title: "",
      resource: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`,
      auth: "none" as const,
      headers: {},
      identityHeaders: false,
      allowUsers: [],
      allowOrgs: [],
    };
    const mount = new Mount(config, publicUrl, { store, keys, clock, fetch, log, offersClientMetadata: false });
    const tokenContext = { keys, store, clock, issuer: publicUrl, accessTokenTtl: 3600, refreshTokenTtl: 86_400 };
    const endpoint = mcpEndpoint(mount, {
      ...tokenContext,
      origins: new PublicOrigins(publicUrl, []),
      dispatcher,
      upstreamTimeoutMs: 5000,
      relays,
      sessions: new McpSessions(store, clock, 86_400),
      streams: new StreamLimits(10, 10),
      clientAddress: () => "127.0.0.1",
      log,
      publicUrl,
      allowedOrigins: [],
      policy: denyDeletes,
    });
    gateway.on("request", endpoint);
    url = `${publicUrl}/mcp`;
    const grant = { grantId: "grant-1", clientId: "client-1", sub: "alice", scope: "", resource: mount.resource };
    bearer = `Bearer ${(await issueTokens(tokenContext, grant, { access_token: "" }, { refresh: false })).access_token}`;
  });

  afterAll(async () => {
    await relays.drain(0);
    await new Promise((resolve) => gateway.close(resolve));
    await new Promise((resolve) => upstream.close(resolve));
    await dispatcher.close();
  });

  const post = (body: string | Readable) =>
    request(url, {
      method: "POST",
      headers: { authorization: bearer, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body,
    });
  const call = (id: number, method: string, params: object = {}) => JSON.stringify({ jsonrpc: "2.0", id, method, params });

  it("a deny answers the request's id with JSON-RPC error -32003 and the reason (200, so clients show it as the call's error), and nothing goes upstream", async () => {
    const before = upstreamBodies.length;
    const answer = await post(call(7, "tools/call", { name: "delete_repo", arguments: { repo: "x" } }));
    expect(answer.statusCode).toBe(200);
    expect(await answer.body.json()).toEqual({
      jsonrpc: "2.0",
      id: 7,
      error: { code: JSONRPC.forbiddenByPolicy, message: "delete_repo is not allowed through this gateway" },
    });
    expect(JSONRPC.forbiddenByPolicy).toBe(-32003);
    expect(upstreamBodies.length).toBe(before);
    const last = asked.at(-1)!;
    expect(last.call).toEqual({ method: "tools/call", tool: "delete_repo" });
    expect(last.access.claims.sub).toBe("alice");
    expect(last.access.claims.gid).toBe("grant-1");
  });

  it("a deny of a message without an id (nothing to answer in JSON-RPC) is 403", async () => {
    const before = upstreamBodies.length;
    const answer = await post(JSON.stringify({ jsonrpc: "2.0", method: "tools/call", params: { name: "delete_repo" } }));
    expect(answer.statusCode).toBe(403);
    expect(await answer.body.json()).toMatchObject({ id: null, error: { code: JSONRPC.forbiddenByPolicy } });
    expect(upstreamBodies.length).toBe(before);
  });

  it("an allow relays the request as it came, and the policy saw its method", async () => {
    const body = call(8, "tools/list");
    const answer = await post(body);
    expect(answer.statusCode).toBe(200);
    await answer.body.text();
    expect(upstreamBodies.at(-1)).toBe(body);
    expect(asked.at(-1)!.call).toEqual({ method: "tools/list" });
  });

  it("a batch is refused 400 (-32600) before the policy is asked, and nothing goes upstream: a policy judges one call", async () => {
    const before = { upstream: upstreamBodies.length, asked: asked.length };
    const batched = await post(` \n[${call(9, "tools/call", { name: "delete_repo" })}]`);
    expect(batched.statusCode).toBe(400);
    expect(await batched.body.json()).toMatchObject({ id: null, error: { code: JSONRPC.invalidRequest, message: expect.stringContaining("batches") } });
    expect(upstreamBodies.length).toBe(before.upstream);
    expect(asked.length).toBe(before.asked);
  });

  it("a body streamed without Content-Length, or one over 64 KB, is read whole and judged: its refused tool, or a batch, never goes upstream", async () => {
    const before = upstreamBodies.length;
    const streamed = await post(Readable.from([Buffer.from(call(10, "tools/call", { name: "delete_repo" }))]));
    expect(streamed.statusCode).toBe(200);
    expect(await streamed.body.json()).toMatchObject({ id: 10, error: { code: JSONRPC.forbiddenByPolicy } });
    expect(asked.at(-1)!.call).toEqual({ method: "tools/call", tool: "delete_repo" });
    const large = await post(call(11, "tools/call", { name: "delete_repo", arguments: { pad: "x".repeat(100 * 1024) } }));
    expect(await large.body.json()).toMatchObject({ id: 11, error: { code: JSONRPC.forbiddenByPolicy } });
    const streamedBatch = await post(Readable.from([Buffer.from("["), Buffer.from(`${call(12, "tools/call", { name: "delete_repo" })}]`)]));
    expect(streamedBatch.statusCode).toBe(400);
    await streamedBatch.body.text();
    expect(upstreamBodies.length).toBe(before);
    const allowed = await post(Readable.from([Buffer.from(call(13, "tools/list"))]));
    expect(allowed.statusCode).toBe(200);
    await allowed.body.text();
    expect(upstreamBodies.at(-1)).toBe(call(13, "tools/list"));
  });
});
