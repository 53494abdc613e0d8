import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** How one upstream exchange ended: `finished` false when it was cut before the upstream ended its response. */
export interface Ending {
  finished: boolean;
  /** performance.now() when the upstream saw the response close. */
  at: number;
}

export interface ScriptedUpstream {
  /** `http://127.0.0.1:<port>/mcp` */
  url: string;
  seen: { method: string; headers: IncomingHttpHeaders; body: string }[];
  /** The request tagged `x-tag: tag` arrived (whole body read). */
  received(tag: string): Promise<void>;
  /** The upstream's response to the request tagged `tag` closed, finished or cut. */
  ended(tag: string): Promise<Ending>;
  /** Reset (TCP RST) every `reset` stream held open so far. */
  resetStreams(): void;
  /** Connections open to this upstream right now. */
  connections(): number;
  close(): Promise<void>;
}

export const SLOW_MS = 1500;
/** The `slow` scenario's answer: large enough that a cut shows. */
export const slowAnswer = (id: unknown) => JSON.stringify({ jsonrpc: "2.0", id, result: { padding: "x".repeat(200_000) } });
export const event = (id: string, n: number) => `id: ${id}\ndata: {"n":${n}}\n\n`;

const SSE = { "content-type": "text/event-stream", "cache-control": "no-store" };

/**
 * An MCP endpoint that misbehaves on demand, by the request's `x-scenario` header:
 * `silent` never answers; `hold` sends one event (`h1`) and holds the stream open; `reset` sends
 * events `e1` and `e2`, then resets its socket on `resetStreams()`; `resume` answers a GET with
 * event `e3` and ends; `slow` answers a POST with `slowAnswer(its id)` after SLOW_MS; `scope` refuses
 * with a 403 `insufficient_scope` challenge that names only the missing scope `gist`.
 */
export async function startScriptedUpstream(): Promise<ScriptedUpstream> {
  const seen: ScriptedUpstream["seen"] = [];
  const sockets = new Set<Socket>();
  const resets: Socket[] = [];
  const arrivals = new Waiters<void>();
  const endings = new Waiters<Ending>();

  const scenarios: Record<string, (req: IncomingMessage, res: ServerResponse, body: string) => void> = {
    silent: () => {},
    hold: (_req, res) => void res.writeHead(200, SSE).write(event("h1", 1)),
    reset: (req, res) => {
      res.writeHead(200, SSE).write(event("e1", 1) + event("e2", 2));
      resets.push(req.socket);
    },
    resume: (_req, res) => void res.writeHead(200, SSE).end(event("e3", 3)),
    scope: (_req, res) => void res.writeHead(403, { "www-authenticate": 'Bearer error="insufficient_scope", scope="gist"' }).end(),
    slow: (_req, res, body) => {
      const answer = slowAnswer((JSON.parse(body) as { id: unknown }).id);
      const timer = setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end(answer), SLOW_MS);
      res.once("close", () => clearTimeout(timer));
    },
  };

  const server = createServer((req, res) => {
    const tag = String(req.headers["x-tag"] ?? "");
    res.once("close", () => endings.settle(tag, { finished: res.writableFinished, at: performance.now() }));
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.once("end", () => {
      seen.push({ method: req.method!, headers: req.headers, body });
      arrivals.settle(tag, undefined);
      const scenario = scenarios[String(req.headers["x-scenario"])];
      if (scenario) scenario(req, res, body);
      else res.writeHead(400).end("unknown x-scenario");
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    seen,
    received: (tag) => arrivals.wait(tag),
    ended: (tag) => endings.wait(tag),
    resetStreams: () => {
      for (const socket of resets.splice(0)) socket.resetAndDestroy();
    },
    connections: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** One promise per tag, whether the test asks before or after it settles. */
class Waiters<T> {
  private readonly entries = new Map<string, { promise: Promise<T>; resolve: (value: T) => void }>();
  wait(tag: string): Promise<T> {
    return this.entry(tag).promise;
  }
  settle(tag: string, value: T): void {
    if (tag) this.entry(tag).resolve(value);
  }
  private entry(tag: string) {
    let entry = this.entries.get(tag);
    if (!entry) {
      let resolve!: (value: T) => void;
      const promise = new Promise<T>((r) => (resolve = r));
      entry = { promise, resolve };
      this.entries.set(tag, entry);
    }
    return entry;
  }
}
