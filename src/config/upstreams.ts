import { configuredScopeTokens } from "../scope.js";
import type { Context, Entry } from "./entry.js";
import { ConfigError } from "./errors.js";
import { readUpstreamsFile } from "./file.js";
import { parseHeaderLines } from "./headers.js";
import { label, type Flag, type Reader } from "./options.js";
import { parseEntry } from "./server.js";
import type { UpstreamConfig } from "./types.js";
import { mcpPath } from "../paths.js";

/** The single upstream's flags, each with the path of the `mcpServers` field it stands for in the entry they make. */
const UPSTREAM_FLAGS: readonly [Flag, string][] = [
  ["upstream-rs", "url"],
  ["upstream-as", "oauth.issuer"],
  ["upstream-client-id", "oauth.clientId"],
  ["upstream-client-secret", "oauth.clientSecret"],
  ["upstream-authorize-endpoint", "oauth.authorizationEndpoint"],
  ["upstream-token-endpoint", "oauth.tokenEndpoint"],
  ["upstream-scope", "oauth.scope"],
  ["upstream-scope-max", "oauth.scopeMax"],
  ["upstream-api-url", "oauth.apiUrl"],
  ["upstream-header", "headers"],
  ["upstream-token-endpoint-auth-method", "oauth.tokenEndpointAuthMethod"],
  ["upstream-private-key", "oauth.privateKey"],
];

/** The path the flags' entry stands at, for naming its fields. */
const ROOT = "upstream";

/** The upstreams of `--config`, or the one the `--upstream-*` flags describe. */
export function parseUpstreams(read: Reader, demo: boolean, publicUrl: string, env: Readonly<Record<string, string | undefined>>): readonly UpstreamConfig[] {
  const file = read.given("config");
  if (file === undefined) return Object.freeze([flagUpstream(read, demo, publicUrl)]);
  const mixed = UPSTREAM_FLAGS.find(([flag]) => read.given(flag) !== undefined);
  if (mixed)
    throw new ConfigError(
      `${label("config")} and ${label(mixed[0])} do not go together: give upstreams either in the config file or with the --upstream-* flags`,
    );
  if (demo) throw new ConfigError(`${label("config")} is not for the demo, which runs its own offline upstream: drop it, or run without "demo"`);
  return Object.freeze(readUpstreamsFile(file, env, publicUrl));
}

/** The flags' upstream at /mcp, parsed as the `mcpServers` entry they stand for; messages name the flags. */
function flagUpstream(read: Reader, demo: boolean, publicUrl: string): UpstreamConfig {
  const url = read.given("upstream-rs");
  if (url === undefined && !demo)
    throw new ConfigError(
      "--upstream-rs is required: give the upstream MCP endpoint, e.g. --upstream-rs https://api.githubcopilot.com/mcp/ (or --config gateway.json for several, or run `mcp-oauth-gateway demo`)",
    );
  const ctx: Context = {
    name: (path) => {
      const flag = UPSTREAM_FLAGS.find(([, key]) => `${ROOT}.${key}` === path)?.[0];
      return flag === undefined ? path : label(flag);
    },
    problem: (message) => new ConfigError(message),
    baseDir: process.cwd(),
    publicUrl,
  };
  const entry = parseEntry(ctx, ROOT, flagEntry(read), false);
  return Object.freeze({ name: "", path: mcpPath(""), title: entry.resource ? new URL(entry.resource).host : "", ...entry });
}

function flagEntry(read: Reader): Entry {
  // a value of separators only names no scope: as if unset
  const scope = (flag: Flag) => configuredScopeTokens(read.given(flag) ?? "").join(" ") || undefined;
  return {
    url: read.given("upstream-rs"),
    oauth: {
      issuer: read.given("upstream-as"),
      clientId: read.given("upstream-client-id"),
      clientSecret: read.given("upstream-client-secret"),
      authorizationEndpoint: read.given("upstream-authorize-endpoint"),
      tokenEndpoint: read.given("upstream-token-endpoint"),
      scope: scope("upstream-scope"),
      scopeMax: scope("upstream-scope-max"),
      apiUrl: read.given("upstream-api-url"),
      privateKey: read.given("upstream-private-key"),
      tokenEndpointAuthMethod: read.given("upstream-token-endpoint-auth-method"),
    },
    headers: parseHeaderLines(read.given("upstream-header"), label("upstream-header")),
  };
}
