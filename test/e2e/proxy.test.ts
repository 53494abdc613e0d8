import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { obtainCode, redeem } from "../support/oauth-steps.js";
import { startStack, type Stack, type StackOptions } from "../support/stack.js";

/** Longer than two --sse-heartbeat 1 periods, short enough for a test. */
const IDLE_MS = 2500;

/** A gateway in front of the scripted upstream, and a token it accepts. */
interface Via {
  stack: Stack;
  bearer: string;
}

/**
 * The /mcp relay against a scripted upstream MCP endpoint (OAuth still through the simulator, with
 * discovery skipped by the endpoint flags): headers, streaming, cancellation, status passthrough,
 * heartbeats. One gateway per flag set, all in front of the same upstream.
 */
describe("the /mcp proxy", () => {
  let upstream: Server;
  let upstreamUrl: string;
  const seen: { method: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const aborted: string[] = [];
  /** With `--upstream-header`s, as a GitHub deployment sets them. */
  let stack: Stack;
  let bearer: string;
  /** `--sse-heartbeat 1`: a comment after one idle second. */
  let beating: Via;
  /** `--sse-heartbeat 0`: no comments. */
  let silent: Via;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({ method: req.method!, headers: req.headers, body });
        const scenario = req.headers["x-scenario"];
        res.on("close", () => !res.writableFinished && aborted.push(String(scenario)));
        if (scenario === "gone")
          return void res
            .writeHead(404, { "content-type": "application/json" })
            .end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
        if (scenario === "accepted") return void res.writeHead(202).end();
        if (scenario === "not-allowed")
          return void res
            .writeHead(405, { "content-type": "application/json", allow: "POST, DELETE" })
            .end('{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Method not allowed."}}');
        if (scenario === "json") return void res.writeHead(200, { "content-type": "application/json" }).end('{"jsonrpc":"2.0","id":7,"result":{}}');
        if (scenario === "split-event" || scenario === "idle-between") {
          res.writeHead(200, { "content-type": "text/event-stream" });
          const [first, second] = scenario === "split-event" ? ['data: {"a":', "1}\n\n"] : ['data: {"b":1}\n\n', 'data: {"b":2}\n\n'];
          res.write(first);
          const timer = setTimeout(() => res.end(second), IDLE_MS);
          return void res.on("close", () => clearTimeout(timer));
        }
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "mcp-session-id": "sess-1",
          "set-cookie": "upstream=1",
          "access-control-allow-origin": "https://upstream.example",
          connection: "x-private",
          "x-private": "hop",
        });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`id: e${n}\ndata: {"n":${n}}\n\n`);
          if (++n === 4) {
            clearInterval(timer);
            res.end();
          }
        }, 150);
        res.on("close", () => clearInterval(timer));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
    ({ stack, bearer } = await gateway({ server: { headers: { "X-MCP-Readonly": "true", "X-MCP-Toolsets": "repos" } } }));
    beating = await gateway({ config: { proxy: { sseHeartbeat: 1 } } });
    silent = await gateway({ config: { proxy: { sseHeartbeat: 0 } } });
  });
  afterAll(async () => {
    await stack?.close();
    await beating?.stack.close();
    await silent?.stack.close();
    upstream?.close();
  });

  /** A gateway with these options, and a token whose client the upstream has given session sess-1 (the gateway knows no other). */
  const gateway = async (options: Pick<StackOptions, "server" | "config">): Promise<Via> => {
    const started = await startStack({ upstreamRs: upstreamUrl, ...options });
    const { body } = await redeem(started.gateway.publicUrl, await obtainCode(started.gateway.publicUrl));
    const via = { stack: started, bearer: `Bearer ${body.access_token}` };
    const opened = await post("stream", {}, { via });
    expect(opened.headers.get("mcp-session-id")).toBe("sess-1");
    await opened.text();
    return via;
  };

  const post = (scenario: string, headers: Record<string, string> = {}, { signal, via = { stack, bearer } }: { signal?: AbortSignal; via?: Via } = {}) =>
    fetch(via.stack.mcpUrl, {
      method: "POST",
      headers: {
        authorization: via.bearer,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "x-scenario": scenario,
        ...headers,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" }),
      ...(signal ? { signal } : {}),
    });
  const get = (scenario: string, via: Via = { stack, bearer }) =>
    fetch(via.stack.mcpUrl, { headers: { authorization: via.bearer, accept: "text/event-stream", "mcp-session-id": "sess-1", "x-scenario": scenario } });

  it("forwards the body and MCP's headers, and none of the client's credentials", async () => {
    const response = await post("stream", {
      "mcp-session-id": "sess-1",
      "mcp-protocol-version": "2025-11-25",
      "last-event-id": "e0",
      "mcp-method": "tools/list",
      cookie: "mcp-gateway=abc",
      origin: "http://localhost:6274",
      "accept-encoding": "gzip",
    });
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    await response.text();
    const got = seen.at(-1)!;
    expect(got.body).toBe('{"jsonrpc":"2.0","id":7,"method":"tools/list"}');
    expect(got.headers).toMatchObject({
      "mcp-session-id": "sess-1",
      "mcp-protocol-version": "2025-11-25",
      "last-event-id": "e0",
      "mcp-method": "tools/list",
      accept: "application/json, text/event-stream",
    });
    expect(got.headers.authorization).toMatch(/^Bearer gho_\w+$/);
    for (const name of ["cookie", "origin", "accept-encoding"]) expect(got.headers).not.toHaveProperty(name);
  });

  it("forwards the 2026-07-28 transport's Mcp-Method, Mcp-Name and Mcp-Param-* headers unchanged", async () => {
    await (await post("json", { "Mcp-Method": "tools/call", "Mcp-Name": "get_me", "Mcp-Param-Foo": "Bar baz" })).text();
    expect(seen.at(-1)!.headers).toMatchObject({ "mcp-method": "tools/call", "mcp-name": "get_me", "mcp-param-foo": "Bar baz" });
  });

  it("adds the --upstream-header headers, over the client's own", async () => {
    await (await post("json", { "x-mcp-readonly": "false" })).text();
    expect(seen.at(-1)!.headers).toMatchObject({ "x-mcp-readonly": "true", "x-mcp-toolsets": "repos" });
  });

  it("MU10 drops the client's other spellings of the --upstream-header names, which CGI-style servers read as the same header", async () => {
    await (await post("json", { x_mcp_readonly: "false", "X-MCP_Readonly": "false", X_MCP_TOOLSETS: "all", "x-mcp-other": "kept" })).text();
    const headers = seen.at(-1)!.headers;
    expect(Object.keys(headers).filter((name) => name.replaceAll("_", "-").startsWith("x-mcp-"))).toEqual(
      expect.arrayContaining(["x-mcp-readonly", "x-mcp-toolsets", "x-mcp-other"]),
    );
    expect(Object.keys(headers).filter((name) => name.includes("_"))).toEqual([]);
    expect(headers).toMatchObject({ "x-mcp-readonly": "true", "x-mcp-toolsets": "repos", "x-mcp-other": "kept" });
  });

  it("lets browsers send MCP's headers, Mcp-Param-* and X-MCP-*, and no others (CORS preflight)", async () => {
    const requests = seen.length;
    const response = await fetch(stack.mcpUrl, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:6274",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, mcp-method, mcp-name, mcp-param-owner, x-mcp-toolsets, x-other",
      },
    });
    expect(response.status).toBe(204);
    const allowed = response.headers
      .get("access-control-allow-headers")!
      .split(",")
      .map((h) => h.trim().toLowerCase());
    expect(allowed).toEqual(expect.arrayContaining(["authorization", "mcp-method", "mcp-name", "mcp-param-owner", "x-mcp-toolsets"]));
    expect(allowed).not.toContain("x-other");
    expect(seen).toHaveLength(requests);
  });

  it("streams events as they arrive and returns the upstream's headers, minus cookies, CORS and hop-by-hop", async () => {
    const response = await post("stream");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(response.headers.get("mcp-session-id")).toBe("sess-1");
    expect(response.headers.get("x-accel-buffering")).toBe("no");
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(response.headers.get("access-control-allow-origin")).toBeNull(); // no Origin: no CORS, and never the upstream's
    expect(response.headers.get("x-private")).toBeNull();
    const reader = response.body!.getReader();
    const arrivals: number[] = [];
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      arrivals.push(Date.now());
      text += new TextDecoder().decode(value);
    }
    expect(text).toBe([0, 1, 2, 3].map((n) => `id: e${n}\ndata: {"n":${n}}\n\n`).join(""));
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThan(300);
  });

  it("aborts the upstream request when the client goes away", async () => {
    const controller = new AbortController();
    const response = await post("cancel", {}, { signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await new Promise((r) => setTimeout(r, 300));
    expect(aborted).toContain("cancel");
  });

  it("marks event streams X-Accel-Buffering: no, and JSON responses not", async () => {
    const json = await post("json");
    expect(json.headers.get("content-type")).toBe("application/json");
    expect(json.headers.get("x-accel-buffering")).toBeNull();
    expect(await json.text()).toBe('{"jsonrpc":"2.0","id":7,"result":{}}');
  });

  it("passes a 202, a 404 for an unknown session and a 405 through unchanged", async () => {
    const accepted = await post("accepted");
    expect(accepted.status).toBe(202);
    expect(await accepted.text()).toBe("");
    const gone = await post("gone");
    expect(gone.status).toBe(404);
    expect(await gone.text()).toBe('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
    const notAllowed = await get("not-allowed");
    expect(notAllowed.status).toBe(405);
    expect(notAllowed.headers.get("allow")).toBe("POST, DELETE");
    expect(await notAllowed.text()).toBe('{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Method not allowed."}}');
  });

  it("relays keep-alive comments on a stream idle between events, never inside an event (--sse-heartbeat 1)", async () => {
    const [between, inside] = await Promise.all([
      get("idle-between", beating).then((r) => r.text()),
      post("split-event", {}, { via: beating }).then((r) => r.text()),
    ]);
    // A fresh stream rests between events too: a slow start may earn a comment before the first byte.
    expect(between).toMatch(/^(: keep-alive\n\n)*data: \{"b":1\}\n\n(: keep-alive\n\n)+data: \{"b":2\}\n\n$/);
    expect(inside.replace(/^(: keep-alive\n\n)*/, "")).toBe('data: {"a":1}\n\n');
  });

  it("sends no comments with --sse-heartbeat 0", async () => {
    expect(await (await get("idle-between", silent)).text()).toBe('data: {"b":1}\n\ndata: {"b":2}\n\n');
  });

  it("relays GET and DELETE", async () => {
    const get = await fetch(stack.mcpUrl, {
      headers: { authorization: bearer, accept: "text/event-stream", "mcp-session-id": "sess-1", "last-event-id": "e1", "x-scenario": "stream" },
    });
    expect(get.status).toBe(200);
    await get.text();
    expect(seen.at(-1)).toMatchObject({ method: "GET", headers: { "last-event-id": "e1", "mcp-session-id": "sess-1" } });
    const del = await fetch(stack.mcpUrl, { method: "DELETE", headers: { authorization: bearer, "mcp-session-id": "sess-1", "x-scenario": "accepted" } });
    expect(del.status).toBe(202);
    expect(seen.at(-1)!.method).toBe("DELETE");
  });

  it("MU9 answers a session the client ended with DELETE as unknown, without asking the upstream", async () => {
    const requests = seen.length;
    const after = await post("json", { "mcp-session-id": "sess-1" });
    expect(after.status).toBe(404);
    expect(await after.json()).toEqual({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } });
    expect(seen).toHaveLength(requests);
  });
});
