import { boolean, integer, list, origins, previousSecrets, publicUrl, secret, text, trustProxy, workers, type Parse } from "./values.js";

interface Option {
  env: string;
  help: string;
  /** What optionReader() takes when neither flag, environment nor env file gives a value: the one place a default is applied. */
  default?: string;
  /** Only from the environment: never on a command line, where `ps` would show it. */
  secret?: boolean;
  /** May be given more than once; from the environment, one value per line. */
  multiple?: boolean;
  parse: Parse<unknown>;
}

/** Every option, by flag, in the order --help lists them. */
export const OPTIONS = {
  port: { env: "MCP_GATEWAY_PORT", default: "8002", parse: integer(0, 65535), help: "port to listen on" },
  host: { env: "MCP_GATEWAY_HOST", default: "127.0.0.1", parse: text, help: "address to listen on" },
  "public-url": {
    env: "MCP_GATEWAY_PUBLIC_URL",
    default: "http://localhost:<port>",
    parse: publicUrl,
    help: "external base URL and issuer (https behind a TLS proxy)",
  },
  "upstream-rs": { env: "MCP_GATEWAY_UPSTREAM_RS", parse: text, help: "upstream MCP endpoint URL, served at /mcp (required unless `demo` or --config)" },
  config: {
    env: "MCP_GATEWAY_CONFIG",
    parse: text,
    help: "JSON file of several upstreams, each served at /mcp/<name> (docs/upstreams.md; instead of the --upstream-* flags, but --upstream-timeout applies to all)",
  },
  "upstream-as": { env: "MCP_GATEWAY_UPSTREAM_AS", parse: text, help: "upstream issuer; discovered from the upstream's RFC 9728 metadata when omitted" },
  "upstream-client-id": {
    env: "MCP_GATEWAY_UPSTREAM_CLIENT_ID",
    parse: text,
    help: "pre-registered upstream client id; omitted: register dynamically if the upstream allows",
  },
  "upstream-client-secret": { env: "MCP_GATEWAY_UPSTREAM_CLIENT_SECRET", parse: text, help: "secret of the pre-registered upstream client" },
  "upstream-authorize-endpoint": {
    env: "MCP_GATEWAY_UPSTREAM_AUTHORIZE_ENDPOINT",
    parse: text,
    help: "upstream authorization endpoint (skips discovery; needs --upstream-token-endpoint)",
  },
  "upstream-token-endpoint": {
    env: "MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT",
    parse: text,
    help: "upstream token endpoint (skips discovery; needs --upstream-authorize-endpoint)",
  },
  "upstream-api-url": {
    env: "MCP_GATEWAY_UPSTREAM_API_URL",
    parse: text,
    help: "GitHub REST API base, for the user's identity, organisation membership and revoking upstream tokens (default: api.github.com, or https://<host>/api/v3 for GitHub Enterprise Server)",
  },
  "upstream-header": {
    env: "MCP_GATEWAY_UPSTREAM_HEADERS",
    multiple: true,
    parse: text,
    help: "`Name: value` added to every /mcp request upstream, e.g. 'X-MCP-Readonly: true' (repeatable; in the environment one per line)",
  },
  "upstream-timeout": {
    env: "MCP_GATEWAY_UPSTREAM_TIMEOUT",
    default: "120",
    parse: integer(1, 86_400),
    help: "seconds to wait for the upstream's response headers (then 504)",
  },
  "upstream-scope": {
    env: "MCP_GATEWAY_UPSTREAM_SCOPE",
    parse: text,
    help: "scopes asked of the upstream when the client asks for none (space or comma separated)",
  },
  "upstream-scope-max": {
    env: "MCP_GATEWAY_UPSTREAM_SCOPE_MAX",
    parse: text,
    help: "the most a client may ask of the upstream (space or comma separated): a scope outside it is refused with invalid_scope (default: any)",
  },
  "upstream-token-endpoint-auth-method": {
    env: "MCP_GATEWAY_UPSTREAM_TOKEN_ENDPOINT_AUTH_METHOD",
    parse: text,
    help: "client_secret_basic, client_secret_post, private_key_jwt or none at the upstream token endpoint (default: as its metadata offers; Basic when it says nothing)",
  },
  "upstream-private-key": {
    env: "MCP_GATEWAY_UPSTREAM_PRIVATE_KEY",
    parse: text,
    help: "PEM file of the private key for private_key_jwt at the upstream token endpoint (RFC 7523)",
  },
  "access-token-ttl": {
    env: "MCP_GATEWAY_ACCESS_TOKEN_TTL",
    default: "3600",
    parse: integer(60, 86_400),
    help: "gateway access token lifetime in seconds (capped by the upstream token's)",
  },
  "refresh-token-ttl": {
    env: "MCP_GATEWAY_REFRESH_TOKEN_TTL",
    default: "2592000",
    parse: integer(300, 31_536_000),
    help: "gateway refresh token lifetime in seconds (30 days)",
  },
  "grant-lifetime": {
    env: "MCP_GATEWAY_GRANT_LIFETIME",
    default: "7776000",
    parse: integer(300, 315_360_000),
    help: "seconds a grant lives from its sign-in however often it is refreshed (90 days); then the user signs in again",
  },
  "env-file": {
    env: "MCP_GATEWAY_ENV_FILE",
    default: ".env",
    parse: text,
    help: "file of variables to read: MCP_GATEWAY_*, and those a --config file names (missing file is fine)",
  },
  username: { env: "MCP_GATEWAY_USERNAME", default: "admin", parse: text, help: "gateway login name" },
  password: { env: "MCP_GATEWAY_PASSWORD", secret: true, parse: text, help: "gateway login password; unset: a strong one is generated and printed once" },
  secret: { env: "MCP_GATEWAY_SECRET", secret: true, parse: secret, help: "master secret for token keys (≥32 chars); unset: generated and kept in the store" },
  "previous-secrets": {
    env: "MCP_GATEWAY_PREVIOUS_SECRETS",
    default: "",
    secret: true,
    parse: previousSecrets,
    help: "comma-separated earlier master secrets, still accepted for verification while keys rotate",
  },
  store: {
    env: "MCP_GATEWAY_STORE",
    default: "sqlite",
    parse: text,
    help: "where state lives: sqlite (a file in --data-dir), memory (lost on exit; the demo's default), or a redis:// or rediss:// URL",
  },
  "data-dir": { env: "MCP_GATEWAY_DATA_DIR", default: "~/.mcp-oauth-gateway", parse: text, help: "directory of the sqlite store (created 0700)" },
  "trust-proxy": {
    env: "MCP_GATEWAY_TRUST_PROXY",
    default: "false",
    parse: trustProxy,
    help: "proxies whose X-Forwarded-For to trust for client addresses: a hop count, loopback, or comma-separated addresses/CIDRs",
  },
  "users-file": {
    env: "MCP_GATEWAY_USERS_FILE",
    parse: text,
    help: "file of `username:scrypt-hash` lines, one per gateway user (hashes from `mcp-oauth-gateway hash-password`)",
  },
  "password-hash": {
    env: "MCP_GATEWAY_PASSWORD_HASH",
    secret: true,
    parse: text,
    help: "scrypt hash of the gateway password (from `mcp-oauth-gateway hash-password`), instead of MCP_GATEWAY_PASSWORD",
  },
  "redirect-uri-allow": {
    env: "MCP_GATEWAY_REDIRECT_URI_ALLOW",
    default: "",
    parse: list,
    help: "comma-separated prefixes registered redirect URIs must start with (`loopback` = any loopback URI); unset: any https, loopback or app scheme",
  },
  "max-clients": {
    env: "MCP_GATEWAY_MAX_CLIENTS",
    default: "10000",
    parse: integer(1, 10_000_000),
    help: "registrations accepted per --unused-client-ttl window",
  },
  "unused-client-ttl": {
    env: "MCP_GATEWAY_UNUSED_CLIENT_TTL",
    default: "86400",
    parse: integer(60, 31_536_000),
    help: "seconds a registered client is kept until its first token",
  },
  "allowed-origins": {
    env: "MCP_GATEWAY_ALLOWED_ORIGINS",
    default: "",
    parse: origins,
    help: "comma-separated browser origins allowed to call /mcp besides the gateway's own and loopback origins",
  },
  "allow-private-fetch": {
    env: "MCP_GATEWAY_ALLOW_PRIVATE_FETCH",
    default: "false",
    parse: boolean,
    help: "fetch client metadata documents from private and loopback addresses too, and offer upstreams the gateway's own at a private https public URL (tests only)",
  },
  "sse-heartbeat": {
    env: "MCP_GATEWAY_SSE_HEARTBEAT",
    default: "15",
    parse: integer(0, 3600),
    help: "seconds of silence after which an event stream gets an SSE comment, so intermediaries keep it open (0: never)",
  },
  "shutdown-grace": {
    env: "MCP_GATEWAY_SHUTDOWN_GRACE",
    default: "10",
    parse: integer(0, 3600),
    help: "seconds in-flight requests get to finish after SIGTERM (event streams end at once)",
  },
  "max-streams-per-grant": {
    env: "MCP_GATEWAY_MAX_STREAMS_PER_GRANT",
    default: "20",
    parse: integer(1, 100_000),
    help: "event streams one grant (a user's sign-in at one client) may hold open at once per process (with --workers N: up to N times this); more get 429",
  },
  "max-streams-per-address": {
    env: "MCP_GATEWAY_MAX_STREAMS_PER_ADDRESS",
    default: "200",
    parse: integer(1, 1_000_000),
    help: "event streams one client address may hold open at once per process (with --workers N: up to N times this); more get 429",
  },
  workers: {
    env: "MCP_GATEWAY_WORKERS",
    default: "1",
    parse: workers,
    help: "processes serving the port (auto: one per CPU); more than 1 needs a shared store (sqlite or redis), each keeps its own caches (docs/deployment.md)",
  },
  "stdio-dir": {
    env: "MCP_GATEWAY_STDIO_DIR",
    default: "<data-dir>/stdio",
    parse: text,
    help: "where local (stdio) servers keep each user's directory, <dir>/<server>/<user> (created 0700)",
  },
  "stdio-idle-timeout": {
    env: "MCP_GATEWAY_STDIO_IDLE_TIMEOUT",
    default: "600",
    parse: integer(1, 86_400),
    help: "seconds a local server's process may sit unused before it is ended (started again on next use)",
  },
  "stdio-max-processes": {
    env: "MCP_GATEWAY_STDIO_MAX_PROCESSES",
    default: "50",
    parse: integer(1, 10_000),
    help: "local server processes running at once, all servers and users together; more get 503",
  },
  "stdio-max-per-user": {
    env: "MCP_GATEWAY_STDIO_MAX_PER_USER",
    default: "4",
    parse: integer(1, 10_000),
    help: "local server processes one gateway user may hold at once (shared servers do not count); more get 503",
  },
} satisfies Record<string, Option>;

