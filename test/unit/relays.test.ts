import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Relays, type Exchange } from "../../src/rs/relays.js";
import { pollUntil } from "../support/waiting.js";

/**
 * The registry of /mcp exchanges in flight (src/rs/relays.ts) over real connections: an exchange leaves it
 * when its response closes, in any order, and shutdown cuts exactly those still in it.
 */
describe("the /mcp exchange registry", () => {
  const relays = new Relays(0);
  const exchanges: Exchange[] = [];
  let server: Server;
  let port: number;

  beforeAll(async () => {
    // every request is held open: it stays in flight until its client goes away or shutdown cuts it
    server = createServer((req, res) => void exchanges.push(relays.add(req, res)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** One client with a request in flight, and whether the gateway side closed its connection. */
  async function client(): Promise<{ socket: Socket; closed: () => boolean }> {
    const before = exchanges.length;
    const socket = connect(port, "127.0.0.1");
    let closed = false;
    socket.on("close", () => (closed = true)).on("error", () => {});
    socket.write("POST /mcp HTTP/1.1\r\nHost: gateway\r\nContent-Length: 0\r\n\r\n");
    await pollUntil(
      () => exchanges.length,
      (n) => n > before,
      5_000,
    );
    return { socket, closed: () => closed };
  }

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
