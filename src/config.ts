import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs, parseEnv } from "node:util";
import { loadLogin, type LoginConfig } from "./login/users.js";
import { readUpstreamsFile, scopeMaxProblem } from "./config-file.js";
import { HOP_BY_HOP, isIdentityHeader } from "./rs/headers.js";
import { authMethodNamed, loadSigningKey, pinnedMethodProblem, TOKEN_ENDPOINT_AUTH_METHODS, type TokenEndpointAuthMethod } from "./upstream/client-auth.js";

/**
 * How the gateway authenticates to an upstream (docs/upstreams.md):
 * - `oauth`: chained OAuth, with the pre-registered client when `clientId` is set, else one registered
 *   at the upstream's AS (Client ID Metadata Document or RFC 7591), found by discovery;
 * - `detect`: ask the upstream: a 401 means `oauth` as above, any other answer means `none`;
 * - `static`: fixed credential headers (`credentials`), the same for every user;
 * - `none`: nothing; the client still authenticates to the gateway.
 */
export type UpstreamAuth = "oauth" | "detect" | "static" | "none";

/** One upstream and how to reach it. Passed around as a value, never a global. */
export interface UpstreamConfig {
  /** The config file's name for it; "" for the single upstream of the `--upstream-*` flags. */
  name: string;
  /** Where the gateway serves it: `/mcp` (the flags) or `/mcp/<name>` (the config file). */
  path: string;
  /** Shown on the login screen: `title`, else the name, else the upstream's host. */
  title: string;
  /** The upstream MCP endpoint (`--upstream-rs`, `url`). */
  resource: string;
  auth: UpstreamAuth;
  issuer?: string;
  clientId?: string;
  clientSecret?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  /** Space-separated scopes asked for when the client asks for none. */
  scope?: string;
  /** Space-separated scopes a client may ask for at most (`--upstream-scope-max`, `scopeMax`); absent: any. */
  scopeMax?: string;
  /** GitHub's REST API base (token revocation, identity, org membership); worked out from the issuer when omitted. */
  apiUrl?: string;
  /** PEM private key for `private_key_jwt` at the upstream token endpoint (RFC 7523). Secret. */
  privateKey?: string;
  /** Pins how the gateway authenticates at the upstream token endpoint; else chosen by its metadata (src/upstream/client-auth.ts). */
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod;
  /** `static` only: the credential headers (lowercased names), e.g. `authorization: Bearer …` or `x-api-key: …`. Secret. */
  credentials?: Readonly<Record<string, string>>;
  /** Fixed headers (lowercased names) added to every request upstream, replacing any the client sent. */
  headers: Readonly<Record<string, string>>;
  /** Send X-Forwarded-User, -Email and -Preferred-Username (docs/upstreams.md, identity headers). */
  identityHeaders: boolean;
  /** Upstream identities that may pass (GitHub logins, OIDC `sub` or verified email; gateway users for `static`/`none`). Empty: anyone. */
  allowUsers: readonly string[];
  /** GitHub organisations whose active members may pass. */
  allowOrgs: readonly string[];
}

/** Where state lives (docs/storage.md). */
export type StoreConfig = { kind: "memory" } | { kind: "sqlite"; dataDir: string } | { kind: "redis"; url: string };

