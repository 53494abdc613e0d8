/**
 * The bench's upstream MCP server, run as its own process: plain node:http, no auth checks, so it
 * costs as little as a Node server can. POST /mcp answers a `tools/call` result; GET /mcp opens an
 * idle event stream. A control port (never reached through a proxy) makes every open stream emit
 * events stamped with process.hrtime.bigint(), CLOCK_MONOTONIC, comparable across processes.
 * Prints `{"mcp":<port>,"control":<port>}` on stdout once both listen.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const streams = new Set<ServerResponse>();
let eventId = 0;

const RESULT_TEXT = "The bench upstream answered tools/call without looking at the token.";

function answerPost(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    let id: unknown = null;
    try {
      id = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id?: unknown }).id ?? null;
    } catch {
      // a body that is not JSON still gets an answer: the bench measures transport, not parsing
    }
    const body = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[{"type":"text","text":"${RESULT_TEXT}"}]}}`;
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
}

function openStream(req: IncomingMessage, res: ServerResponse): void {
  if (!String(req.headers.accept ?? "").includes("text/event-stream")) {
    res.writeHead(405, { allow: "POST" }).end();
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
  streams.add(res);
  res.on("close", () => streams.delete(res));
}

const mcp = createServer((req, res) => {
  if (req.url === "/mcp" && req.method === "POST") return answerPost(req, res);
  if (req.url === "/mcp" && req.method === "GET") return openStream(req, res);
  res.writeHead(404, { "content-type": "text/plain" }).end("not found");
});
mcp.requestTimeout = 0;
mcp.keepAliveTimeout = 60_000;

/** One event to every open stream; the stamp is taken right before each write. */
function emit(): void {
  const id = ++eventId;
  for (const res of streams) res.write(`id: ${id}\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"t":"${process.hrtime.bigint()}"}}\n\n`);
}

/** POST /emit?count=N&interval=MS emits N events, one every MS ms, then answers; GET /streams counts open streams. */
const control = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://control");
  if (url.pathname === "/streams") return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ open: streams.size }));
  if (url.pathname !== "/emit" || req.method !== "POST") return void res.writeHead(404).end();
  const count = Number(url.searchParams.get("count") ?? 1);
  const interval = Number(url.searchParams.get("interval") ?? 10);
  const receivers = streams.size;
  let sent = 0;
  const timer = setInterval(() => {
    emit();
    if (++sent < count) return;
    clearInterval(timer);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ sent, receivers }));
  }, interval);
});

const listen = (server: typeof mcp) => new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
const [mcpPort, controlPort] = await Promise.all([listen(mcp), listen(control)]);
process.stdout.write(`${JSON.stringify({ mcp: mcpPort, control: controlPort })}\n`);
