import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { obtainCode, redeem } from "../support/manual.js";
import { startStack, type Stack } from "../support/stack.js";

/**
 * The /mcp relay against a scripted upstream MCP endpoint (OAuth still through the simulator, with
 * discovery skipped by the endpoint flags): headers, streaming, cancellation, status passthrough.
 */
describe("the /mcp proxy", () => {
  let upstream: Server;
  let upstreamUrl: string;
  const seen: { method: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const aborted: string[] = [];
  let stack: Stack;
  let bearer: string;

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
    stack = await startStack({ upstreamRs: upstreamUrl });
    const { body } = await redeem(stack.gateway.publicUrl, await obtainCode(stack.gateway.publicUrl));
    bearer = `Bearer ${body.access_token}`;
  });
  afterAll(async () => {
    await stack?.close();
    upstream?.close();
  });

  const post = (scenario: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
    fetch(stack.mcpUrl, {
      method: "POST",
      headers: { authorization: bearer, "content-type": "application/json", accept: "application/json, text/event-stream", "x-scenario": scenario, ...headers },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" }),
      ...(signal ? { signal } : {}),
    });

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

  it("streams events as they arrive and returns the upstream's headers, minus cookies, CORS and hop-by-hop", async () => {
    const response = await post("stream");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(response.headers.get("mcp-session-id")).toBe("sess-1");
    expect(response.headers.get("x-accel-buffering")).toBe("no");
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
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
    const response = await post("cancel", {}, controller.signal);
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await new Promise((r) => setTimeout(r, 300));
    expect(aborted).toContain("cancel");
  });

  it("passes a 404 for an unknown session and a 202 through unchanged", async () => {
    const gone = await post("gone");
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ error: { message: "Session not found" } });
    const accepted = await post("accepted");
    expect(accepted.status).toBe(202);
    expect(await accepted.text()).toBe("");
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
});