export interface Config {
  command: "serve" | "demo" | "hash-password" | "revoke" | "help" | "version";
  /** `revoke` only: whose grants to end, by gateway user name and by client id. */
  revoke?: { users: readonly string[]; clients: readonly string[] };
  port: number;
  host: string;
  /** The gateway's external base URL, no trailing slash. Also the issuer, byte for byte. */
  publicUrl: string;
  /** No --public-url: every loopback name of the port (localhost, 127.0.0.1, [::1]) is the gateway's (src/origins.ts). */
  loopbackNames: boolean;
  /** One upstream at `/mcp` (the flags), or those of `--config` at `/mcp/<name>`. Never empty. */
  upstreams: readonly UpstreamConfig[];
  /** Gateway users and their scrypt hashes; a plain password never stays here unless generated (docs/security.md). */
  login: LoginConfig;
  /** Master secret for signing and sealing keys; undefined means generate one and keep it in the store. */
  secret?: string;
  /** Earlier master secrets: their keys still verify and unseal, never sign. */
  previousSecrets: readonly string[];
  store: StoreConfig;
  /** Express's `trust proxy`: which hops' X-Forwarded-For to believe for the client address. */
  trustProxy: boolean | number | string;
  /** Dynamic registration policy (docs/security.md, registration). */
  registration: {
    /** When non-empty, redirect URIs must start with one of these (`loopback` stands for any loopback URI). */
    redirectUriAllow: readonly string[];
    /** At most this many registrations per `unusedClientTtl` window, so live unused clients stay bounded. */
    maxClients: number;
    /** Seconds a registered client lives until it first redeems a code. */
    unusedClientTtl: number;
  };
  /** Extra `Origin` values /mcp accepts besides the public URL's and loopback origins (DNS rebinding). */
  allowedOrigins: readonly string[];
  /** Let server-side fetches on a client's behalf (CIMD) reach private and loopback addresses: tests only. */
  allowPrivateFetch: boolean;
  /** The /mcp relay (DESIGN §5). */
  proxy: ProxyConfig;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  /** Seconds a grant lives from its sign-in, however often it is refreshed; then the user signs in again. */
  grantLifetime: number;
}

