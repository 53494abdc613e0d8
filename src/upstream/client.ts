import * as oauth from "oauth4webapi";
import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { shownUrl } from "../config/values.js";
import type { UpstreamConfig } from "../config/types.js";
import type { Keys } from "../crypto.js";
import type { UpstreamTokens } from "../grants/format.js";
import type { Logger } from "../log.js";
import { scopeTokens } from "../scope.js";
import type { Store } from "../store/store.js";
import { DiscoveryCache } from "./discovery-cache.js";
import { discoverUpstream, type UpstreamMetadata } from "./discovery.js";
import { classify, UpstreamError } from "./errors.js";
import type { Fetch } from "./http.js";
import { githubIdentity, githubMembership, oidcIdentity, type Membership, type UpstreamIdentity } from "./identity.js";
import { githubApi, standardUpstream } from "./quirks.js";
import { Registrations } from "./registration.js";
import { revokeAt } from "./revocation.js";
import { AuthorizationServers, DISCOVERY_AGE_MS, type Resolved } from "./servers.js";

/** Where a sign-in at the upstream starts, and the authorization server it goes to (RFC 9207: its answer must come from that one). */
export interface UpstreamAuthorization {
  url: string;
  issuer: string;
}

export interface UpstreamDeps {
  store: Store;
  /** Seals the dynamic registration's client secret at rest. */
  keys: Keys;
  clock: Clock;
  fetch: Fetch;
  log: Logger;
  /** The gateway's callback for this upstream, registered there (src/paths.ts, callbackPath). */
  callbackUrl: string;
  /** The gateway's own Client ID Metadata Document, used as client_id where the upstream AS supports them (https public URLs only). */
  clientMetadataUrl?: string;
}

/** What the upstream's token endpoint said about the user, besides the tokens. */
export interface CodeExchange {
  tokens: UpstreamTokens;
  /** Validated ID token claims, when the upstream is an OpenID Provider and issued one. */
  idTokenClaims?: Record<string, unknown>;
}

/**
 * The gateway as an ordinary OAuth client of one upstream (oauth4webapi only). A value, not a
 * global: each mounted upstream has its own (src/upstream/mounts.ts). Discovery is cached
 * (src/upstream/discovery-cache.ts); registration happens when a sign-in first needs it
 * (src/upstream/registration.ts); a grant's tokens go back only to the authorization server that
 * issued them (src/upstream/servers.ts).
 */
export class Upstream {
  readonly #deps: UpstreamDeps;
  readonly #fetch: Fetch;
  readonly #options: { [oauth.customFetch]: Fetch; [oauth.allowInsecureRequests]: boolean };
  readonly #discoveries: DiscoveryCache;
  readonly #servers: AuthorizationServers;

