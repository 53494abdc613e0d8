import { availableParallelism } from "node:os";
import { isLoopbackHost } from "../hosts.js";
import { ConfigError } from "./errors.js";

/** How an option's text becomes its value; `name` is how messages name the option. */
export type Parse<T> = (raw: string, name: string) => T;

export const text: Parse<string> = (raw) => raw;

export const integer =
  (min: number, max: number): Parse<number> =>
  (raw, name) => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) throw new ConfigError(`${name} "${raw}" is not valid: give a whole number from ${min} to ${max}`);
    return n;
  };

/** `--workers`: a count, or `auto` for one per CPU the process may use. */
export const workers: Parse<number> = (raw, name) => {
  if (raw === "auto") return availableParallelism();
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 256)
    throw new ConfigError(`${name} "${raw}" is not valid: give a whole number from 1 to 256, or auto (one per CPU)`);
  return Number(raw);
};

export const boolean: Parse<boolean> = (raw, name) => {
  if (raw !== "true" && raw !== "false") throw new ConfigError(`${name} "${raw}" is not valid: give true or false`);
  return raw === "true";
};

/** Express's `trust proxy`: true/false, a hop count, or addresses and CIDRs as given. */
export const trustProxy: Parse<boolean | number | string> = (raw) => {
  if (raw === "false" || raw === "true") return raw === "true";
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw;
};

export const list: Parse<string[]> = (raw) =>
  raw
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);

export const origins: Parse<string[]> = (raw, name) =>
  list(raw, name).map((entry) => {
    const u = httpUrl(entry, name);
    if (u.origin !== entry.replace(/\/$/, "")) throw new ConfigError(`${name} "${entry}" is not an origin: write scheme://host[:port] without a path`);
    return u.origin;
  });

export const secret: Parse<string> = (raw) => {
  if (raw.length < 32) throw new ConfigError("MCP_GATEWAY_SECRET is too short: use at least 32 random characters (e.g. `openssl rand -base64 32`)");
  return raw;
};

export const previousSecrets: Parse<string[]> = (raw, name) => {
  const secrets = list(raw, name);
  if (secrets.some((p) => p.length < 32))
    throw new ConfigError("MCP_GATEWAY_PREVIOUS_SECRETS holds a value shorter than 32 characters: list the earlier MCP_GATEWAY_SECRET values, comma-separated");
  return secrets;
};

/** The absolute http(s) URL `raw` spells, or why it is none (words to follow the field's name). */
export function readHttpUrl(raw: string): { url: URL } | { problem: string } {
  const url = URL.canParse(raw) && !/\s/.test(raw) ? new URL(raw) : undefined;
  if (url?.protocol !== "http:" && url?.protocol !== "https:") return { problem: "must be an absolute http(s) URL such as https://example.com/mcp" };
  if (url.href.includes("#")) return { problem: "must not have a #fragment" };
  return { url };
}

export function httpUrl(raw: string, name: string): URL {
  const read = readHttpUrl(raw);
  if ("problem" in read) throw new ConfigError(`${name} ${read.problem}`);
  return read.url;
}

export const publicUrl: Parse<string> = (raw, name) => {
  const u = httpUrl(raw, name);
  if (u.pathname !== "/" || u.search)
    throw new ConfigError(`--public-url must be an origin without a path or query (got "${raw}"): serve the gateway at the root of its host`);
  // MCP Authorization §Communication Security: every authorization endpoint is https, loopback excepted
  if (u.protocol === "http:" && !isLoopbackHost(u.hostname))
    throw new ConfigError(`--public-url "${raw}" must use https unless it is a loopback address: put the gateway behind a TLS proxy and give its https URL`);
  return u.origin;
};

/** An upstream URL as logs and the banner show it: no user info, and no query, where some servers take an API key. */
export function shownUrl(raw: string): string {
  const u = new URL(raw);
  return `${u.origin}${u.pathname}${u.search ? "?…" : ""}`;
}