export type Flag = keyof typeof OPTIONS;

/** An option's parsed value: never undefined when it has a default. */
export type Value<F extends Flag> = ReturnType<(typeof OPTIONS)[F]["parse"]> | ((typeof OPTIONS)[F] extends { default: string } ? never : undefined);

const ROWS: readonly [string, Option][] = Object.entries(OPTIONS);

/** How a message names an option: by its flag and its variable, since either may have set it. */
export const label = (flag: Flag): string => `--${flag} (${OPTIONS[flag].env})`;

/** The flags a command line may carry: secrets only come from the environment. */
export const commandLineFlags = (): [string, Option][] => ROWS.filter(([, o]) => !o.secret);

/** The secret option a command line tried to give, if any. */
export const secretOnCommandLine = (argv: readonly string[]): [string, Option] | undefined =>
  ROWS.find(([flag, o]) => o.secret && argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`)));

/** An option's text and value, from a flag, else the environment, else the env file; an empty value is no value. */
export interface Reader {
  given(flag: Flag): string | undefined;
  /** The parsed value, else of `fallback`, else of the option's default. */
  value<F extends Flag>(flag: F, fallback?: string): Value<F>;
}

type Env = Readonly<Record<string, string | undefined>>;

export function optionReader(commandLine: Readonly<Record<string, unknown>>, env: Env, envFile: Env): Reader {
  const given = (flag: Flag): string | undefined => {
    const option: Option = OPTIONS[flag];
    const flagged = option.secret ? undefined : (commandLine[flag] as string | string[] | undefined);
    const v = (Array.isArray(flagged) ? flagged.join("\n") : flagged) ?? env[option.env] ?? envFile[option.env];
    return v === "" ? undefined : v;
  };
  return {
    given,
    value: <F extends Flag>(flag: F, fallback?: string) => {
      const option: Option = OPTIONS[flag];
      const raw = given(flag) ?? fallback ?? option.default;
      return (raw === undefined ? undefined : option.parse(raw, label(flag))) as Value<F>;
    },
  };
}

export function helpText(): string {
  const rows = ROWS.map(([flag, o]) => {
    const name = o.secret ? `(env only)` : `--${flag} <value>`;
    const dflt = o.default ? ` [default: ${o.default}]` : "";
    return `  ${name.padEnd(38)} ${o.env}\n      ${o.help}${dflt}`;
  });
  return [
    "Usage: mcp-oauth-gateway [demo | hash-password | revoke] [options]",
    "       mcp-oauth-gateway login <mcp-url> [--client-id ID] [--scope SCOPE] [--write-config FILE [--name NAME]]",
    "",
    "  (no command)   run the gateway in front of --upstream-rs, or of the upstreams of --config",
    "  demo           run the gateway in front of a bundled offline GitHub simulator",
    "  hash-password  read a password from stdin (one line) and print its scrypt hash:",
    "                 the value of the password hash variable, or of a users file line `username:hash`",
    "  revoke         end grants in the store the options name: --user NAME and --client ID (each repeatable);",
    "                 a running gateway on the same store refuses their tokens within 1 s",
    "  login          sign in to an MCP server behind OAuth without a browser here (RFC 8628 device flow):",
    "                 prints a code to enter at a page on any device, then the token response as JSON;",
    "                 --write-config FILE merges { url, headers: { Authorization } } into its mcpServers",
    "                 under --name (default: the URL's last path segment), mode 0600; --client-id skips",
    "                 registration; --scope asks for a scope",
    "",
    "Options (flag, environment variable; flags win over the environment, which wins over the env file):",
    ...rows,
    `  ${"--help".padEnd(38)} show this help`,
    `  ${"--version".padEnd(38)} show the version`,
  ].join("\n");
}