export interface ProxyConfig {
  /** Seconds to wait for the upstream's response headers before answering 504. */
  upstreamTimeout: number;
  /** Seconds of silence after which an event stream gets an SSE comment; 0: never. */
  sseHeartbeat: number;
  /** Seconds in-flight requests get to finish after SIGTERM. */
  shutdownGrace: number;
  /** Event streams one grant may hold open at once on this instance (then 429). */
  maxStreamsPerGrant: number;
  /** Event streams one client address may hold open at once on this instance (then 429). */
  maxStreamsPerAddress: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

interface Option {
  flag: string;
  env: string;
  help: string;
  default?: string;
  /** Only from the environment: never on a command line, where `ps` would show it. */
  secret?: boolean;
  /** May be given more than once; from the environment, one value per line. */
  multiple?: boolean;
}

const OPTIONS: readonly Option[] = [
  { flag: "port", env: "MCP_GATEWAY_PORT", default: "8002", help: "port to listen on" },
  { flag: "host", env: "MCP_GATEWAY_HOST", default: "127.0.0.1", help: "address to listen on" },
  { flag: "public-url", env: "MCP_GATEWAY_PUBLIC_URL", default: "http://localhost:<port>", help: "external base URL and issuer (https behind a TLS proxy)" },
  { flag: "upstream-rs", env: "MCP_GATEWAY_UPSTREAM_RS", help: "upstream MCP endpoint URL, served at /mcp (required unless `demo` or --config)" },
  {
    flag: "config",
    env: "MCP_GATEWAY_CONFIG",
    help: "JSON file of several upstreams, each served at /mcp/<name> (docs/upstreams.md; instead of the --upstream-* flags, but --upstream-timeout applies to all)",
  },
  { flag: "upstream-as", env: "MCP_GATEWAY_UPSTREAM_AS", help: "upstream issuer; discovered from the upstream's RFC 9728 metadata when omitted" },
  {
    flag: "upstream-client-id",
    env: "MCP_GATEWAY_UPSTREAM_CLIENT_ID",
    help: "pre-registered upstream client id; omitted: register dynamically if the upstream allows",
  },
  { flag: "upstream-client-secret", env: "MCP_GATEWAY_UPSTREAM_CLIENT_SECRET", help: "secret of the pre-registered upstream client" },
  {
    flag: "upstream-authorize-endpoint",
    env: "MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT",
    help: "upstream authorization endpoint (skips discovery; needs --upstream-token-endpoint)",
  },
  {
    flag: "upstream-token-endpoint",
    env: "MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT",
    help: "upstream token endpoint (skips discovery; needs --upstream-authorize-endpoint)",
  },
  {
    flag: "upstream-api-url",
    env: "MCP_GATEWAY_UPSTREAM_API_URL",
    help: "GitHub REST API base, for the user's identity, organisation membership and revoking upstream tokens (default: api.github.com, or https://<host>/api/v3 for GitHub Enterprise Server)",
  },
  {
    flag: "upstream-header",
    env: "MCP_GATEWAY_UPSTREAM_HEADERS",
    multiple: true,
    help: "`Name: value` added to every /mcp request upstream, e.g. 'X-MCP-Readonly: true' (repeatable; in the environment one per line)",
  },
  { flag: "upstream-timeout", env: "MCP_GATEWAY_UPSTREAM_TIMEOUT", default: "120", help: "seconds to wait for the upstream's response headers (then 504)" },
  { flag: "upstream-scope", env: "MCP_GATEWAY_UPSTREAM_SCOPE", help: "scopes asked of the upstream when the client asks for none (space or comma separated)" },
  {
    flag: "upstream-scope-max",
    env: "MCP_GATEWAY_UPSTREAM_SCOPE_MAX",
    help: "the most a client may ask of the upstream (space or comma separated): a scope outside it is refused with invalid_scope (default: any)",
  },
  {
    flag: "upstream-token-endpoint-auth-method",
    env: "MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT_AUTH_METHOD",
    help: "client_secret_basic, client_secret_post, private_key_jwt or none at the upstream token endpoint (default: as its metadata offers; Basic when it says nothing)",
  },
  {
    flag: "upstream-private-key",
    env: "MCP_GATEWAY_UPSTREAM_PRIVATE_KEY",
    help: "PEM file of the private key for private_key_jwt at the upstream token endpoint (RFC 7523)",
  },
  {
    flag: "access-token-ttl",
    env: "MCP_GATEWAY_ACCESS_TOKEN_TTL",
    default: "3600",
    help: "gateway access token lifetime in seconds (capped by the upstream token's)",
  },
  { flag: "refresh-token-ttl", env: "MCP_GATEWAY_REFRESH_TOKEN_TTL", default: "2592000", help: "gateway refresh token lifetime in seconds (30 days)" },
  {
    flag: "grant-lifetime",
    env: "MCP_GATEWAY_GRANT_LIFETIME",
    default: "7776000",
    help: "seconds a grant lives from its sign-in however often it is refreshed (90 days); then the user signs in again",
  },
  {
    flag: "env-file",
    env: "MCP_GATEWAY_ENV_FILE",
    default: ".env",
    help: "file of variables to read: MCP_GATEWAY_*, and those a --config file names (missing file is fine)",
  },
  { flag: "username", env: "MCP_GATEWAY_USERNAME", default: "admin", help: "gateway login name" },
  { flag: "password", env: "MCP_GATEWAY_PASSWORD", secret: true, help: "gateway login password; unset: a strong one is generated and printed once" },
  { flag: "secret", env: "MCP_GATEWAY_SECRET", secret: true, help: "master secret for token keys (≥32 chars); unset: generated and kept in the store" },
  {
    flag: "previous-secrets",
    env: "MCP_GATEWAY_PREVIOUS_SECRETS",
    secret: true,
    help: "comma-separated earlier master secrets, still accepted for verification while keys rotate",
  },
  {
    flag: "store",
    env: "MCP_GATEWAY_STORE",
    default: "sqlite",
    help: "where state lives: sqlite (a file in --data-dir), memory (lost on exit; the demo's default), or a redis:// or rediss:// URL",
  },
  { flag: "data-dir", env: "MCP_GATEWAY_DATA_DIR", default: "~/.mcp-oauth-gateway", help: "directory of the sqlite store (created 0700)" },
  {
    flag: "trust-proxy",
    env: "MCP_GATEWAY_TRUST_PROXY",
    default: "false",
    help: "proxies whose X-Forwarded-For to trust for client addresses: a hop count, loopback, or comma-separated addresses/CIDRs",
  },
  {
    flag: "users-file",
    env: "MCP_GATEWAY_USERS_FILE",
    help: "file of `username:scrypt-hash` lines, one per gateway user (hashes from `mcp-oauth-gateway hash-password`)",
  },
  {
    flag: "password-hash",
    env: "MCP_GATEWAY_PASSWORD_HASH",
    secret: true,
    help: "scrypt hash of the gateway password (from `mcp-oauth-gateway hash-password`), instead of MCP_GATEWAY_PASSWORD",
  },
  {
    flag: "redirect-uri-allow",
    env: "MCP_GATEWAY_REDIRECT_URI_ALLOW",
    help: "comma-separated prefixes registered redirect URIs must start with (`loopback` = any loopback URI); unset: any https, loopback or app scheme",
  },
  { flag: "max-clients", env: "MCP_GATEWAY_MAX_CLIENTS", default: "10000", help: "registrations accepted per --unused-client-ttl window" },
  { flag: "unused-client-ttl", env: "MCP_GATEWAY_UNUSED_CLIENT_TTL", default: "86400", help: "seconds a registered client is kept until its first token" },
  {
    flag: "allowed-origins",
    env: "MCP_GATEWAY_ALLOWED_ORIGINS",
    help: "comma-separated browser origins allowed to call /mcp besides the gateway's own and loopback origins",
  },
  {
    flag: "allow-private-fetch",
    env: "MCP_GATEWAY_ALLOW_PRIVATE_FETCH",
    default: "false",
    help: "fetch client metadata documents from private and loopback addresses too, and offer upstreams the gateway's own at a private https public URL (tests only)",
  },
  {
    flag: "sse-heartbeat",
    env: "MCP_GATEWAY_SSE_HEARTBEAT",
    default: "15",
    help: "seconds of silence after which an event stream gets an SSE comment, so intermediaries keep it open (0: never)",
  },
  {
    flag: "shutdown-grace",
    env: "MCP_GATEWAY_SHUTDOWN_GRACE",
    default: "10",
    help: "seconds in-flight requests get to finish after SIGTERM (event streams end at once)",
  },
  {
    flag: "max-streams-per-grant",
    env: "MCP_GATEWAY_MAX_STREAMS_PER_GRANT",
    default: "20",
    help: "event streams one grant (a user's sign-in at one client) may hold open at once per instance; more get 429",
  },
  {
    flag: "max-streams-per-address",
    env: "MCP_GATEWAY_MAX_STREAMS_PER_ADDRESS",
    default: "200",
    help: "event streams one client address may hold open at once per instance; more get 429",
  },
];

export function helpText(): string {
  const rows = OPTIONS.map((o) => {
    const name = o.secret ? `(env only)` : `--${o.flag} <value>`;
    const dflt = o.default ? ` [default: ${o.default}]` : "";
    return `  ${name.padEnd(38)} ${o.env}\n      ${o.help}${dflt}`;
  });
  return [
    "Usage: mcp-oauth-gateway [demo | hash-password | revoke] [options]",
    "",
    "  (no command)   run the gateway in front of --upstream-rs, or of the upstreams of --config",
    "  demo           run the gateway in front of a bundled offline GitHub simulator",
    "  hash-password  read a password from stdin (one line) and print its scrypt hash:",
    "                 the value of the password hash variable, or of a users file line `username:hash`",
    "  revoke         end grants in the store the options name: --user NAME and --client ID (each repeatable);",
    "                 a running gateway on the same store refuses their tokens from its next request",
    "",
    "Options (flag, environment variable; flags win over the environment, which wins over the env file):",
    ...rows,
    `  ${"--help".padEnd(38)} show this help`,
    `  ${"--version".padEnd(38)} show the version`,
  ].join("\n");
}

/** The process's own command line and environment: the one place they are read. */
export const loadProcessConfig = (): Readonly<Config> => loadConfig(process.argv.slice(2), process.env);

/** Parse argv, environment and env file once; throw ConfigError naming the flag and the fix. */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Readonly<Config> {
  const { values, positionals } = parseCommandLine(argv);
  if (values.help) return freeze({ command: "help" });
  if (values.version) return freeze({ command: "version" });
  const command = positionals[0] ?? "serve";
  if (command !== "serve" && command !== "demo" && command !== "hash-password" && command !== "revoke")
    throw new ConfigError(`unknown command "${command}": use "demo", "hash-password", "revoke" or no command (see --help)`);
  if (positionals.length > 1) throw new ConfigError(`unexpected argument "${positionals[1]}" (see --help)`);
  const revoke = parseRevoke(command, values);
  if (command === "hash-password") return freeze({ command });

  const envFile = (values["env-file"] as string | undefined) ?? env.MCP_GATEWAY_ENV_FILE ?? ".env";
  const fromFile = readEnvFile(envFile, values["env-file"] !== undefined || env.MCP_GATEWAY_ENV_FILE !== undefined);
  const read = (flag: string): string | undefined => {
    const option = OPTIONS.find((o) => o.flag === flag)!;
    const given = option.secret ? undefined : values[flag];
    const v = (Array.isArray(given) ? given.join("\n") : (given as string | undefined)) ?? env[option.env] ?? fromFile[option.env] ?? undefined;
    return v === "" ? undefined : v;
  };

  const port = integer("port", read("port") ?? "8002", 0, 65535);
  const host = read("host") ?? "127.0.0.1";
  const givenPublicUrl = read("public-url");
  const publicUrl = parsePublicUrl(givenPublicUrl ?? `http://localhost:${port}`);
  const upstreams = parseUpstreams(read, command === "demo", publicUrl, { ...fromFile, ...env });
  const login = loadLogin({ username: read("username"), password: read("password"), passwordHash: read("password-hash"), usersFile: read("users-file") });
  const secret = read("secret");
  if (secret !== undefined && secret.length < 32)
    throw new ConfigError("MCP_GATEWAY_SECRET is too short: use at least 32 random characters (e.g. `openssl rand -base64 32`)");
  const previousSecrets = (read("previous-secrets") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  if (previousSecrets.some((p) => p.length < 32))
    throw new ConfigError("MCP_GATEWAY_PREVIOUS_SECRETS holds a value shorter than 32 characters: list the earlier MCP_GATEWAY_SECRET values, comma-separated");
  const store = parseStore(read("store") ?? (command === "demo" ? "memory" : "sqlite"), read("data-dir"), env.HOME);

  return freeze({
    command,
    ...(revoke ? { revoke } : {}),
    port,
    host,
    publicUrl,
    loopbackNames: givenPublicUrl === undefined,
    upstreams,
    login,
    ...(secret === undefined ? {} : { secret }),
    previousSecrets,
    store,
    trustProxy: parseTrustProxy(read("trust-proxy") ?? "false"),
    registration: {
      redirectUriAllow: list(read("redirect-uri-allow")),
      maxClients: integer("max-clients", read("max-clients") ?? "10000", 1, 10_000_000),
      unusedClientTtl: integer("unused-client-ttl", read("unused-client-ttl") ?? "86400", 60, 31_536_000),
    },
    allowedOrigins: list(read("allowed-origins")).map((o) => origin("allowed-origins", o)),
    allowPrivateFetch: boolean("allow-private-fetch", read("allow-private-fetch") ?? "false"),
    proxy: {
      upstreamTimeout: integer("upstream-timeout", read("upstream-timeout") ?? "120", 1, 86_400),
      sseHeartbeat: integer("sse-heartbeat", read("sse-heartbeat") ?? "15", 0, 3600),
      shutdownGrace: integer("shutdown-grace", read("shutdown-grace") ?? "10", 0, 3600),
      maxStreamsPerGrant: integer("max-streams-per-grant", read("max-streams-per-grant") ?? "20", 1, 100_000),
      maxStreamsPerAddress: integer("max-streams-per-address", read("max-streams-per-address") ?? "200", 1, 1_000_000),
    },
    accessTokenTtl: integer("access-token-ttl", read("access-token-ttl") ?? "3600", 60, 86_400),
    refreshTokenTtl: integer("refresh-token-ttl", read("refresh-token-ttl") ?? "2592000", 300, 31_536_000),
    grantLifetime: integer("grant-lifetime", read("grant-lifetime") ?? "7776000", 300, 315_360_000),
  });
}

/** `revoke --user NAME --client ID`: at least one, and only with that command. */
function parseRevoke(command: string, values: CommandLine["values"]): Config["revoke"] {
  const given = (name: string) => ((values[name] as string[] | undefined) ?? []).map((v) => v.trim());
  const users = given("user");
  const clients = given("client");
  if (command !== "revoke") {
    if (users.length || clients.length) throw new ConfigError(`--user and --client are for the revoke command: mcp-oauth-gateway revoke --user NAME`);
    return undefined;
  }
  if (users.some((u) => !u) || clients.some((c) => !c)) throw new ConfigError("revoke: --user and --client need a non-empty value");
  if (!users.length && !clients.length) throw new ConfigError("revoke needs --user NAME or --client ID (each repeatable): whose grants to end");
  return Object.freeze({ users: Object.freeze(users), clients: Object.freeze(clients) });
}

interface CommandLine {
  values: Record<string, string | string[] | boolean | undefined>;
  positionals: string[];
}

function parseCommandLine(argv: readonly string[]): CommandLine {
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    ...Object.fromEntries(OPTIONS.filter((o) => !o.secret).map((o) => [o.flag, { type: "string" as const, multiple: o.multiple ?? false }])),
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
    user: { type: "string", multiple: true },
    client: { type: "string", multiple: true },
  };
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: values as CommandLine["values"], positionals };
  } catch (error) {
    const secretFlag = OPTIONS.find((o) => o.secret && argv.some((a) => a === `--${o.flag}` || a.startsWith(`--${o.flag}=`)));
    if (secretFlag)
      throw new ConfigError(`--${secretFlag.flag} is not a flag: set ${secretFlag.env} in the environment or the env file, where \`ps\` cannot see it`);
    const { code, message } = error as { code?: string; message: string };
    const option = /'(-[^' ]+)/.exec(message)?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE")
      throw new ConfigError(`${option} needs a value: write ${option} <value> (or ${option}=<value> for a value that starts with "-")`);
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw new ConfigError(`unknown option ${option}: see --help for the options`);
    throw new ConfigError(`${message.split("\n")[0]} (see --help)`);
  }
}

