import { basename } from "node:path";
import { signsUsersIn, type UpstreamConfig } from "../config/types.js";
import { shownUrl } from "../config/values.js";
import type { PublicOrigins } from "../origins.js";
import { authorizePath, callbackPath, clientMetadataPath, deviceAuthorizationPath, PATHS, protectedResourceMetadataPath } from "../paths.js";
import { scopeTokens } from "../scope.js";
import { Upstream, type UpstreamDeps } from "./client.js";
import { RETRY_MS } from "./discovery-cache.js";
import { detectUpstreamAuth } from "./discovery.js";

/** How the gateway authenticates to one upstream, once known (`detect` resolves to `oauth` or `none`). */
export type UpstreamMode = "oauth" | "static" | "none";

/** What every mount shares; each derives its own callback and metadata document from the public URL. */
export interface MountDeps extends Omit<UpstreamDeps, "callbackUrl" | "clientMetadataUrl"> {
  /** Whether upstream authorization servers can fetch the gateway's Client ID Metadata Documents (https, reachable). */
  offersClientMetadata: boolean;
}

/**
 * One upstream as the gateway serves it: a protected resource of its own (RFC 8707, RFC 9728) at
 * `<public-url><path>`, the OAuth client toward the upstream, and how the upstream wants to be called.
 * Each upstream of a config file also has an authorization-server issuer of its own, `<public-url><path>`,
 * whose authorization endpoint `/authorize/<name>` says which upstream even when a client sends no
 * `resource`; the flags' single upstream keeps the gateway's own issuer and `/authorize`.
 */
export class Mount {
  /** The gateway's resource identifier for this upstream: every token for it carries it as `aud`. */
  readonly resource: string;
  /** RFC 9728 §3.1: the path-inserted metadata URL. */
  readonly metadataUrl: string;
  /** RFC 8414 §2: the issuer that this upstream's metadata names (RFC 9207 `iss` for its authorizations). */
  readonly issuer: string;
  /** Where this issuer's authorization requests go. */
  readonly authorizationEndpoint: string;
  /** Where this issuer's device authorization requests go (RFC 8628 §3.1). */
  readonly deviceAuthorizationEndpoint: string;
  /** Where this upstream's authorization server sends the user back: its own (src/paths.ts, callbackPath). */
  readonly callbackUrl: string;
  /** The gateway's Client ID Metadata Document for this upstream (used as client_id only where offered). */
  readonly clientMetadataUrl: string;
  readonly client: Upstream;
  /** Whether the upstream takes each user's own token (chained OAuth), rather than fixed credentials or none. */
  readonly signsUsersIn: boolean;
  /** `headers` and, for `static` upstreams, the credentials: added to every request upstream. */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  readonly #fetch: MountDeps["fetch"];
  readonly #clock: MountDeps["clock"];
  #mode?: Promise<UpstreamMode>;
  #knownMode?: UpstreamMode;
  #detectAfter = 0;

  constructor(
    readonly config: UpstreamConfig,
    publicUrl: string,
    { offersClientMetadata, ...deps }: MountDeps,
  ) {
    this.resource = `${publicUrl}${config.path}`;
    this.metadataUrl = this.metadataUrlAt(publicUrl);
    this.issuer = config.name ? this.resource : publicUrl;
    this.authorizationEndpoint = `${publicUrl}${authorizePath(config.name)}`;
    this.deviceAuthorizationEndpoint = `${publicUrl}${deviceAuthorizationPath(config.name)}`;
    this.signsUsersIn = signsUsersIn(config.auth);
    this.upstreamHeaders = { ...config.headers, ...(config.auth === "static" ? config.credentials : {}) };
    this.#fetch = deps.fetch;
    this.#clock = deps.clock;
    this.callbackUrl = `${publicUrl}${callbackPath(config.name)}`;
    this.clientMetadataUrl = `${publicUrl}${clientMetadataPath(config.name)}`;
    this.client = new Upstream(config, {
      ...deps,
      callbackUrl: this.callbackUrl,
      ...(offersClientMetadata ? { clientMetadataUrl: this.clientMetadataUrl } : {}),
    });
  }

  /**
   * The resource as a client named it: under one of the gateway's names (src/origins.ts), with the trailing
   * slash it typed, since RFC 9728 §3.3 wants the metadata's `resource` identical to the URL it started from.
   */
  resourceAt(origin: string, slash = false): string {
    return `${origin}${this.config.path}${slash ? "/" : ""}`;
  }

  metadataUrlAt(origin: string, slash = false): string {
    return `${origin}${protectedResourceMetadataPath(this.config.path)}${slash ? "/" : ""}`;
  }

  /** How logs name this upstream. */
  get label(): string {
    return this.config.name ? `upstream ${this.config.name}` : "upstream";
  }

  /** How the gateway reaches this upstream, for the log once known: rejects while the upstream cannot be asked. */
  async describe(): Promise<string> {
    if (this.config.stdio) return `stdio server ${describeStdio(this.config)}, started on first use`;
    const mode = await this.mode();
    if (mode === "static") return "static credentials";
    if (mode === "none") return "no credentials";
    const upstream = await this.client.discover();
    return `authorization server ${upstream.as.issuer}, found through ${upstream.found}`;
  }

