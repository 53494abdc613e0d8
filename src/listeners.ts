import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "./config/types.js";
import type { Logger } from "./log.js";

/** The servers listening, on one port, and the loopback names they answer (src/origins.ts aliases). */
export interface Listening {
  servers: [Server, ...Server[]];
  /** The first address listened on. */
  host: string;
  port: number;
  /** `127.0.0.1` and `[::1]`, each when one of the servers answers it. */
  loopbackNames: string[];
}

/**
 * Without --public-url every loopback name is the gateway's (docs/architecture.md, "Loopback names"), and
 * `[::1]` reaches it only when it listens there too: a loopback host gets the other loopback address as
 * well (`localhost` is both). An address the machine lacks (no IPv6) is left out, and so is its name.
 * One taken by another process stops the start: that process would answer, and collect tokens from,
 * every client that uses the name; with port 0 another port is tried instead.
 */
export async function listenAll(
  config: Pick<Config, "host" | "port" | "loopbackNames">,
  newServer: () => Server,
  log: Pick<Logger, "warn">,
): Promise<Listening> {
  const [host, ...also] = listenHosts(config);
  for (let attempt = 1; ; attempt++) {
    const first = newServer();
    await listen(first, config.port, host);
    const { port } = first.address() as AddressInfo;
    const servers: [Server, ...Server[]] = [first];
    const taken = await listenBeside(servers, newServer, port, also, log);
    if (!taken) return { servers, host, port, loopbackNames: answered(servers) };
    for (const server of servers) server.close();
    if (config.port !== 0 || attempt === 5)
      throw new Error(
        `port ${port} is taken on ${taken} by another process, which would answer clients that use that address (or localhost): free it, choose another --port, or give --public-url`,
      );
  }
}

function listenHosts(config: Pick<Config, "host" | "loopbackNames">): [string, ...string[]] {
  if (config.host === "localhost") return ["127.0.0.1", "::1"];
  if (!config.loopbackNames) return [config.host];
  if (config.host === "127.0.0.1") return ["127.0.0.1", "::1"];
  if (config.host === "::1") return ["::1", "127.0.0.1"];
  return [config.host];
}

/** Listen on each of `hosts` with `port` too; the first address taken by someone else, if any. */
async function listenBeside(servers: Server[], newServer: () => Server, port: number, hosts: string[], log: Pick<Logger, "warn">): Promise<string | undefined> {
  for (const host of hosts) {
    const extra = newServer();
    try {
      await listen(extra, port, host);
      servers.push(extra);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") return host;
      log.warn(`not listening on ${host} port ${port} too (${code ?? (error as Error).message}): that address is left out`);
    }
  }
  return undefined;
}

const listen = (server: Server, port: number, host: string) =>
  new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, () => resolve()));

const LOOPBACK = [
  { name: "127.0.0.1", on: ["127.0.0.1", "0.0.0.0", "::"] },
  { name: "[::1]", on: ["::1", "::"] },
];

function answered(servers: Server[]): string[] {
  const addresses = servers.map((s) => (s.address() as AddressInfo).address);
  return LOOPBACK.filter(({ on }) => on.some((a) => addresses.includes(a))).map(({ name }) => name);
}
