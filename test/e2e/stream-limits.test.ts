import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { obtainCode, redeem } from "../support/oauth-steps.js";
import { startScriptedUpstream, type ScriptedUpstream } from "../support/scripted-upstream.js";
import { startStack, type Stack } from "../support/stack.js";

/** One GET stream held open through the gateway, and how to close it from the client's side. */
interface Held {
  response: Response;
  close(): Promise<void>;
}

/**
 * docs/security.md HI9, issue 16 item 15: GET event streams one grant and one client address may
 * hold open, with `--max-streams-per-grant 3 --max-streams-per-address 5`, behind a proxy the
 * gateway trusts (`--trust-proxy loopback`: the address is the one X-Forwarded-For names).
 */
describe("open event streams per grant and per address", () => {
  let upstream: ScriptedUpstream;
  let stack: Stack;
  let tag = 0;

  beforeAll(async () => {
    upstream = await startScriptedUpstream();
    stack = await startStack({
      upstreamRs: upstream.url,
      config: { proxy: { maxStreamsPerGrant: 3, maxStreamsPerAddress: 5 }, trustProxy: "loopback" },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
  });

  const token = async () => {
    const { body } = await redeem(stack.gateway.publicUrl, await obtainCode(stack.gateway.publicUrl));
    return `Bearer ${body.access_token}`;
  };

  const get = (bearer: string, address: string, scenario: string, signal?: AbortSignal) =>
    fetch(stack.mcpUrl, {
      headers: { authorization: bearer, accept: "text/event-stream", "x-forwarded-for": address, "x-scenario": scenario, "x-tag": `t${++tag}` },
      ...(signal ? { signal } : {}),
    });

  /** A GET the upstream answers with one event and holds open (scripted `hold`). */
  async function hold(bearer: string, address: string): Promise<Held> {
    const controller = new AbortController();
    const ended = upstream.ended(`t${tag + 1}`);
    const response = await get(bearer, address, "hold", controller.signal);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("id: h1");
    return {
      response,
      close: async () => {
        controller.abort();
        // the upstream sees its side close once the gateway has let the client's side go
        await ended;
      },
    };
  }

  async function expectRefused(bearer: string, address: string, holder: string, limit: number): Promise<void> {
    const requests = upstream.seen.length;
    const refused = await get(bearer, address, "hold");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("10");
    expect(refused.headers.get("content-type")).toBe("application/json");
    expect(await refused.json()).toEqual({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32000, message: `${holder} already holds ${limit} open event streams (GET); close one and try again.` },
    });
    expect(upstream.seen).toHaveLength(requests);
  }

  it("HI9 with --max-streams-per-grant 3 the 4th GET stream of a grant is 429, and closing one frees its place", async () => {
    const bearer = await token();
    const held = [await hold(bearer, "198.51.100.1"), await hold(bearer, "198.51.100.2"), await hold(bearer, "198.51.100.3")];
    // from any address: the grant holds them
    await expectRefused(bearer, "198.51.100.4", "This authorization", 3);
    // another grant is not held back
    const other = await hold(await token(), "198.51.100.4");

    await held[0]!.close();
    held[0] = await hold(bearer, "198.51.100.1");
    await expectRefused(bearer, "198.51.100.1", "This authorization", 3);
    for (const h of [...held, other]) await h.close();
  });

  it("HI9 with --max-streams-per-address 5 the 6th GET stream from one address is 429 whatever its grant, and closing one frees its place", async () => {
    const [a, b, c] = [await token(), await token(), await token()];
    const address = "203.0.113.9";
    const held = [await hold(a, address), await hold(a, address), await hold(a, address), await hold(b, address), await hold(b, address)];
    await expectRefused(c, address, "This address", 5);
    // the same grant from another address is not held back
    const elsewhere = await hold(c, "203.0.113.10");

    await held[4]!.close();
    held[4] = await hold(c, address);
    await expectRefused(b, address, "This address", 5);
    for (const h of [...held, elsewhere]) await h.close();
  });

  it("HI9 a GET stream the upstream ends gives its place back, and POST responses are not counted", async () => {
    const bearer = await token();
    for (let i = 0; i < 5; i++) {
      const ended = await get(bearer, "192.0.2.1", "resume");
      expect(ended.status).toBe(200);
      expect(await ended.text()).toContain("id: e3");
    }
    const held = [await hold(bearer, "192.0.2.1"), await hold(bearer, "192.0.2.1"), await hold(bearer, "192.0.2.1")];
    const post = await fetch(stack.mcpUrl, {
      method: "POST",
      headers: {
        authorization: bearer,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "x-scenario": "resume",
        "x-forwarded-for": "192.0.2.1",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
    });
    expect(post.status).toBe(200);
    await post.text();
    for (const h of held) await h.close();
  });
});