function readEnvFile(path: string, explicit: boolean): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    if (explicit) throw new ConfigError(`--env-file ${path} cannot be read: give a readable file or drop the flag`);
    return {};
  }
  return parseEnv(text) as Record<string, string>;
}

/** How a message names an option: by its flag and its variable, since either may have set it. */
const label = (flag: string): string => `--${flag} (${OPTIONS.find((o) => o.flag === flag)?.env ?? "?"})`;

function integer(flag: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new ConfigError(`${label(flag)} "${raw}" is not valid: give a whole number from ${min} to ${max}`);
  return n;
}

function url(flag: string, raw: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${label(flag)} "${raw}" is not a URL: give an absolute http(s) URL such as https://example.com/mcp/`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new ConfigError(`${label(flag)} must be an http(s) URL, not ${parsed.protocol}`);
  if (parsed.hash) throw new ConfigError(`${label(flag)} must not have a #fragment`);
  return parsed;
}

/** An upstream URL as logs and the banner show it: no user info, and no query, where some servers take an API key. */
export function shownUrl(raw: string): string {
  const u = new URL(raw);
  return `${u.origin}${u.pathname}${u.search ? "?…" : ""}`;
}

export const isLoopbackHost = (hostname: string): boolean => hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);

function parsePublicUrl(raw: string): string {
  const u = url("public-url", raw);
  if (u.pathname !== "/" || u.search)
    throw new ConfigError(`--public-url must be an origin without a path or query (got "${raw}"): serve the gateway at the root of its host`);
  // MCP Authorization §Communication Security: every authorization endpoint is https, loopback excepted
  if (u.protocol === "http:" && !isLoopbackHost(u.hostname))
    throw new ConfigError(`--public-url "${raw}" must use https unless it is a loopback address: put the gateway behind a TLS proxy and give its https URL`);
  return u.origin;
}

