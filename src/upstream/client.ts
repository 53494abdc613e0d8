import * as oauth from "oauth4webapi";
import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { shownUrl, type UpstreamConfig } from "../config.js";
import type { Logger } from "../log.js";
import { seal, unseal, type Keys } from "../crypto.js";
import { keys, type Store } from "../store/store.js";
import type { UpstreamTokens } from "../tokens.js";
import { chooseAuthMethod, clientAuth, importSigningKey, registrationAuthMethod, type ClientCredentials, type SigningKey } from "./client-auth.js";
import { discoverUpstream, type UpstreamMetadata } from "./discovery.js";
import { classify, UpstreamError } from "./errors.js";
import type { Fetch } from "./http.js";
import { githubIdentity, githubMembership, oidcIdentity, type Membership, type UpstreamIdentity } from "./identity.js";
import { githubApi, githubRevocationRequest, githubTokenRevocation, standardUpstream } from "./quirks.js";
import { clientMetadata, parseRegistration, type Registration } from "./registration.js";

interface Resolved extends UpstreamMetadata {
  client: oauth.Client;
  clientAuth: oauth.ClientAuth;
  /** Kept for the one non-OAuth call that needs it: GitHub's token revocation (Basic auth). */
  clientSecret?: string;
}

/** Where a sign-in at the upstream starts, and the authorization server it goes to (RFC 9207: its answer must come from that one). */
export interface UpstreamAuthorization {
  url: string;
  issuer: string;
}

/**
 * How long a discovery serves the calls that follow a sign-in (code exchange, refresh, revocation,
 * the scopes the gateway advertises). Every sign-in starts from a discovery of its own (sign-ins at
 * the same moment share one), so an upstream that moves to another authorization server is followed
 * by the next sign-in (SEP-2352); a failed discovery is never kept.
 */
const DISCOVERY_AGE_MS = 60 * 60_000;
/** The least time between two discoveries (or detections) started in the background. */
export const RETRY_MS = 30_000;

export interface UpstreamDeps {
  store: Store;
  /** Seals the dynamic registration's client secret at rest. */
  keys: Keys;
  clock: Clock;
  fetch: Fetch;
  log: Logger;
  /** The gateway's callback for this upstream, registered there (src/upstream/mounts.ts, callbackPath). */
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
 * global: each mounted upstream has its own (src/upstream/mounts.ts). Discovery and registration happen once, on first use, and
 * are retried on the next use if they failed.
 */
export class Upstream {
  readonly #deps: UpstreamDeps;
  readonly #fetch: Fetch;
  readonly #options: { [oauth.customFetch]: Fetch; [oauth.allowInsecureRequests]: boolean };
  #discovery?: { metadata: Promise<UpstreamMetadata>; at: number };
  #known?: UpstreamMetadata;
  #signingKey?: Promise<SigningKey>;
  #backgroundAfter = 0;
  #tokenEndpoint?: string;

  constructor(
    readonly config: UpstreamConfig,
    deps: UpstreamDeps,
  ) {
    this.#deps = deps;
    this.#tokenEndpoint = config.tokenEndpoint;
    this.#fetch = standardUpstream(deps.fetch, () => this.#tokenEndpoint);
    this.#options = { [oauth.customFetch]: this.#fetch, [oauth.allowInsecureRequests]: new URL(config.resource).protocol === "http:" };
  }

  /** The upstream MCP endpoint the proxy forwards to. */
  get mcpUrl(): string {
    return this.config.resource;
  }

