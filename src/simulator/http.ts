import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export type OriginName = "web" | "api" | "mcp";

export interface RecordedRequest {
  origin: OriginName;
  method: string;
  /** Path plus query string. */
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

export interface SimRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string;
}

export interface SimResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Hands the raw Node objects to a handler that writes the response itself (the MCP transport). */
export type Takeover = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export type Handler = (req: SimRequest) => SimResponse | Takeover | Promise<SimResponse | Takeover>;

export interface OriginServer {
  origin: string;
  close(): Promise<void>;
}

export interface ListenOptions {
  name: OriginName;
  host: string;
  port: number;
  handler: () => Handler;
  record: (r: RecordedRequest) => void;
  now: () => number;
  latencyMs: () => number;
}

export async function listenOrigin(opts: ListenOptions): Promise<OriginServer> {
  const server = createServer((req, res) => {
    void serve(opts, req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end(`simulator error: ${err instanceof Error ? err.message : String(err)}\n`);
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const hostPart = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return { origin: `http://${hostPart}:${port}`, close: () => closeServer(server) };
}

async function serve(opts: ListenOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  const headers = flattenHeaders(req);
  const path = req.url ?? "/";
  opts.record({ origin: opts.name, method: req.method ?? "GET", path, headers, body, at: opts.now() });
  const latency = opts.latencyMs();
  if (latency > 0) await sleep(latency);
  const url = new URL(path, `http://${headers.host ?? "localhost"}`);
  const result = await opts.handler()({ method: req.method ?? "GET", url, headers, body });
  if (typeof result === "function") return result(req, res);
  const payload = result.body ?? "";
  const length = result.status === 204 ? {} : { "content-length": String(Buffer.byteLength(payload)) };
  res.writeHead(result.status, { ...result.headers, ...length });
  res.end(req.method === "HEAD" ? undefined : payload);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export const json = (status: number, value: unknown, headers: Record<string, string> = {}): SimResponse => ({
  status,
  headers: { "content-type": "application/json; charset=utf-8", ...headers },
  body: JSON.stringify(value),
});

export const html = (status: number, body: string, headers: Record<string, string> = {}): SimResponse => ({
  status,
  headers: { "content-type": "text/html; charset=utf-8", ...headers },
  body,
});

export const text = (status: number, body: string, headers: Record<string, string> = {}): SimResponse => ({
  status,
  headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  body,
});

export const redirect = (location: string): SimResponse => ({
  status: 302,
  headers: { location, "content-type": "text/html; charset=utf-8" },
  body: `<html><body>You are being <a href="${location.replace(/&/g, "&amp;").replace(/"/g, "&quot;")}">redirected</a>.</body></html>`,
});

/** Parameters from an application/x-www-form-urlencoded or application/json body; null if unparsable. */
export function bodyParams(req: SimRequest): Map<string, string> | null {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type === "application/json") {
    if (req.body.trim() === "") return new Map();
    try {
      const parsed: unknown = JSON.parse(req.body);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
      const out = new Map<string, string>();
      for (const [k, v] of Object.entries(parsed)) {
        if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out.set(k, String(v));
      }
      return out;
    } catch {
      return null;
    }
  }
  return new Map(new URLSearchParams(req.body));
}

export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
