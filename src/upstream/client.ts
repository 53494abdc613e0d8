import * as oauth from "oauth4webapi";
import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import type { UpstreamConfig } from "../config.js";
import { seal, unseal, type Keys } from "../crypto.js";
import { keys, type Store } from "../store/store.js";
import type { UpstreamTokens } from "../tokens.js";
import { discoverUpstream, type UpstreamMetadata } from "./discovery.js";
import { classify, UpstreamError } from "./errors.js";
import type { Fetch } from "./http.js";
import { githubIdentity, githubMembership, oidcIdentity, type Membership, type UpstreamIdentity } from "./identity.js";
import { githubApi, githubRevocationRequest, githubTokenRevocation, standardUpstream } from "./quirks.js";

interface Resolved extends UpstreamMetadata {
  client: oauth.Client;
  clientAuth: oauth.ClientAuth;
  /** Kept for the one non-OAuth call that needs it: GitHub's token revocation (Basic auth). */
  clientSecret?: string;
}

export interface UpstreamDeps {
  store: Store;
  /** Seals the dynamic registration's client secret at rest. */
  keys: Keys;
  clock: Clock;
  fetch: Fetch;
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
  #resolved?: Promise<Resolved>;
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

  resolve(): Promise<Resolved> {
    this.#resolved ??= this.#resolve().catch((error: unknown) => {
      this.#resolved = undefined;
      throw error;
    });
    return this.#resolved;
  }

  /** Scopes to advertise to clients: `--upstream-scope`, else the upstream's own `scopes_supported`. */
  async advertisedScopes(): Promise<string[] | undefined> {
    if (this.config.scope) return this.config.scope.split(" ");
    return (await this.resolve().catch(() => undefined))?.scopesSupported;
  }

  async authorizationUrl(p: { scope: string | undefined; state: string; codeVerifier: string }): Promise<string> {
    const resolved = await this.resolve();
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
    const scope = this.#scope(p.scope ?? this.config.scope, resolved);
    if (scope) params.scope = scope;
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.href;
  }

  /**
   * What the allowlists and identity headers need besides what was asked: GitHub's `read:org` to see
   * org memberships; at an OpenID Provider, `openid` (and `email` when an allowed user is an address).
   */
  #scope(asked: string | undefined, resolved: Resolved): string | undefined {
    const scopes = new Set(asked?.split(" ").filter(Boolean));
    const { allowUsers, allowOrgs, identityHeaders } = this.config;
    if (githubApi(resolved.as, this.config.apiUrl)) {
      if (allowOrgs.length) scopes.add("read:org");
    } else if ((allowUsers.length || identityHeaders) && (resolved.as.scopes_supported?.includes("openid") || resolved.as.userinfo_endpoint)) {
      scopes.add("openid");
      if (identityHeaders || allowUsers.some((u) => u.includes("@"))) scopes.add("email");
    }
    return scopes.size ? [...scopes].join(" ") : undefined;
  }

  /** Validate the callback (state, error, iss) and redeem the code. */
  async exchangeCode(callback: URL, expectedState: string, codeVerifier: string): Promise<CodeExchange> {
    const { as, client, clientAuth, resource } = await this.resolve();
    try {
      const params = oauth.validateAuthResponse(as, client, callback, expectedState);
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

  async #resolve(): Promise<Resolved> {
    const metadata = await discoverUpstream(this.config, { fetch: this.#fetch, allowHttp: this.#options[oauth.allowInsecureRequests] });
    this.#tokenEndpoint = metadata.as.token_endpoint;
    const { client, secret } = await this.#client(metadata.as);
    return {
      ...metadata,
      client,
      clientAuth: secret === undefined ? oauth.None() : oauth.ClientSecretPost(secret),
      ...(secret === undefined ? {} : { clientSecret: secret }),
    };
  }

  /**
   * The pre-registered client, else the gateway's metadata document URL where the upstream AS takes
   * one, else one registered dynamically (RFC 7591) and kept in the store, sealed. Instances racing to register keep the first one stored, so an authorization started on
   * one instance is redeemed with the same client on another.
   */
  async #client(as: oauth.AuthorizationServer): Promise<{ client: oauth.Client; secret?: string }> {
    if (this.config.clientId) return credentials({ client_id: this.config.clientId, client_secret: this.config.clientSecret });
    const key = keys.upstreamRegistration(`${as.issuer} ${this.#deps.callbackUrl}`);
    const stored = await this.#storedRegistration(key);
    if (stored) return credentials(stored);
    // MCP Authorization §Client Registration Approaches: a metadata document before dynamic registration
    if (this.#deps.clientMetadataUrl && as.client_id_metadata_document_supported === true) return { client: { client_id: this.#deps.clientMetadataUrl } };
    if (!as.registration_endpoint)
      throw new Error(
        `the upstream ${as.issuer} offers no dynamic client registration: register an OAuth app there with callback ${this.#deps.callbackUrl} and give its id and secret (--upstream-client-id and --upstream-client-secret, or oauth.clientId and oauth.clientSecret in the config file)`,
      );
    const response = await oauth.dynamicClientRegistrationRequest(
      as,
      {
        redirect_uris: [this.#deps.callbackUrl],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_post",
        client_name: "MCP OAuth Gateway",
      },
      this.#options,
    );
    const registered = await oauth.processDynamicClientRegistrationResponse(response);
    const record: Registration = {
      client_id: registered.client_id,
      ...(typeof registered.client_secret === "string" ? { client_secret: registered.client_secret } : {}),
    };
    await this.#deps.store.add(key, { sealed: await seal(this.#deps.keys, record, key) }, 10 * 365 * 24 * 3600);
    return credentials((await this.#storedRegistration(key)) ?? record);
  }

  /** The stored registration; one sealed under a key no longer configured is dropped (and redone). */
  async #storedRegistration(key: string): Promise<Registration | undefined> {
    const stored = await this.#deps.store.get<{ sealed: string }>(key);
    if (!stored) return undefined;
    try {
      return await unseal<Registration>(this.#deps.keys, stored.sealed, key);
    } catch {
      await this.#deps.store.delete(key);
      return undefined;
    }
  }
}

interface Registration {
  client_id: string;
  client_secret?: string | undefined;
}

const credentials = (r: Registration): { client: oauth.Client; secret?: string } => ({
  client: { client_id: r.client_id },
  ...(r.client_secret ? { secret: r.client_secret } : {}),
});
