import * as oauth from "oauth4webapi";
import type { JWK } from "jose";
import { nowSeconds, type Clock } from "../clock.js";
import { seal, unseal, type Keys } from "../crypto.js";
import { storeKey, type Store } from "../store/store.js";
import { registrationAuthMethod, TOKEN_ENDPOINT_AUTH_METHODS, type SigningKey, type TokenEndpointAuthMethod } from "./client-auth.js";
import { UpstreamError } from "./errors.js";

/** The gateway's registration at one upstream authorization server, as stored (sealed). */
export interface Registration {
  client_id: string;
  client_secret?: string | undefined;
  /** What the server registered (RFC 7591 §3.2.1 echoes it, possibly changed); what was asked when it does not say. */
  token_endpoint_auth_method?: TokenEndpointAuthMethod | undefined;
  /** RFC 7591 §3.2.1: seconds since the epoch when the secret expires; absent or 0: never. */
  client_secret_expires_at?: number | undefined;
  /** `private_key_jwt`: the `kid` of the key registered, so another key means another registration. */
  kid?: string | undefined;
}

/** The longest a registration is kept, and how long before its secret expires one is made anew. */
const KEPT_SECONDS = 10 * 365 * 24 * 3600;
const RENEW_BEFORE_SECONDS = 300;

export interface RegistrationDeps {
  store: Store;
  /** Seals the registration's client secret at rest. */
  keys: Keys;
  clock: Clock;
  /** oauth4webapi's options for the upstream: its fetch, and whether plain http is allowed. */
  options: { [oauth.customFetch]: (url: string, init: RequestInit) => Promise<Response>; [oauth.allowInsecureRequests]: boolean };
  /** The gateway's callback for this upstream, registered there. */
  callbackUrl: string;
  /** The gateway's own Client ID Metadata Document, where the upstream can fetch it. */
  clientMetadataUrl?: string | undefined;
}

/**
 * The gateway's client at each upstream authorization server that has no pre-registered one: its
 * Client ID Metadata Document where the server takes them, else an RFC 7591 registration made when a
 * sign-in first needs it and kept in the store, sealed, per issuer and callback (SEP-2352: a client of
 * one authorization server is never shown to another). Instances racing to register keep the first
 * one stored, so an authorization started on one instance is redeemed with the same client on another.
 */
export class Registrations {
  constructor(private readonly deps: RegistrationDeps) {}

