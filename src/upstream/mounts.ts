import type { UpstreamConfig } from "../config.js";
import { Upstream, type UpstreamDeps } from "./client.js";
import { detectUpstreamAuth } from "./discovery.js";

/** How the gateway authenticates to one upstream, once known (`detect` resolves to `oauth` or `none`). */
export type UpstreamMode = "oauth" | "static" | "none";

/**
 * One upstream as the gateway serves it: a protected resource of its own (RFC 8707, RFC 9728) at
 * `<public-url><path>`, the OAuth client toward the upstream, and how the upstream wants to be called.
 */
export class Mount {
  /** The gateway's resource identifier for this upstream: every token for it carries it as `aud`. */
  readonly resource: string;
  /** RFC 9728 §3.1: the path-inserted metadata URL. */
  readonly metadataUrl: string;
  readonly client: Upstream;
  #mode?: Promise<UpstreamMode>;

  constructor(
    readonly config: UpstreamConfig,
    publicUrl: string,
    private readonly deps: UpstreamDeps,
  ) {
    this.resource = `${publicUrl}${config.path}`;
    this.metadataUrl = `${publicUrl}/.well-known/oauth-protected-resource${config.path}`;
    this.client = new Upstream(config, deps);
  }

  /** Known from the config, or asked of the upstream once (and again after a failure to reach it). */
  mode(): Promise<UpstreamMode> {
    if (this.config.auth !== "detect") return Promise.resolve(this.config.auth);
    const allowHttp = new URL(this.config.resource).protocol === "http:";
    this.#mode ??= detectUpstreamAuth(this.config.resource, { fetch: this.deps.fetch, allowHttp }).catch((error: unknown) => {
      this.#mode = undefined;
      throw error;
    });
    return this.#mode;
  }

  /** Scopes to advertise to clients: the configured ones, else (OAuth upstreams) the upstream's own. */
  async advertisedScopes(): Promise<string[] | undefined> {
    if (this.config.scope) return this.config.scope.split(" ");
    const mode = await this.mode().catch(() => undefined);
    return mode === "oauth" ? this.client.advertisedScopes() : undefined;
  }
}

/** Every mounted upstream: the flags' one at `/mcp`, or the config file's at `/mcp/<name>`. */
export class Mounts {
  readonly all: readonly Mount[];
  readonly #byResource: Map<string, Mount>;
  readonly #byPath: Map<string, Mount>;

  constructor(upstreams: readonly UpstreamConfig[], publicUrl: string, deps: UpstreamDeps) {
    this.all = upstreams.map((u) => new Mount(u, publicUrl, deps));
    this.#byResource = new Map(this.all.map((m) => [m.resource, m]));
    this.#byPath = new Map(this.all.map((m) => [m.config.path, m]));
  }

  /** The flags' single upstream: it also answers the root metadata and needs no `resource` parameter. */
  get single(): Mount | undefined {
    return this.all.length === 1 && this.all[0]!.config.name === "" ? this.all[0] : undefined;
  }

  get resources(): string[] {
    return [...this.#byResource.keys()];
  }

  /** By the gateway resource a client names, already canonical (see canonicalResource). */
  byResource(resource: string): Mount | undefined {
    return this.#byResource.get(resource);
  }

  /** By request path: any case, one optional trailing slash, as Express matches. */
  byPath(url: string | undefined): Mount | undefined {
    const path = (url ?? "").split("?", 1)[0]!.toLowerCase();
    return this.#byPath.get(path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path);
  }
}
