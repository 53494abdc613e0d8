import { Agent, createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";

/** One request the balancer passed on, and the backend that answered it. */
export interface Served {
  method: string;
  /** The path without the query. */
  path: string;
  backend: string;
}

export interface Balancer {
  /** The one public URL in front of every backend, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Every request forwarded, in arrival order. */
  served: Served[];
  add(name: string, listenUrl: string): void;
  /** Send every request from now on to this backend. */
  use(name: string): void;
  close(): Promise<void>;
}

// RFC 9110 §7.6.1: connection-specific, never forwarded by an intermediary
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

const forwardable = (headers: IncomingHttpHeaders): OutgoingHttpHeaders =>
  Object.fromEntries(Object.entries(headers).filter(([name, value]) => value !== undefined && !HOP_BY_HOP.has(name)));

/**
 * A load balancer for tests: a node:http server that relays each request, streamed both ways and
 * otherwise unchanged (Host, cookies, Location, Set-Cookie), to whichever backend the test selected.
 */
export async function startBalancer(): Promise<Balancer> {
  const backends = new Map<string, URL>();
  const served: Served[] = [];
  const agent = new Agent({ keepAlive: false });
  let selected: string | undefined;

  const server = createServer((req, res) => {
    const backend = selected === undefined ? undefined : backends.get(selected);
    if (!backend) return void res.writeHead(502, { "content-type": "text/plain" }).end(`balancer: no backend "${String(selected)}"\n`);
    served.push({ method: req.method!, path: new URL(req.url!, "http://balancer").pathname, backend: selected! });
    const outgoing = request(
      { agent, host: backend.hostname, port: backend.port, method: req.method, path: req.url, headers: forwardable(req.headers) },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.statusMessage, forwardable(answer.headers));
        res.flushHeaders(); // event streams: the client sees the headers before the first event
        pipeline(answer, res).catch(() => res.destroy());
      },
    );
    outgoing.on("error", () => (res.headersSent ? res.destroy() : void res.writeHead(502).end()));
    res.on("close", () => res.writableFinished || outgoing.destroy()); // the client went away: so does the request
    pipeline(req, outgoing).catch(() => outgoing.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    served,
    add: (name, listenUrl) => void backends.set(name, new URL(listenUrl)),
    use: (name) => {
      if (!backends.has(name)) throw new Error(`balancer: no backend "${name}"`);
      selected = name;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