/** The flags that describe the single upstream at /mcp. */
const UPSTREAM_FLAGS = [
  "upstream-rs",
  "upstream-as",
  "upstream-client-id",
  "upstream-client-secret",
  "upstream-authorize-endpoint",
  "upstream-token-endpoint",
  "upstream-scope",
  "upstream-scope-max",
  "upstream-api-url",
  "upstream-header",
  "upstream-token-endpoint-auth-method",
  "upstream-private-key",
];

function parseUpstreams(
  read: (flag: string) => string | undefined,
  demo: boolean,
  publicUrl: string,
  env: Readonly<Record<string, string | undefined>>,
): readonly UpstreamConfig[] {
  const file = read("config");
  if (file === undefined) return Object.freeze([parseFlagUpstream(read, demo)]);
  const mixed = UPSTREAM_FLAGS.find((flag) => read(flag) !== undefined);
  if (mixed)
    throw new ConfigError(`${label("config")} and ${label(mixed)} do not go together: give upstreams either in the config file or with the --upstream-* flags`);
  if (demo) throw new ConfigError(`${label("config")} is not for the demo, which runs its own offline upstream: drop it, or run without "demo"`);
  return Object.freeze(readUpstreamsFile(file, env, publicUrl));
}

function parseFlagUpstream(read: (flag: string) => string | undefined, demo: boolean): UpstreamConfig {
  const rs = read("upstream-rs");
  if (rs === undefined && !demo)
    throw new ConfigError(
      "--upstream-rs is required: give the upstream MCP endpoint, e.g. --upstream-rs https://api.githubcopilot.com/mcp/ (or --config gateway.json for several, or run `mcp-oauth-gateway demo`)",
    );
  const optionalUrl = (flag: string) => {
    const v = read(flag);
    return v === undefined ? undefined : url(flag, v).href;
  };
  const authorizationEndpoint = optionalUrl("upstream-authorize-endpoint");
  const tokenEndpoint = optionalUrl("upstream-token-endpoint");
  if ((authorizationEndpoint === undefined) !== (tokenEndpoint === undefined))
    throw new ConfigError("--upstream-authorize-endpoint and --upstream-token-endpoint go together: give both to skip discovery, or neither");
  const clientId = read("upstream-client-id");
  const clientSecret = read("upstream-client-secret");
  if (clientSecret !== undefined && clientId === undefined)
    throw new ConfigError("--upstream-client-secret needs --upstream-client-id: give the id of the client the secret belongs to");
  // a value of separators only names no scope: as if unset
  const scopeList = (flag: string) =>
    read(flag)
      ?.split(/[\s,]+/)
      .filter(Boolean)
      .join(" ") || undefined;
  const scope = scopeList("upstream-scope");
  const scopeMax = scopeList("upstream-scope-max");
  const bounded = scopeMaxProblem({ scope, scopeMax }, { scope: label("upstream-scope"), scopeMax: label("upstream-scope-max") });
  if (bounded) throw new ConfigError(bounded);
  const issuer = optionalUrl("upstream-as");
  const apiUrl = optionalUrl("upstream-api-url")?.replace(/\/$/, "");
  const privateKey = readPrivateKey(read("upstream-private-key"));
  const tokenEndpointAuthMethod = readAuthMethod(read("upstream-token-endpoint-auth-method"));
  const pinned = pinnedMethodProblem(
    { method: tokenEndpointAuthMethod, privateKey, clientId, clientSecret },
    { method: label("upstream-token-endpoint-auth-method"), privateKey: label("upstream-private-key"), clientSecret: label("upstream-client-secret") },
  );
  if (pinned) throw new ConfigError(pinned);
  const optional = { issuer, clientId, clientSecret, authorizationEndpoint, tokenEndpoint, scope, scopeMax, apiUrl, privateKey, tokenEndpointAuthMethod };
  const resource = rs === undefined ? "" : url("upstream-rs", rs).href;
  return Object.freeze({
    name: "",
    path: "/mcp",
    title: resource ? new URL(resource).host : "",
    resource,
    auth: "oauth" as const,
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v)),
    headers: parseUpstreamHeaders(read("upstream-header")),
    identityHeaders: false,
    allowUsers: Object.freeze([]),
    allowOrgs: Object.freeze([]),
  });
}

