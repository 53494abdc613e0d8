import type { LoginConfig } from "../login/users.js";
import type { TokenEndpointAuthMethod } from "../upstream/client-auth.js";

/**
 * How the gateway authenticates to an upstream (docs/upstreams.md):
 * - `oauth`: chained OAuth, with the pre-registered client when `clientId` is set, else one registered
 *   at the upstream's AS (Client ID Metadata Document or RFC 7591), found by discovery;
 * - `detect`: ask the upstream: a 401 means `oauth` as above, any other answer means `none`;
 * - `static`: fixed credential headers (`credentials`), the same for every user;
 * - `none`: nothing; the client still authenticates to the gateway.
 */
export type UpstreamAuth = "oauth" | "detect" | "static" | "none";

/** Whether the gateway signs each user in at the upstream: not for fixed credentials or none. */
export const signsUsersIn = (auth: UpstreamAuth): boolean => auth !== "static" && auth !== "none";

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
  /** A local server the gateway starts (docs/upstreams.md, stdio servers): `auth` is "none" and `resource` is "". */
  stdio?: StdioServerConfig;
}

/** A string of the config file with its `{{userDir}}` placeholders kept apart from the literal text around them. */
export type Template = readonly (string | { placeholder: "userDir" })[];

/** How to start one stdio server: argv, never a shell; `args`, `env` and `cwd` are expanded per process. */
export interface StdioServerConfig {
  /** The program: a bare name is looked up on PATH, a path is relative to the config file. */
  command: string;
  args: readonly Template[];
  /** Added to the allowlisted variables of the gateway's environment (src/stdio/env.ts). */
  env: Readonly<Record<string, Template>>;
  /** The working directory; absent: the user's directory (or the server's, when shared). */
  cwd?: Template;
  /** One process for every user (server name as key), instead of one per user and client. */
  shared: boolean;
  /** Pass MCP_GATEWAY_USER and MCP_GATEWAY_CLIENT_ID to the process. */
  identityEnv: boolean;
}

/** The local (stdio) servers' processes (src/stdio/pool.ts). */
export interface StdioConfig {
  /** Where the per-user directories live: `<dir>/<server>/<user>`, each 0700. */
  dir: string;
  /** Seconds a process may sit unused before it is ended. */
  idleTimeout: number;
  /** Processes running at once, all servers and users together. */
  maxProcesses: number;
  /** Processes one gateway user may hold at once (shared processes do not count). */
  maxPerUser: number;
  /** The allowlisted variables of the gateway's environment that every process gets (src/stdio/env.ts). */
  environment: Readonly<Record<string, string>>;
}

/** Where state lives (docs/storage.md). */
export type StoreConfig = { kind: "memory" } | { kind: "sqlite"; dataDir: string } | { kind: "redis"; url: string };

export interface Config {
  command: "serve" | "demo" | "hash-password" | "revoke" | "login" | "help" | "version";
  /** `login` only: the device flow against an MCP server (src/cli/login.ts). */
  deviceLogin?: { url: string; clientId?: string; scope?: string; writeConfig?: string; name?: string };
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
  /** Processes serving the port (`--workers`): 1 is the gateway alone; more, a primary and that many workers (src/cluster/). */
  workers: number;
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
  stdio: StdioConfig;
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