  /**
   * The upstream's metadata: the last discovery while younger than `maxAgeMs`, else a new one. Calls
   * that arrive together share one; a failure is not kept, so the next call asks again.
   */
  discover(maxAgeMs = DISCOVERY_AGE_MS): Promise<UpstreamMetadata> {
    const now = this.#deps.clock.now();
    if (this.#discovery && now - this.#discovery.at < maxAgeMs) return this.#discovery.metadata;
    const discovery = {
      at: now,
      metadata: discoverUpstream(this.config, { fetch: this.#fetch, allowHttp: this.#options[oauth.allowInsecureRequests], headers: this.#headers }).then(
        (metadata) => {
          const before = this.#known?.as.issuer;
          if (before !== undefined && before !== metadata.as.issuer)
            this.#deps.log.warn(`upstream ${shownUrl(this.config.resource)} moved from authorization server ${before} to ${metadata.as.issuer} (found through ${metadata.found})`);
          this.#tokenEndpoint = metadata.as.token_endpoint;
          this.#known = metadata;
          return metadata;
        },
        (error: unknown) => {
          if (this.#discovery === discovery) this.#discovery = undefined;
          throw error;
        },
      ),
    };
    this.#discovery = discovery;
    return discovery.metadata;
  }

  /** A new discovery; when it fails, the last one that worked, so a flaky metadata endpoint does not stop sign-ins. */
  async #discoverForSignIn(): Promise<UpstreamMetadata> {
    const known = this.#known;
    try {
      return await this.discover(0);
    } catch (error) {
      if (!known) throw error;
      this.#deps.log.warn(`discovery of ${shownUrl(this.config.resource)} failed, signing in with the metadata found before: ${(error as Error).message}`);
      return known;
    }
  }

  /** What every request to the upstream MCP endpoint carries besides a user's token. */
  get #headers(): Record<string, string> {
    return { ...this.config.headers, ...this.config.credentials };
  }

  /**
   * Scopes to advertise to clients: `--upstream-scope`, else the upstream's own `scopes_supported` as
   * last discovered. Never waited for: unknown yet, a discovery starts in the background (at most one
   * per RETRY_MS, so requests for the gateway's metadata never turn into a stream of upstream requests).
   */
  advertisedScopes(): string[] | undefined {
    if (this.config.scope) return this.config.scope.split(" ");
    const now = this.#deps.clock.now();
    if (!this.#known && !this.#discovery && now >= this.#backgroundAfter) {
      this.#backgroundAfter = now + RETRY_MS;
      this.discover().catch(() => {});
    }
    return this.#known?.scopesSupported;
  }

  /**
   * Start a sign-in at the upstream, from a fresh discovery and a registration there (made now if
   * none is stored for its issuer). Scope, when the client asked for none (MCP §Scope Selection
   * Strategy): the configured one, else what the upstream's 401 challenge named, else its
   * `scopes_supported`, else none.
   */
  async authorizationUrl(p: { scope: string | undefined; state: string; codeVerifier: string }): Promise<UpstreamAuthorization> {
    const resolved = await this.#resolve(await this.#discoverForSignIn(), { register: true });
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
   * org memberships; at an OpenID Provider, `openid` (and `email` when an allowed user is an address).
   */
  #scope(asked: string | undefined, resolved: Resolved): string | undefined {
    const scopes = new Set(asked?.split(" ").filter(Boolean));
    // SEP-2207: a refresh token keeps the user signed in at the upstream; ask for one where the server lists the scope for it
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
   * Validate the callback (state, error, RFC 9207 `iss`) and redeem the code, at the authorization
   * server the sign-in started at (`issuer`): an upstream that moved meanwhile means a new sign-in.
   */
  async exchangeCode(callback: URL, expectedState: string, codeVerifier: string, issuer: string | undefined): Promise<CodeExchange> {
    const { as, client, clientAuth, resource } = await this.resolve();
    if (issuer !== undefined && as.issuer !== issuer)
      throw new UpstreamError(false, undefined, `the upstream moved from ${issuer} to ${as.issuer} during this sign-in: start again`);
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as, client, callback, expectedState);
    } catch (error) {
      // the answer itself is wrong (RFC 9207 `iss`, state, an error): asking again gives the same
      if (error instanceof oauth.AuthorizationResponseError) throw classify(error, "upstream authorization response");
      throw new UpstreamError(true, undefined, `upstream authorization response: ${(error as Error).message}`, { cause: error });
    }
    try {
      const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, this.#deps.callbackUrl, codeVerifier, {
        ...this.#options,
        additionalParameters: { resource },
      });
      const result = await oauth.processAuthorizationCodeResponse(as, client, response);
      const idTokenClaims = oauth.getValidatedIdTokenClaims(result);
      return { tokens: this.#tokens(result), ...(idTokenClaims ? { idTokenClaims: { ...idTokenClaims } } : {}) };
    } catch (error) {
      throw classify(error, "upstream code exchange");
    }
  }

