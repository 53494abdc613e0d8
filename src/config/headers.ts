import { HOP_BY_HOP, isIdentityHeader } from "../rs/headers.js";
import { ConfigError } from "./errors.js";

/** Names the relay itself sets, and those that only mean something on one hop (RFC 9110 §7.6.1). */
const RESERVED_UPSTREAM_HEADERS = new Set(["authorization", "host", "content-length", ...HOP_BY_HOP]);

/** Why `name: value` cannot be a fixed upstream header, or undefined when it can. Never quotes the value (it may be a secret). */
export function upstreamHeaderProblem(name: string, value: string, opts: { authorization?: boolean } = {}): string | undefined {
  // RFC 9110 §5.1 (field names are tokens), §5.5 (no CR, LF or NUL in values)
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return `"${name.slice(0, 40)}" is not a header name`;
  if (/[\r\n\0]/.test(value)) return `the value of ${name} holds a line break or NUL`;
  // RFC 9110 §5.5: visible ASCII, spaces and tabs (and obs-text, which undici passes as Latin-1)
  if (/[^\t\x20-\x7E\x80-\xFF]/.test(value)) return `the value of ${name} holds a control character or a character beyond Latin-1`;
  const lower = name.toLowerCase();
  if (lower === "authorization" && !opts.authorization)
    return `${name} is set by the gateway (the user's upstream token; for fixed credentials write "auth": { "bearer": "…" } in a --config file)`;
  if (RESERVED_UPSTREAM_HEADERS.has(lower) && lower !== "authorization") return `${name} is set by the gateway for every request`;
  if (isIdentityHeader(lower)) return `${name} is set by the gateway (it carries identity: see identityHeaders)`;
  return undefined;
}

/** `Name: value` lines (`--upstream-header`), names lowercased; a later line for the same name wins. */
export function parseHeaderLines(raw: string | undefined, label: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of (raw ?? "").split("\n")) {
    if (!line.trim()) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? "" : line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const problem = colon < 0 ? "a line without a colon is not a header" : upstreamHeaderProblem(name, value);
    if (problem) throw new ConfigError(`${label}: ${problem}; write 'Name: value', e.g. --upstream-header 'X-MCP-Readonly: true'`);
    headers[name.toLowerCase()] = value;
  }
  return headers;
}
