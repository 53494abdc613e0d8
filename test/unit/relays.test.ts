import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Relays, type Exchange } from "../../src/rs/relays.js";
import { pollUntil } from "../support/waiting.js";

/** An event stream's response from its status line to its chunked body's last chunk (size 0). */
const ENDED_STREAM = /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n0\r\n\r\n$/;

/**
 * The registry of /mcp exchanges in flight (src/rs/relays.ts) over real connections: an exchange leaves it
 * when its response closes, in any order, and shutdown cuts exactly those still in it.
 */
describe("the /mcp exchange registry", () => {
  /** Grants the process knows are revoked (the revocation view, in the gateway). */
  const revoked = new Set<string>();
  const relays = new Relays(0, (grantId) => revoked.has(grantId));
  const exchanges: Exchange[] = [];
  let server: Server;
  let port: number;

  beforeAll(async () => {
    // every request is held open: it stays in flight until its client goes away or shutdown cuts it
    server = createServer((req, res) => {
      const exchange = relays.add(req, res, String(req.headers["x-grant"] ?? "grant-0"));
      exchanges.push(exchange);
      // a GET is an event stream waiting for events, noted as the proxy notes it once the upstream's stream starts
      if (req.method === "GET") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.flushHeaders();
        relays.streaming(exchange);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** One client with a request in flight, and whether the gateway side closed its connection; what it received. */
  async function client(method = "POST", grant = "grant-0"): Promise<{ socket: Socket; closed: () => boolean; received: () => string }> {
    const before = exchanges.length;
    const socket = connect(port, "127.0.0.1");
    let closed = false;
    let received = "";
    socket.on("close", () => (closed = true)).on("error", () => {});
    socket.setEncoding("utf8").on("data", (chunk: string) => (received += chunk));
    socket.write(`${method} /mcp HTTP/1.1\r\nHost: gateway\r\nX-Grant: ${grant}\r\nContent-Length: 0\r\n\r\n`);
    await pollUntil(
      () => exchanges.length,
      (n) => n > before,
      5_000,
    );
    return { socket, closed: () => closed, received: () => received };
  }

  /** The clients go away; once the registry is empty, the next test starts from none. */
  async function goAway(clients: Array<{ socket: Socket }>): Promise<void> {
    for (const c of clients) c.socket.destroy();
    await pollUntil(
      () => relays.size,
      (n) => n === 0,
      5_000,
    );
    exchanges.length = 0;
  }

  it("ends a revoked grant's streams that wait for events, cleanly, and nothing else: its call under way, another grant's stream", async () => {
    const stream = await client("GET", "revoked");
    const call = await client("POST", "revoked");
    const other = await client("GET", "other");
    const [streamX, callX, otherX] = exchanges.slice(-3);
    expect(relays.endGrant("revoked")).toBe(1);
    // the stream's chunked body ends (a last chunk of size 0) and its connection stays open for the next request
    expect(await pollUntil(stream.received, (text) => text.endsWith("0\r\n\r\n"), 5_000)).toMatch(ENDED_STREAM);
    await pollUntil(
      () => relays.size,
      (n) => n === 2,
      5_000,
    );
    expect([streamX!.aborted, callX!.aborted, otherX!.aborted]).toEqual([true, false, false]);
    expect([stream.closed(), call.closed(), other.closed()]).toEqual([false, false, false]);
    expect(relays.endGrant("revoked")).toBe(0);
    await goAway([stream, call, other]);
  });

  it("ends a revoked grant's GET event stream that starts after the revocation was learned, as it starts", async () => {
    revoked.add("revoked-before");
    const late = await client("GET", "revoked-before");
    expect(await pollUntil(late.received, (text) => text.endsWith("0\r\n\r\n"), 5_000)).toMatch(ENDED_STREAM);
    const kept = await client("GET", "other");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(kept.received()).not.toMatch(/0\r\n\r\n$/);
    await goAway([late, kept]);
  });

  it("forgets each exchange whose response closed, first, middle or last, and shutdown cuts exactly the others", async () => {
    const clients = [];
    for (let i = 0; i < 6; i++) clients.push(await client());
    expect(relays.size).toBe(6);
    for (const gone of [0, 3, 5]) clients[gone]!.socket.destroy();
    expect(
      await pollUntil(
        () => relays.size,
        (n) => n === 3,
        5_000,
      ),
    ).toBe(3);
    expect(exchanges.map((x) => x.aborted)).toEqual([true, false, false, true, false, true]);

    clients.push(await client(), await client());
    expect(relays.size).toBe(5);
    clients[1]!.socket.destroy();
    expect(
      await pollUntil(
        () => relays.size,
        (n) => n === 4,
        5_000,
      ),
    ).toBe(4);
    expect(exchanges.map((x) => x.aborted)).toEqual([true, true, false, true, false, true, false, false]);

    // shutdown with no grace: every exchange still in flight is cut, and its upstream request stopped
    await relays.drain(0);
    for (const still of [2, 4, 6, 7]) expect(await pollUntil(clients[still]!.closed, (closed) => closed, 5_000)).toBe(true);
    expect(
      await pollUntil(
        () => relays.size,
        (n) => n === 0,
        5_000,
      ),
    ).toBe(0);
    expect(exchanges.every((x) => x.aborted)).toBe(true);
  });
});
