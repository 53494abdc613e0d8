import * as oauth from "oauth4webapi";
import type { UpstreamConfig } from "../config/types.js";
import type { Store } from "../store/store.js";
import { storeKey } from "../store/store.js";
import { chooseAuthMethod, clientAuth, importSigningKey, type ClientCredentials, type SigningKey, type TokenEndpointAuthMethod } from "./client-auth.js";
import type { DiscoveryCache } from "./discovery-cache.js";
import type { UpstreamMetadata } from "./discovery.js";
import { UpstreamError } from "./errors.js";
import { githubApi } from "./quirks.js";
import type { Registration, Registrations } from "./registration.js";

/** An authorization server of the upstream, with the gateway's client there and how it authenticates. */
export interface Resolved extends UpstreamMetadata {
  client: oauth.Client;
  clientAuth: oauth.ClientAuth;
  /** The other way to send the secret, when the method was only guessed (no metadata said which): tried once on `invalid_client`. */
  otherwise?: { method: TokenEndpointAuthMethod; auth: oauth.ClientAuth };
  /** Kept for the one non-OAuth call that needs it: GitHub's token revocation (Basic auth). */
  clientSecret?: string;
}

/**
 * How long a discovery serves what follows sign-ins (code exchange, refresh, revocation, the scopes the
 * gateway advertises); an older one still serves while a new one runs in the background. Every sign-in
 * starts from a discovery of its own (those at the same moment share the one in flight), so an
 * upstream that moves to another authorization server is followed at the next sign-in (SEP-2352).
 */
export const DISCOVERY_AGE_MS = 60 * 60_000;
const TEN_YEARS = 10 * 365 * 24 * 3600;

export interface AuthorizationServersDeps {
  store: Store;
  /** The gateway's callback for this upstream: with the client id, it names where a pre-registered client belongs. */
  callbackUrl: string;
  discoveries: DiscoveryCache;
  registrations: Registrations;
}

/**
 * The upstream's authorization servers as the gateway's client at them: which client, which way it
 * authenticates (learned where a guess failed once), and which server a grant's tokens belong to.
 */
export class AuthorizationServers {
  readonly #config: UpstreamConfig;
  readonly #deps: AuthorizationServersDeps;
  #signingKey?: Promise<SigningKey>;
  /** A pre-registered client belongs to the authorization server it was first used with. */
  #preRegisteredAt?: string;
  /** Per authorization server, the secret method that worked where the first guess did not. */
  readonly #learned = new Map<string, TokenEndpointAuthMethod>();

  constructor(config: UpstreamConfig, deps: AuthorizationServersDeps) {
    this.#config = config;
    this.#deps = deps;
  }

  /**
   * A token request with the guessed secret method, and once more with the other on `invalid_client`
   * (servers that take only one of the two and do not say which); the one that worked is kept.
   */
  async tokenRequest<T>(resolved: Resolved, request: (auth: oauth.ClientAuth) => Promise<Response>, process: (response: Response) => Promise<T>): Promise<T> {
    try {
      return await process(await request(resolved.clientAuth));
    } catch (error) {
      const { otherwise } = resolved;
      // RFC 6749 §5.2: invalid_client, or its 401 with a challenge (which oauth4webapi reports as one)
      const refusedClient =
        (error instanceof oauth.ResponseBodyError && error.error === "invalid_client") ||
        (error instanceof oauth.WWWAuthenticateChallengeError && error.status === 401);
      if (!otherwise || !refusedClient) throw error;
      const result = await process(await request(otherwise.auth));
      this.#learned.set(resolved.as.issuer, otherwise.method);
      return result;
    }
  }

  /**
   * The metadata and client of the authorization server `issuer` (the one that issued a grant's tokens
   * or that a sign-in went to); undefined: the current one. A server the upstream no longer names,
   * and that this process has not seen, ends the grant: its tokens are never sent anywhere else.
   */
  async forIssuer(issuer: string | undefined): Promise<Resolved> {
    const { discoveries } = this.#deps;
    const metadata = issuer === undefined ? await discoveries.soon(DISCOVERY_AGE_MS) : await discoveries.forIssuer(issuer, DISCOVERY_AGE_MS);
    if (!metadata)
      throw new UpstreamError(true, "invalid_grant", `the upstream no longer uses the authorization server ${issuer} that issued these tokens: sign in again`);
    return this.resolve(metadata, { register: false });
  }

  async resolve(metadata: UpstreamMetadata, o: { register: boolean }): Promise<Resolved> {
    const key = this.#config.privateKey === undefined ? undefined : await (this.#signingKey ??= importSigningKey(this.#config.privateKey));
    const pinned = this.#config.tokenEndpointAuthMethod;
    const registration = await this.#client(metadata.as, key, o.register);
    const credentials: ClientCredentials = { secret: registration.client_secret, key, method: pinned ?? registration.token_endpoint_auth_method };
    // GitHub documents its client secret as a form field; configured endpoints keep the form, as before metadata was read
    const guess = githubApi(metadata.as, this.#config.apiUrl) || metadata.found === "the configured endpoints" ? "client_secret_post" : "client_secret_basic";
    const guessed = !credentials.method && !credentials.key && credentials.secret !== undefined && !metadata.as.token_endpoint_auth_methods_supported;
    const method = (guessed && this.#learned.get(metadata.as.issuer)) || chooseAuthMethod(metadata.as, credentials, guess);
    const other = method === "client_secret_basic" ? "client_secret_post" : "client_secret_basic";
    return {
      ...metadata,
      client: { client_id: registration.client_id },
      clientAuth: clientAuth(method, credentials),
      ...(guessed ? { otherwise: { method: other, auth: clientAuth(other, credentials) } } : {}),
      ...(registration.client_secret === undefined ? {} : { clientSecret: registration.client_secret }),
    };
  }

  /** The pre-registered client, at the authorization server it belongs to; else the gateway's own (src/upstream/registration.ts). */
  async #client(as: oauth.AuthorizationServer, key: SigningKey | undefined, register: boolean): Promise<Registration> {
    const { clientId, clientSecret } = this.#config;
    if (!clientId) return this.#deps.registrations.at(as, { pinned: this.#config.tokenEndpointAuthMethod, key }, register);
    const home = await this.#preRegisteredHome(clientId, as.issuer);
    if (as.issuer !== home)
      throw new Error(
        `the upstream now names the authorization server ${as.issuer}, but its pre-registered client belongs to ${home}; the gateway does not show that client to another server: check the upstream, then give its issuer (--upstream-as, or oauth.issuer)`,
      );
    return { client_id: clientId, client_secret: clientSecret };
  }

  /**
   * The authorization server a pre-registered client belongs to: the configured issuer, else the first
   * one it was used with, kept in the store so a restart or another instance does not rebind it to
   * whatever server the upstream names then.
   */
  async #preRegisteredHome(clientId: string, current: string): Promise<string> {
    if (this.#config.issuer) return this.#config.issuer;
    if (this.#preRegisteredAt) return this.#preRegisteredAt;
    const key = storeKey.preRegisteredIssuer(`${clientId} ${this.#deps.callbackUrl}`);
    await this.#deps.store.add(key, current, TEN_YEARS);
    this.#preRegisteredAt = (await this.#deps.store.get<string>(key)) ?? current;
    return this.#preRegisteredAt;
  }
}