  constructor(
    readonly config: UpstreamConfig,
    deps: UpstreamDeps,
  ) {
    this.#deps = deps;
    this.#fetch = standardUpstream(deps.fetch, (url) => url === config.tokenEndpoint || this.#discoveries.isTokenEndpoint(url));
    // A stdio server has no URL ("") and is never discovered
    const http = config.resource !== "" && new URL(config.resource).protocol === "http:";
    this.#options = { [oauth.customFetch]: this.#fetch, [oauth.allowInsecureRequests]: http };
    const headers = { ...config.headers, ...config.credentials };
    const discover = () => discoverUpstream(config, { fetch: this.#fetch, allowHttp: this.#options[oauth.allowInsecureRequests], headers });
    this.#discoveries = new DiscoveryCache(discover, deps.clock, deps.log, config.resource ? shownUrl(config.resource) : config.name);
    const registrations = new Registrations({ ...deps, options: this.#options });
    this.#servers = new AuthorizationServers(config, { store: deps.store, callbackUrl: deps.callbackUrl, discoveries: this.#discoveries, registrations });
  }

  /** The upstream MCP endpoint the proxy forwards to. */
  get mcpUrl(): string {
    return this.config.resource;
  }

  /** The upstream's metadata as discovered lately (the start-up log line). */
  discover(): Promise<UpstreamMetadata> {
    return this.#discoveries.current(DISCOVERY_AGE_MS);
  }

  /** Scopes to advertise to clients: `--upstream-scope`, else the upstream's own `scopes_supported` once known. Never waits. */
  advertisedScopes(): string[] | undefined {
    if (this.config.scope) return scopeTokens(this.config.scope);
    this.#discoveries.warm();
    return this.#discoveries.known?.scopesSupported;
  }

  /**
   * Start a sign-in at the upstream, from a fresh discovery and a registration there (made now if
   * none is stored for its issuer). Scope, when the client asked for none (MCP §Scope Selection
   * Strategy): the configured one, else what the upstream's 401 challenge named, else its
   * `scopes_supported`, else none.
   */
  async authorizationUrl(p: { scope: string | undefined; state: string; codeVerifier: string }): Promise<UpstreamAuthorization> {
    const resolved = await this.#servers.resolve(await this.#discoveries.current(0), { register: true });
    const url = new URL(resolved.as.authorization_endpoint!);
    const params: Record<string, string> = {
      client_id: resolved.client.client_id,
      redirect_uri: this.#deps.callbackUrl,
      response_type: "code",
      state: p.state,
      code_challenge: await oauth.calculatePKCECodeChallenge(p.codeVerifier),
      code_challenge_method: "S256",
      resource: resolved.resource, // MCP Authorization §Resource Parameter: sent whether or not the upstream supports it
    };
    const asked = p.scope || this.config.scope || resolved.challengeScope || resolved.scopesSupported?.join(" ");
    const scope = this.#scope(asked, resolved);
    if (scope) params.scope = scope;
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return { url: url.href, issuer: resolved.as.issuer };
  }

  /**
   * What the allowlists, identity headers and refresh need besides what was asked: GitHub's `read:org` to see
   * org memberships; at an OpenID Provider, `openid` (and `email` when an allowed user is an address);
   * `offline_access` where the server lists it (SEP-2207: a refresh token keeps the user signed in).
   */
  #scope(asked: string | undefined, resolved: Resolved): string | undefined {
    const scopes = new Set(scopeTokens(asked));
    if (resolved.as.scopes_supported?.includes("offline_access")) scopes.add("offline_access");
    const { allowUsers, allowOrgs, identityHeaders } = this.config;
    if (githubApi(resolved.as, this.config.apiUrl)) {
      if (allowOrgs.length) scopes.add("read:org");
    } else if ((allowUsers.length || identityHeaders) && (resolved.as.scopes_supported?.includes("openid") || resolved.as.userinfo_endpoint)) {
      scopes.add("openid");
      if (identityHeaders || allowUsers.some((u) => u.includes("@"))) scopes.add("email");
    }
    return scopes.size ? [...scopes].join(" ") : undefined;
  }

  /**
   * Validate the callback (state, error, RFC 9207 `iss`) and redeem the code at the authorization
   * server the sign-in went to (`issuer`; absent for sign-ins started before it was recorded).
   */
  async exchangeCode(callback: URL, expectedState: string, codeVerifier: string, issuer: string | undefined): Promise<CodeExchange> {
    const resolved = await this.#servers.forIssuer(issuer);
    const { as, client, resource } = resolved;
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as, client, callback, expectedState);
    } catch (error) {
      // the answer itself is wrong (RFC 9207 `iss`, state, an error): asking again gives the same
      if (error instanceof oauth.AuthorizationResponseError) throw classify(error, "upstream authorization response");
      throw new UpstreamError(true, undefined, `upstream authorization response: ${(error as Error).message}`, { cause: error });
    }
    try {
      const result = await this.#servers.tokenRequest(
        resolved,
        (auth) =>
          oauth.authorizationCodeGrantRequest(as, client, auth, params, this.#deps.callbackUrl, codeVerifier, {
            ...this.#options,
            additionalParameters: { resource },
          }),
        (response) => oauth.processAuthorizationCodeResponse(as, client, response),
      );
      const idTokenClaims = oauth.getValidatedIdTokenClaims(result);
      return { tokens: this.#tokens(result, as.issuer), ...(idTokenClaims ? { idTokenClaims: { ...idTokenClaims } } : {}) };
    } catch (error) {
      throw classify(error, "upstream code exchange");
    }
  }