  /**
   * Who the user is upstream: GitHub's `/user`; an OpenID Provider's ID token, else its userinfo
   * endpoint when the token may read it (OIDC Core §5.3). Undefined when the upstream has no way to tell.
   */
  async identity(exchange: CodeExchange): Promise<UpstreamIdentity | undefined> {
    const resolved = await this.resolve();
    const api = githubApi(resolved.as, this.config.apiUrl);
    if (api) return githubIdentity(api, exchange.tokens.access_token, this.#deps.fetch);
    if (exchange.idTokenClaims) return oidcIdentity(exchange.idTokenClaims);
    if (!resolved.as.userinfo_endpoint || !exchange.tokens.scope?.split(" ").includes("openid")) return undefined;
    const { as, client } = resolved;
    const response = await oauth.userInfoRequest(as, client, exchange.tokens.access_token, this.#options);
    return oidcIdentity({ ...(await oauth.processUserInfoResponse(as, client, oauth.skipSubjectCheck, response)) });
  }

  /** GitHub's web origin (github.com, or an Enterprise Server host) when the upstream signs users in with GitHub. */
  async githubWeb(): Promise<string | undefined> {
    const { as } = await this.resolve();
    return githubApi(as, this.config.apiUrl) && new URL(as.authorization_endpoint!).origin;
  }

  /** GitHub org membership of the token's user; throws for an upstream that is not GitHub. */
  async membership(tokens: UpstreamTokens, org: string): Promise<Membership> {
    const api = githubApi((await this.resolve()).as, this.config.apiUrl);
    if (!api) throw new Error("allowOrgs needs a GitHub upstream");
    return githubMembership(api, tokens.access_token, org, this.#deps.fetch);
  }

  /**
   * Refresh upstream tokens. Callers hold the grant's refresh lock (src/as/refresh.ts): GitHub App
   * refresh tokens are single-use, so two refreshes of one grant must never race, on any instance.
   */
  async refresh(current: UpstreamTokens): Promise<UpstreamTokens> {
    const token = current.refresh_token;
    if (!token) throw new UpstreamError(true, "invalid_grant", "the upstream issued no refresh token");
    const { as, client, clientAuth, resource } = await this.resolve();
    try {
      const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, token, { ...this.#options, additionalParameters: { resource } });
      const next = this.#tokens(await oauth.processRefreshTokenResponse(as, client, response));
      // RFC 6749 §6: the upstream may keep the refresh token it had
      return next.refresh_token
        ? next
        : { ...next, refresh_token: token, ...(current.refresh_expires_at ? { refresh_expires_at: current.refresh_expires_at } : {}) };
    } catch (error) {
      throw classify(error, "upstream refresh");
    }
  }

  /**
   * Give the upstream's tokens back: GitHub's `DELETE /applications/{client_id}/token`, else RFC 7009
   * at the upstream's `revocation_endpoint`. False when the upstream offers no way to revoke.
   */
  async revoke(tokens: UpstreamTokens): Promise<boolean> {
    const resolved = await this.resolve();
    const github = githubTokenRevocation(resolved.as, resolved.client.client_id, this.config.apiUrl);
    if (github) {
      if (resolved.clientSecret === undefined) throw new Error("GitHub token revocation needs the upstream client secret");
      const response = await this.#fetch(github, githubRevocationRequest(resolved.client.client_id, resolved.clientSecret, tokens.access_token));
      await response.body?.cancel();
      // 404: the token is already dead there
      if (response.status !== 204 && response.status !== 404) throw new Error(`GitHub token revocation answered HTTP ${response.status}`);
      return true;
    }
    if (!resolved.as.revocation_endpoint) return false;
    const { as, client, clientAuth } = resolved;
    const given = tokens.refresh_token ? [[tokens.refresh_token, "refresh_token"] as const] : [];
    for (const [token, hint] of [...given, [tokens.access_token, "access_token"] as const]) {
      const response = await oauth.revocationRequest(as, client, clientAuth, token, { ...this.#options, additionalParameters: { token_type_hint: hint } });
      await oauth.processRevocationResponse(response);
    }
    return true;
  }

  #tokens(r: oauth.TokenEndpointResponse): UpstreamTokens {
    const now = nowSeconds(this.#deps.clock);
    const refreshExpiresIn = r.refresh_token_expires_in; // GitHub Apps: not in RFC 6749, but definite
    return {
      access_token: r.access_token,
      ...(typeof r.expires_in === "number" ? { expires_at: now + r.expires_in } : {}),
      ...(r.refresh_token ? { refresh_token: r.refresh_token } : {}),
      ...(typeof refreshExpiresIn === "number" ? { refresh_expires_at: now + refreshExpiresIn } : {}),
      ...(typeof r.scope === "string" ? { scope: r.scope } : {}),
    };
  }

  /** The metadata and client for calls after a sign-in (code exchange, refresh, revocation): never registers. */
  async resolve(): Promise<Resolved> {
    return this.#resolve(await this.discover(), { register: false });
  }

  async #resolve(metadata: UpstreamMetadata, o: { register: boolean }): Promise<Resolved> {
    const key = this.config.privateKey === undefined ? undefined : await (this.#signingKey ??= importSigningKey(this.config.privateKey));
    const pinned = this.config.tokenEndpointAuthMethod;
    const registration = await this.#client(metadata.as, key, o.register);
    const credentials: ClientCredentials = { secret: registration.client_secret, key, method: pinned ?? registration.token_endpoint_auth_method };
    // GitHub documents its client secret as a form field and publishes no metadata to say otherwise
    const method = chooseAuthMethod(metadata.as, credentials, githubApi(metadata.as, this.config.apiUrl) ? "client_secret_post" : undefined);
    return {
      ...metadata,
      client: { client_id: registration.client_id },
      clientAuth: clientAuth(method, credentials),
      ...(registration.client_secret === undefined ? {} : { clientSecret: registration.client_secret }),
    };
  }

  /**
   * The pre-registered client, else the gateway's metadata document URL where the upstream AS takes
   * one, else the one registered dynamically (RFC 7591) with this issuer and kept in the store,
   * sealed; registering happens only when a sign-in starts (`register`). An issuer the gateway has
   * not registered with gets a registration of its own (SEP-2352). Instances racing to register keep
   * the first one stored, so an authorization started on one instance is redeemed with the same client on another.
   */
  async #client(as: oauth.AuthorizationServer, key: SigningKey | undefined, register: boolean): Promise<Registration> {
    if (this.config.clientId) return { client_id: this.config.clientId, client_secret: this.config.clientSecret };
    const storeKey = keys.upstreamRegistration(`${as.issuer} ${this.#deps.callbackUrl}`);
    const stored = await this.#storedRegistration(storeKey);
    if (stored) return stored;
    // MCP Authorization §Client Registration Approaches: a metadata document before dynamic registration
    if (this.#deps.clientMetadataUrl && as.client_id_metadata_document_supported === true) return { client_id: this.#deps.clientMetadataUrl };
    if (!as.registration_endpoint)
      throw new Error(
        `the upstream ${as.issuer} offers no dynamic client registration: register an OAuth app there with callback ${this.#deps.callbackUrl} and give its id and secret (--upstream-client-id and --upstream-client-secret, or oauth.clientId and oauth.clientSecret in the config file)`,
      );
    if (!register) throw new Error(`the gateway holds no registration at ${as.issuer}: sign in again`);
    // a confidential client: a secret, sent as the upstream prefers (or a key the operator gave)
    const asked = registrationAuthMethod(as, this.config.tokenEndpointAuthMethod, key);
    const response = await this.#fetch(as.registration_endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(clientMetadata(this.#deps.callbackUrl, asked, key?.publicJwk)),
    });
    const registered = await parseRegistration(response, asked);
    const now = nowSeconds(this.#deps.clock);
    const lifetime = registered.client_secret_expires_at ? registered.client_secret_expires_at - now : 10 * 365 * 24 * 3600;
    if (lifetime <= 0) throw new Error(`the upstream ${as.issuer} registered the gateway with a secret that has already expired`);
    await this.#deps.store.add(storeKey, { sealed: await seal(this.#deps.keys, registered, storeKey) }, lifetime);
    return (await this.#storedRegistration(storeKey)) ?? registered;
  }

  /** The stored registration; one sealed under a key no longer configured is dropped (and redone). */
  async #storedRegistration(key: string): Promise<Registration | undefined> {
    const stored = await this.#deps.store.get<{ sealed: string }>(key);
    if (!stored) return undefined;
    try {
      const registration = await unseal<Registration>(this.#deps.keys, stored.sealed, key);
      // registrations stored before the method was recorded were all made with client_secret_post
      return registration.client_secret && !registration.token_endpoint_auth_method
        ? { ...registration, token_endpoint_auth_method: "client_secret_post" }
        : registration;
    } catch {
      await this.#deps.store.delete(key);
      return undefined;
    }
  }
}

