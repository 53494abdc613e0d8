import { request } from "node:http";
import { connect } from "node:net";
import type { Readable } from "node:stream";
import { request as undiciRequest } from "undici";

export interface RawRequest {
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
}

/**
 * A client that goes away: the request on a connection of its own, and once the first bytes of the
 * response body arrive, the socket destroyed. Resolves with performance.now() at that moment.
 */
export function dropAfterFirstBytes(url: string, init: RawRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method, headers: init.headers, agent: false });
    req.once("error", reject);
    req.once("response", (res) => {
      res.on("error", () => {});
      if (res.statusCode !== 200) {
        req.destroy();
        return reject(new Error(`${init.method} answered ${res.statusCode}`));
      }
      res.once("data", () => {
        const at = performance.now();
        req.destroy();
        resolve(at);
      });
    });
    req.end(init.body);
  });
}

/** The error code of a TCP connection attempt, or "connected". */
export function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** One request through undici, whatever it carries: its status, headers and body text. */
export async function send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer | Readable } = {}) {
  const response = await undiciRequest(url, { method: (init.method ?? "POST") as "POST", headers: init.headers ?? {}, body: init.body ?? null });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text };
}

export const json = (text: string) => JSON.parse(text) as Record<string, unknown>;