/** `--upstream-private-key`: a PEM file's path (or, in the variable, the PEM itself); never shown in messages. */
function readPrivateKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const loaded = loadSigningKey(value, process.cwd());
  if ("problem" in loaded) throw new ConfigError(`${label("upstream-private-key")}: ${loaded.problem}`);
  return loaded.pem;
}

function readAuthMethod(raw: string | undefined): TokenEndpointAuthMethod | undefined {
  if (raw === undefined) return undefined;
  const method = authMethodNamed(raw);
  if (!method) throw new ConfigError(`${label("upstream-token-endpoint-auth-method")} must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(", ")}`);
  return method;
}

function parseStore(raw: string, dataDir: string | undefined, home: string | undefined): StoreConfig {
  if (raw === "sqlite") {
    const dir = dataDir ?? "~/.mcp-oauth-gateway";
    return { kind: "sqlite", dataDir: resolve(dir === "~" || dir.startsWith("~/") ? join(home ?? homedir(), dir.slice(1)) : dir) };
  }
  if (dataDir !== undefined) throw new ConfigError(`${label("data-dir")} is for the sqlite store only: drop it, or choose --store sqlite`);
  if (raw === "memory") return { kind: "memory" };
  if (/^rediss?:\/\//i.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new ConfigError(`${label("store")} is not a valid Redis URL: write redis://[:password@]host[:port][/db] or rediss://… for TLS`);
    }
    return { kind: "redis", url: raw };
  }
  const shown = raw.includes("@") ? "" : ` "${raw}"`; // a mistyped Redis URL may hold its password
  throw new ConfigError(`${label("store")}${shown} is not a store: use sqlite, memory, or a redis:// URL`);
}