  /**
   * Known from the config, or asked of the upstream once (and again after a failure to reach it), with
   * the headers every request to it carries: an upstream that answers them needs no OAuth.
   */
  mode(): Promise<UpstreamMode> {
    if (this.config.auth !== "detect") return Promise.resolve(this.config.auth);
    const allowHttp = new URL(this.config.resource).protocol === "http:";
    this.#mode ??= detectUpstreamAuth(this.config.resource, { fetch: this.#fetch, allowHttp, headers: this.config.headers }).then(
      (mode) => (this.#knownMode = mode),
      (error: unknown) => {
        this.#mode = undefined;
        throw error;
      },
    );
    return this.#mode;
  }

  /**
   * Scopes to advertise to clients: the configured ones, else (OAuth upstreams) the upstream's own as
   * last discovered. Never waits for the upstream: the gateway's own metadata answers at once.
   */
  advertisedScopes(): string[] | undefined {
    if (this.config.scope) return scopeTokens(this.config.scope);
    const mode = this.config.auth === "detect" ? this.#knownMode : this.config.auth;
    const now = this.#clock.now();
    if (!mode && !this.#mode && now >= this.#detectAfter) {
      this.#detectAfter = now + RETRY_MS;
      this.mode().catch(() => {});
    }
    return mode === "oauth" ? this.client.advertisedScopes() : undefined;
  }
}

/** Every mounted upstream: the flags' one at `/mcp`, or the config file's at `/mcp/<name>`. */
export class Mounts {
  readonly all: readonly Mount[];
  readonly #byResource: Map<string, Mount>;
  readonly #byPath: Map<string, Mount>;
  readonly #byName: Map<string, Mount>;

  constructor(
    upstreams: readonly UpstreamConfig[],
    readonly origins: PublicOrigins,
    deps: MountDeps,
  ) {
    this.all = upstreams.map((u) => new Mount(u, origins.canonical, deps));
    this.#byResource = new Map(this.all.map((m) => [m.resource, m]));
    this.#byPath = new Map(this.all.map((m) => [m.config.path, m]));
    this.#byName = new Map(this.all.map((m) => [m.config.name, m]));
  }

  /** By the name in the config file; "" is the flags' single upstream. */
  byName(name: string): Mount | undefined {
    return this.#byName.get(name);
  }

  /** The flags' single upstream: it also answers the root metadata and needs no `resource` parameter. */
  get single(): Mount | undefined {
    return this.all.length === 1 && this.all[0]!.config.name === "" ? this.all[0] : undefined;
  }

  get resources(): string[] {
    return [...this.#byResource.keys()];
  }

  /** By the gateway resource as stored (a grant's, a pending request's): canonical. */
  byResource(resource: string): Mount | undefined {
    return this.#byResource.get(resource);
  }

  /** By a `resource` parameter as a client sends it: any letter case of scheme and host, a trailing slash, any of the gateway's names. */
  resolve(resource: string): Mount | undefined {
    const canonical = canonicalResource(resource);
    return canonical === undefined ? undefined : this.#byResource.get(this.origins.canonicalize(canonical));
  }

  /** The start-up banner's lines for the upstreams: where clients connect, and the callbacks to register upstream. */
  describe(): string[] {
    const publicUrl = this.origins.canonical;
    const single = this.single;
    if (single)
      return [
        `  MCP URL for clients:    ${publicUrl}${PATHS.mcp}`,
        `  Upstream MCP server:    ${shownUrl(single.config.resource)}`,
        `  Upstream callback URL:  ${single.callbackUrl}   (register it at the upstream, e.g. as a GitHub OAuth App's "Authorization callback URL")`,
      ];
    const signingIn = this.all.filter((m) => m.signsUsersIn);
    return [
      `  MCP URLs for clients:`,
      ...this.all.map(
        (m) => `    ${m.resource}  →  ${m.config.stdio ? `stdio: ${describeStdio(m.config)}` : `${shownUrl(m.config.resource)}  (${m.config.auth})`}`,
      ),
      ...(signingIn.length
        ? [
            `  Upstream callback URLs, one per upstream (register each where you pre-register a client; a GitHub OAuth App with ${publicUrl}${callbackPath("")} takes them all):`,
            ...signingIn.map((m) => `    ${m.config.name}: ${m.callbackUrl}`),
          ]
        : []),
    ];
  }

  /** By request path: any case, one optional trailing slash, as Express matches. */
  byPath(url: string | undefined): Mount | undefined {
    const exact = url === undefined ? undefined : this.#byPath.get(url); // the usual spelling, with no string built
    if (exact) return exact;
    const path = (url ?? "").split("?", 1)[0]!.toLowerCase();
    return this.#byPath.get(path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path);
  }
}

/** A stdio server as the banner and log name it: the program's file name (never its arguments, which may hold secrets) and its process model. */
function describeStdio({ stdio }: UpstreamConfig): string {
  return `${basename(stdio?.command ?? "")} (${stdio?.shared ? "shared" : "per grant"})`;
}

/** Whether a request path (query aside) ends in a slash, as a typed `/mcp/` does: never redirected, clients break on it. */
export const typedSlash = (url: string | undefined): boolean => {
  const path = (url ?? "").split("?", 1)[0]!;
  return path.length > 1 && path.endsWith("/");
};

/** MCP §Canonical Server URI: scheme and host are case-insensitive; a trailing slash is tolerated. */
export function canonicalResource(value: string): string | undefined {
  try {
    const u = new URL(value);
    if (u.hash || value.includes("#") || u.search) return undefined;
    return `${u.origin}${u.pathname.replace(/\/$/, "")}`;
  } catch {
    return undefined;
  }
}
