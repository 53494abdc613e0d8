import { request } from "node:http";
import { connect } from "node:net";
import { loadConfig } from "../../src/config/load.js";
import { startGateway, type Gateway, type GatewayOptions } from "../../src/gateway.js";
import { silentLogger } from "../../src/log.js";
import { DEFAULT_APPS, type Simulator } from "../../src/simulator/index.js";
import { obtainCode, redeem } from "./manual.js";
import { LOGIN } from "./stack.js";

const app = DEFAULT_APPS.find((a) => a.kind === "oauth_app")!;

/** A gateway's flags: the simulator as upstream authorization server (no discovery), `upstreamRs` as the upstream MCP server. */
export const gatewayArgs = (simulator: Simulator, upstreamRs: string): string[] => [
  ...["--store", "memory", "--upstream-rs", upstreamRs, "--upstream-client-id", app.clientId, "--upstream-api-url", simulator.apiOrigin],
  ...["--upstream-authorize-endpoint", `${simulator.webOrigin}/login/oauth/authorize`],
  ...["--upstream-token-endpoint", `${simulator.webOrigin}/login/oauth/access_token`],
];

export const gatewayEnv = {
  MCP_GATEWAY_UPSTREAM_CLIENT_SECRET: app.clientSecrets[0],
  MCP_GATEWAY_USERNAME: LOGIN.username,
  MCP_GATEWAY_PASSWORD: LOGIN.password,
};

/** The gateway in this process on an ephemeral port, in front of `upstreamRs`. */
export async function startGatewayInProcess(simulator: Simulator, upstreamRs: string, args: string[] = [], options: GatewayOptions = {}): Promise<Gateway> {
  const argv = ["--port", "0", "--public-url", "http://127.0.0.1:0", ...gatewayArgs(simulator, upstreamRs), ...args];
  return startGateway(loadConfig(argv, { MCP_GATEWAY_ENV_FILE: "/dev/null", ...gatewayEnv }), { log: silentLogger, ...options });
}

/** `Bearer <access token>` from a real authorization code flow against the gateway. */
export async function bearerFor(gatewayUrl: string): Promise<string> {
  const { status, body } = await redeem(gatewayUrl, await obtainCode(gatewayUrl));
  if (status !== 200) throw new Error(`token request failed: ${status} ${JSON.stringify(body)}`);
  return `Bearer ${body.access_token}`;
}

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

/** Read a response body to its end; throws if the stream breaks off. */
export async function readToEnd(reader: ReadableStreamDefaultReader<Uint8Array>, text = ""): Promise<string> {
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
}

/** Read until `text` holds `wanted`. */
export async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, wanted: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes(wanted)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before ${JSON.stringify(wanted)}; got ${JSON.stringify(text)}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** `task(0…count-1)`, `concurrency` at a time. */
export async function inParallel<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

/** Poll `read` every 250 ms until `ok` holds of it or `ms` passed; the last reading either way. */
export async function pollUntil<T>(read: () => T, ok: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = performance.now() + ms;
  let value = read();
  while (!ok(value) && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    value = read();
  }
  return value;
}

/** Poll `read` every 250 ms until its reading has not changed for `quietMs` (or `ms` passed); that reading. */
export async function steady<T>(read: () => T, quietMs: number, ms: number): Promise<T> {
  const deadline = performance.now() + ms;
  let value = read();
  let since = performance.now();
  while (performance.now() - since < quietMs && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const next = read();
    if (JSON.stringify(next) !== JSON.stringify(value)) [value, since] = [next, performance.now()];
  }
  return value;
}