const list = (raw: string | undefined): string[] =>
  (raw ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);

function boolean(flag: string, raw: string): boolean {
  if (raw !== "true" && raw !== "false") throw new ConfigError(`${label(flag)} "${raw}" is not valid: give true or false`);
  return raw === "true";
}

function origin(flag: string, raw: string): string {
  const u = url(flag, raw);
  if (u.origin !== raw.replace(/\/$/, "")) throw new ConfigError(`${label(flag)} "${raw}" is not an origin: write scheme://host[:port] without a path`);
  return u.origin;
}

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

function parseUpstreamHeaders(raw: string | undefined): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  for (const line of (raw ?? "").split("\n")) {
    if (!line.trim()) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? "" : line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const problem = colon < 0 ? "a line without a colon is not a header" : upstreamHeaderProblem(name, value);
    if (problem) throw new ConfigError(`${label("upstream-header")}: ${problem}; write 'Name: value', e.g. --upstream-header 'X-MCP-Readonly: true'`);
    headers[name.toLowerCase()] = value;
  }
  return Object.freeze(headers);
}

function parseTrustProxy(raw: string): boolean | number | string {
  if (raw === "false" || raw === "true") return raw === "true";
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw;
}

function freeze<T extends Partial<Config>>(config: T): Readonly<Config> {
  if (config.login) {
    config.login.users.forEach((u) => Object.freeze(u));
    Object.freeze(config.login.users);
    Object.freeze(config.login);
  }
  if (config.store) Object.freeze(config.store);
  if (config.previousSecrets) Object.freeze(config.previousSecrets);
  if (config.registration) Object.freeze(config.registration);
  if (config.allowedOrigins) Object.freeze(config.allowedOrigins);
  if (config.proxy) Object.freeze(config.proxy);
  return Object.freeze(config) as unknown as Readonly<Config>;
}
