import type { Clock } from "../clock.js";
import type { Logger } from "../log.js";
import type { UpstreamMetadata } from "./discovery.js";

/** The least time between two discoveries (or detections) after a failure, or started in the background. */
export const RETRY_MS = 30_000;
/** Authorization servers remembered per upstream: the current one and those it moved from, whose grants still refresh there. */
const ISSUERS_KEPT = 4;

/**
 * One upstream's discoveries: the last good one, the last good one per issuer (grants refresh at
 * the authorization server that issued them, SEP-2352), and the one in flight, which every caller
 * meanwhile shares. A failure is never kept: the next caller asks again, but not sooner than
 * RETRY_MS while a good result exists to serve instead.
 */
export class DiscoveryCache {
  #last?: { metadata: UpstreamMetadata; at: number };
  readonly #byIssuer = new Map<string, UpstreamMetadata>();
  #inflight?: Promise<UpstreamMetadata>;
  #failedAt = -Infinity;

  constructor(
    private readonly discover: () => Promise<UpstreamMetadata>,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** For log lines: the upstream's URL as shown. */
    private readonly name: string,
  ) {}

  /** The last good metadata, if any, without asking. */
  get known(): UpstreamMetadata | undefined {
    return this.#last?.metadata;
  }

  /** Whether `url` is the token endpoint of an authorization server discovered for this upstream. */
  isTokenEndpoint(url: string): boolean {
    for (const metadata of this.#byIssuer.values()) if (metadata.as.token_endpoint === url) return true;
    return false;
  }

  /**
   * The metadata younger than `maxAgeMs`, else a new discovery. When that fails, or a failure was
   * recent, the last good metadata serves (with a warning), so a flaky metadata endpoint stops nothing
   * that worked; without one, the failure is the caller's.
   */
  async current(maxAgeMs: number): Promise<UpstreamMetadata> {
    const now = this.clock.now();
    const last = this.#last;
    if (last && (now - last.at < maxAgeMs || now - this.#failedAt < RETRY_MS)) return last.metadata;
    try {
      return await this.#fresh();
    } catch (error) {
      if (!this.#last) throw error;
      this.log.warn(`discovery of ${this.name} failed, going on with the metadata found before: ${(error as Error).message}`);
      return this.#last.metadata;
    }
  }

  /** As `current`, but never waits while good metadata exists: an old one serves now and a new discovery runs in the background. */
  async soon(maxAgeMs: number): Promise<UpstreamMetadata> {
    const last = this.#last;
    if (!last) return this.current(maxAgeMs);
    if (this.clock.now() - last.at >= maxAgeMs) this.current(maxAgeMs).catch(() => {});
    return last.metadata;
  }

  /** The metadata of the authorization server `issuer`: the current one when it is that, else the last known for it. */
  async forIssuer(issuer: string, maxAgeMs: number): Promise<UpstreamMetadata | undefined> {
    const current = await this.soon(maxAgeMs);
    return current.as.issuer === issuer ? current : this.#byIssuer.get(issuer);
  }

  /** Start a discovery in the background unless one ran or failed lately. */
  warm(): void {
    if (!this.#last && !this.#inflight && this.clock.now() - this.#failedAt >= RETRY_MS) this.#fresh().catch(() => {});
  }

  #fresh(): Promise<UpstreamMetadata> {
    this.#inflight ??= this.discover()
      .then((metadata) => this.#keep(metadata))
      .catch((error: unknown) => {
        this.#failedAt = this.clock.now();
        throw error;
      })
      .finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  #keep(metadata: UpstreamMetadata): UpstreamMetadata {
    const before = this.#last?.metadata.as.issuer;
    const issuer = metadata.as.issuer;
    if (before !== undefined && before !== issuer)
      this.log.warn(`upstream ${this.name} moved from authorization server ${before} to ${issuer} (found through ${metadata.found})`);
    this.#last = { metadata, at: this.clock.now() };
    this.#failedAt = -Infinity;
    this.#byIssuer.delete(issuer);
    this.#byIssuer.set(issuer, metadata);
    if (this.#byIssuer.size > ISSUERS_KEPT) this.#byIssuer.delete(this.#byIssuer.keys().next().value!);
    return metadata;
  }
}
