import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseUpstreamsFile } from "../../src/config/file.js";
import { loadConfig } from "../../src/config/load.js";
import type { Config, ProxyConfig, StdioConfig, StoreConfig, UpstreamConfig } from "../../src/config/types.js";
import { inheritedEnvironment } from "../../src/stdio/env.js";
import { hashPasswordSync } from "../../src/login/passwords.js";

export const LOGIN = { username: "alice", password: "correct horse battery staple" };

export interface TestUser {
  username: string;
  password: string;
}

/** One entry of the config file's `mcpServers`, as written (docs/gateway.schema.json). */
export interface ServerEntry {
  url: string;
  type?: string;
  title?: string;
  oauth?: {
    clientId?: string;
    clientSecret?: string;
    scope?: string | string[];
    scopeMax?: string | string[];
    issuer?: string;
    authorizationEndpoint?: string;
    tokenEndpoint?: string;
    apiUrl?: string;
    privateKey?: string;
    tokenEndpointAuthMethod?: string;
  };
  auth?: "none" | { bearer: string } | { header: string; value: string };
  headers?: Record<string, string>;
  identityHeaders?: boolean | { thirdParty: true };
  allowUsers?: string[];
  allowOrgs?: string[];
}

/** One local (stdio) server entry of `mcpServers` (docs/upstreams.md, stdio servers). */
export interface StdioEntry {
  command: string;
  type?: "stdio";
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  shared?: boolean;
  identityEnv?: boolean;
  title?: string;
  allowUsers?: string[];
}

type Plain = Omit<Config, "command" | "revoke" | "publicUrl" | "loopbackNames" | "upstreams" | "login" | "store" | "proxy" | "registration" | "stdio">;

export interface TestConfigOptions extends Partial<Plain> {
  /** The upstreams, as the config file's `mcpServers` (docs/upstreams.md). */
  mcpServers: Readonly<Record<string, ServerEntry | StdioEntry>>;
  /** Serve the one server at `/mcp`, as the `--upstream-*` flags do, instead of at `/mcp/<name>`. */
  atMcp?: boolean;
  /** The values of `${VAR}` in the entries. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The config file the entries stand for: relative key paths start beside it. */
  source?: string;
  /** Default `http://127.0.0.1:<port>`; `null`: none given, so every loopback name works and localhost is canonical. */
  publicUrl?: string | null;
  /** Default LOGIN. */
  users?: readonly TestUser[];
  /** Default memory; startTestGateway's `store` takes a Store instance instead. */
  storeConfig?: StoreConfig;
  proxy?: Partial<ProxyConfig>;
  registration?: Partial<Config["registration"]>;
  /** Default: the CLI's, with the test process's allowlisted environment and a `dir` of its own under the OS temp directory (made at the first spawn). */
  stdio?: Partial<StdioConfig>;
}

/** `base` with `extra`'s keys on top; `oauth` merged key by key. */
export function merged(base: ServerEntry, extra: Partial<ServerEntry> | undefined): ServerEntry {
  const entry = { ...base, ...extra };
  if (base.oauth && extra?.oauth) entry.oauth = { ...base.oauth, ...extra.oauth };
  return entry;
}

let defaults: Readonly<Config> | undefined;

/** Every option left out has the value the CLI gives it: these defaults come from loadConfig itself. */
function serveDefaults(): Readonly<Config> {
  defaults ??= loadConfig(["--upstream-rs", "http://127.0.0.1/unused"], { MCP_GATEWAY_ENV_FILE: "/dev/null", MCP_GATEWAY_PASSWORD: LOGIN.password });
  return defaults;
}

/** A gateway's configuration from typed options: a memory store on an ephemeral loopback port unless told, frozen as loadConfig freezes it. */
export function testConfig(options: TestConfigOptions): Readonly<Config> {
  const { mcpServers, atMcp, env, source, publicUrl: givenPublicUrl, users, storeConfig, proxy, registration, stdio, ...plain } = options;
  const base = serveDefaults();
  const port = plain.port ?? 0;
  const publicUrl = givenPublicUrl === null ? `http://localhost:${port}` : (givenPublicUrl ?? `http://127.0.0.1:${port}`);
  const upstreams = parseUpstreamsFile(JSON.stringify({ mcpServers }), source ?? "test-gateway.json", env ?? {}, publicUrl);
  return deepFreeze({
    ...base,
    ...plain,
    port,
    publicUrl,
    loopbackNames: givenPublicUrl === null,
    upstreams: atMcp ? [flagUpstream(upstreams)] : upstreams,
    login: { users: (users ?? [LOGIN]).map((u) => ({ username: u.username, passwordHash: hashPasswordSync(u.password) })), passwordSource: "environment" },
    store: storeConfig ?? { kind: "memory" },
    proxy: { ...base.proxy, ...proxy },
    registration: { ...base.registration, ...registration },
    stdio: { ...base.stdio, dir: join(tmpdir(), `mcp-gateway-test-stdio-${randomUUID()}`), environment: inheritedEnvironment(process.env), ...stdio },
  });
}

/** The single upstream of the `--upstream-*` flags: at `/mcp`, unnamed, titled by its host. */
function flagUpstream(upstreams: UpstreamConfig[]): UpstreamConfig {
  if (upstreams.length !== 1 || upstreams[0]!.auth !== "oauth") throw new Error("testConfig: atMcp takes exactly one server with `oauth`");
  const upstream = upstreams[0]!;
  return { ...upstream, name: "", path: "/mcp", title: new URL(upstream.resource).host };
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
