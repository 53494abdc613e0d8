/**
 * The names the gateway answers to (docs/architecture.md, "Loopback names"). With `--public-url`, that
 * origin only. Without it, every loopback name a user may type for the port: `http://localhost:<port>`
 * is canonical (the issuer, tokens' `iss` and `aud`, upstream callbacks, the sign-in pages), and
 * `http://127.0.0.1:<port>` and `http://[::1]:<port>` are aliases. The protected resource answers under
 * the name the client used, since RFC 9728 §3.3 wants the metadata's `resource` to be the URL the client
 * started from, and a `resource` parameter under any of the names picks the same upstream.
 */
export class PublicOrigins {
  /** The public URL: the one origin everything the gateway issues is named by. */
  readonly canonical: string;
  /** Every origin that is this gateway: the canonical one first, then its aliases. */
  readonly all: readonly string[];
  readonly #byHost: Map<string, string>;

  /** `aliases`: the other loopback host names the gateway answers (none with --public-url). */
  constructor(publicUrl: string, aliases: readonly string[]) {
    const canonical = new URL(publicUrl);
    this.canonical = canonical.origin;
    const names = aliases.filter((name) => name !== canonical.hostname);
    this.all = [this.canonical, ...names.map((name) => `${canonical.protocol}//${name}${canonical.port ? `:${canonical.port}` : ""}`)];
    this.#byHost = new Map(this.all.map((origin) => [new URL(origin).host, origin]));
  }

  /** The origin a request reached, by its Host header: the alias it names, else the canonical origin. */
  forHost(host: string | undefined): string {
    return (host && this.#byHost.get(host.toLowerCase())) || this.canonical;
  }

  /** A URL under any of the gateway's names, written under the canonical one (other URLs as they are). */
  canonicalize(url: string): string {
    const origin = this.all.find((o) => url === o || url.startsWith(`${o}/`));
    return origin === undefined ? url : this.canonical + url.slice(origin.length);
  }
}