  /**
   * Who the user is upstream: GitHub's `/user`; an OpenID Provider's ID token, else its userinfo
   * endpoint when the token may read it (OIDC Core §5.3). Undefined when the upstream has no way to tell.
   */
  async identity(exchange: CodeExchange): Promise<UpstreamIdentity | undefined> {
    const resolved = await this.#servers.forIssuer(exchange.tokens.issuer);
    const api = githubApi(resolved.as, this.config.apiUrl);
    if (api) return githubIdentity(api, exchange.tokens.access_token, this.#deps.fetch);
    if (exchange.idTokenClaims) return oidcIdentity(exchange.idTokenClaims);
    if (!resolved.as.userinfo_endpoint || !scopeTokens(exchange.tokens.scope).includes("openid")) return undefined;
    const { as, client } = resolved;
    const response = await oauth.userInfoRequest(as, client, exchange.tokens.access_token, this.#options);
    return oidcIdentity({ ...(await oauth.processUserInfoResponse(as, client, oauth.skipSubjectCheck, response)) });
  }

  /** GitHub's web origin (github.com, or an Enterprise Server host) when the upstream signs users in with GitHub. */
  async githubWeb(): Promise<string | undefined> {
    const { as } = await this.#discoveries.soon(DISCOVERY_AGE_MS);
    return githubApi(as, this.config.apiUrl) && new URL(as.authorization_endpoint!).origin;
  }

  /** GitHub org membership of the token's user; throws for an upstream that is not GitHub. */
  async membership(tokens: UpstreamTokens, org: string): Promise<Membership> {
    const api = githubApi((await this.#servers.forIssuer(tokens.issuer)).as, this.config.apiUrl);
    if (!api) throw new Error("allowOrgs needs a GitHub upstream");
    return githubMembership(api, tokens.access_token, org, this.#deps.fetch);
  }

  /**
   * Refresh upstream tokens, at the authorization server that issued them. Callers hold the grant's
   * refresh lock (src/as/refresh.ts): GitHub App refresh tokens are single-use, so two refreshes of
   * one grant must never race, on any instance.
   */
  async refresh(current: UpstreamTokens): Promise<UpstreamTokens> {
    const token = current.refresh_token;
    if (!token) throw new UpstreamError(true, "invalid_grant", "the upstream issued no refresh token");
    const resolved = await this.#servers.forIssuer(current.issuer);
    const { as, client, resource } = resolved;
    try {
      const result = await this.#servers.tokenRequest(
        resolved,
        (auth) => oauth.refreshTokenGrantRequest(as, client, auth, token, { ...this.#options, additionalParameters: { resource } }),
        (response) => oauth.processRefreshTokenResponse(as, client, response),
      );
      const next = this.#tokens(result, as.issuer);
      // RFC 6749 §6: the upstream may keep the refresh token it had
      return next.refresh_token
        ? next
        : { ...next, refresh_token: token, ...(current.refresh_expires_at ? { refresh_expires_at: current.refresh_expires_at } : {}) };
    } catch (error) {
      throw classify(error, "upstream refresh");
    }
  }

  /**
   * Give the upstream's tokens back (src/upstream/revocation.ts). False when the upstream offers no way
   * to revoke, or the authorization server that issued them is no longer the upstream's.
   */
  async revoke(tokens: UpstreamTokens): Promise<boolean> {
    const resolved = await this.#servers.forIssuer(tokens.issuer).catch((error: unknown) => {
      if (error instanceof UpstreamError && error.endsGrant) return undefined;
      throw error;
    });
    if (!resolved) return false;
    return revokeAt(resolved, tokens, { fetch: this.#fetch, options: this.#options, apiUrl: this.config.apiUrl });
  }

  #tokens(r: oauth.TokenEndpointResponse, issuer: string): UpstreamTokens {
    const now = nowSeconds(this.#deps.clock);
    const refreshExpiresIn = r.refresh_token_expires_in; // GitHub Apps: not in RFC 6749, but definite
    return {
      access_token: r.access_token,
      ...(typeof r.expires_in === "number" ? { expires_at: now + r.expires_in } : {}),
      ...(r.refresh_token ? { refresh_token: r.refresh_token } : {}),
      ...(typeof refreshExpiresIn === "number" ? { refresh_expires_at: now + refreshExpiresIn } : {}),
      ...(typeof r.scope === "string" ? { scope: r.scope } : {}),
      issuer,
    };
  }
}