  /**
   * The client at `as`. `wanted`: the method the operator pinned, or `private_key_jwt` with a key; a
   * stored registration made otherwise (or for another key) is replaced at the next sign-in.
   * `register`: only a sign-in's start registers; a later step without one means signing in again.
   */
  async at(
    as: oauth.AuthorizationServer,
    want: { pinned?: TokenEndpointAuthMethod | undefined; key?: SigningKey | undefined },
    register: boolean,
  ): Promise<Registration> {
    const recordKey = storeKey.upstreamRegistration(`${as.issuer} ${this.deps.callbackUrl}`);
    const stored = await this.#stored(recordKey);
    const wanted = want.pinned ?? (want.key ? "private_key_jwt" : undefined);
    const fits =
      stored &&
      (!wanted || stored.token_endpoint_auth_method === wanted) &&
      (stored.token_endpoint_auth_method !== "private_key_jwt" || stored.kid === want.key?.kid);
    if (fits || (stored && !register)) return stored;
    // MCP Authorization §Client Registration Approaches: a metadata document before dynamic registration
    if (this.deps.clientMetadataUrl && as.client_id_metadata_document_supported === true) return { client_id: this.deps.clientMetadataUrl };
    if (!as.registration_endpoint)
      throw new Error(
        `the upstream ${as.issuer} offers no dynamic client registration: register an OAuth app there with callback ${this.deps.callbackUrl} and give its id and secret (--upstream-client-id and --upstream-client-secret, or oauth.clientId and oauth.clientSecret in the config file)`,
      );
    if (!register) throw new UpstreamError(true, "invalid_grant", `the gateway holds no registration at ${as.issuer} any more: sign in again`);
    const registered = await this.#register(as, registrationAuthMethod(as, want.pinned, want.key), want.key);
    const expires = registered.client_secret_expires_at;
    const lifetime = Math.min(KEPT_SECONDS, expires ? expires - RENEW_BEFORE_SECONDS - nowSeconds(this.deps.clock) : KEPT_SECONDS);
    if (lifetime <= 0)
      throw new Error(
        `the upstream ${as.issuer} registered the gateway with a secret that has already expired, or expires within ${RENEW_BEFORE_SECONDS / 60} minutes`,
      );
    const record = { sealed: await seal(this.deps.keys, registered, recordKey) };
    // a registration replacing one that no longer fits is written over it; a first one is kept only if no other instance was first
    if (stored) await this.deps.store.put(recordKey, record, lifetime);
    else await this.deps.store.add(recordKey, record, lifetime);
    return stored ? registered : ((await this.#stored(recordKey)) ?? registered);
  }

  async #register(as: oauth.AuthorizationServer, method: TokenEndpointAuthMethod, key: SigningKey | undefined): Promise<Registration> {
    const response = await oauth.dynamicClientRegistrationRequest(as, clientMetadata(this.deps.callbackUrl, method, key?.publicJwk), this.deps.options);
    const registered = await parseRegistration(response, method);
    if (registered.token_endpoint_auth_method === "private_key_jwt" && !key)
      throw new Error(`the upstream ${as.issuer} registered the gateway for private_key_jwt, which needs a key: give oauth.privateKey, or pin another method`);
    return { ...registered, ...(registered.token_endpoint_auth_method === "private_key_jwt" ? { kid: key!.kid } : {}) };
  }

  /** The stored registration; one sealed under a key no longer configured is dropped (and redone). */
  async #stored(recordKey: string): Promise<Registration | undefined> {
    const stored = await this.deps.store.get<{ sealed: string }>(recordKey);
    if (!stored) return undefined;
    try {
      const registration = await unseal<Registration>(this.deps.keys, stored.sealed, recordKey);
      // registrations stored before the method was recorded were all made with client_secret_post
      return registration.client_secret && !registration.token_endpoint_auth_method
        ? { ...registration, token_endpoint_auth_method: "client_secret_post" }
        : registration;
    } catch {
      await this.deps.store.delete(recordKey);
      return undefined;
    }
  }
}

/**
 * The gateway's RFC 7591 client metadata: a confidential web client (SEP-837's `application_type`,
 * OIDC Registration §2) that redeems codes and refreshes, authenticating with `method`.
 */
export function clientMetadata(callbackUrl: string, method: TokenEndpointAuthMethod, publicJwk?: JWK): Partial<oauth.OmitSymbolProperties<oauth.Client>> {
  return {
    redirect_uris: [callbackUrl],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: method,
    application_type: "web",
    client_name: "MCP OAuth Gateway",
    ...(method === "private_key_jwt" && publicJwk ? { jwks: { keys: [publicJwk] } } : {}),
  };
}

/**
 * The registration response as real servers send it (RFC 7591 §3.2.1): `client_id` is all that must be
 * there. oauth4webapi insists on `client_secret_expires_at` beside a secret, which many servers omit;
 * absent means the secret does not expire. 200 is taken as well as 201 (some servers answer it).
 */
export async function parseRegistration(response: Response, asked: TokenEndpointAuthMethod): Promise<Registration> {
  const text = await response.text();
  let body: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    /* described below */
  }
  if (response.status !== 200 && response.status !== 201) {
    const error =
      typeof body?.error === "string"
        ? `${body.error}${typeof body.error_description === "string" ? ` (${body.error_description})` : ""}`
        : `HTTP ${response.status}`;
    throw new Error(`the upstream refused the gateway's client registration: ${error}`);
  }
  if (!body) throw new Error("the upstream's registration response is not a JSON object");
  const { client_id, client_secret, client_secret_expires_at, token_endpoint_auth_method } = body;
  if (typeof client_id !== "string" || client_id === "") throw new Error("the upstream's registration response has no client_id");
  if (client_secret !== undefined && typeof client_secret !== "string")
    throw new Error("the upstream's registration response has a client_secret that is not a string");
  const method = TOKEN_ENDPOINT_AUTH_METHODS.find((m) => m === token_endpoint_auth_method) ?? asked;
  return {
    client_id,
    ...(client_secret ? { client_secret } : {}),
    // a server that issued no secret registered a public client, whatever it was asked
    token_endpoint_auth_method: client_secret || method === "private_key_jwt" ? method : "none",
    ...(typeof client_secret_expires_at === "number" && client_secret_expires_at > 0 ? { client_secret_expires_at } : {}),
  };
}
