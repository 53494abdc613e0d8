import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { randomToken, safeEqual, sha256 } from "../crypto.js";
import { OAuthError, challenge } from "../errors.js";
import { storeKey, type Store } from "../store/store.js";
import { CLIENT_TTL_SECONDS, clientInformation, clientMetadata, getClient, metadataError, type ClientRecord, type RedirectUriPolicy } from "./clients.js";
import { PATHS } from "../paths.js";

/** Dynamic registration (RFC 7591) and its management protocol (RFC 7592). */
export interface RegistrationDeps {
  store: Store;
  clock: Clock;
  issuer: string;
  registration: RegistrationPolicy;
}

/** config.registration, with the gateway's own origins once it listens (withGatewayOrigins). */
export type RegistrationPolicy = RedirectUriPolicy & { maxClients: number; unusedClientTtl: number };

/** MC28: the issuer is one of the gateway's own origins even where the policy was built without them. */
const redirectPolicy = (deps: RegistrationDeps): RedirectUriPolicy => ({
  ...deps.registration,
  gatewayOrigins: [deps.issuer, ...(deps.registration.gatewayOrigins ?? [])],
});

/** RFC 7591 §3.1: validate metadata, provision id, secret and registration access token, store; the response of §3.2.1. */
export async function registerClient(body: unknown, deps: RegistrationDeps): Promise<Record<string, unknown>> {
  const metadata = clientMetadata(body, redirectPolicy(deps), "client_secret_basic"); // RFC 7591 §2 default method
  await countNewClient(deps.store, deps.clock, deps.registration);
  const client: ClientRecord = { client_id: randomToken(16), client_id_issued_at: nowSeconds(deps.clock), ...metadata };
  let secret: string | undefined;
  if (client.token_endpoint_auth_method !== "none") {
    secret = randomToken(32);
    client.client_secret_hash = sha256(secret);
    client.client_secret_expires_at = 0; // RFC 7591 §3.2.1: 0 = never expires
  }
  const registrationAccessToken = randomToken(32);
  client.registration_access_token_hash = sha256(registrationAccessToken);
  await deps.store.put(storeKey.client(client.client_id), client, deps.registration.unusedClientTtl);
  return configurationResponse(client, deps, registrationAccessToken, secret);
}

/**
 * `--max-clients` per `--unused-client-ttl` window, counted in windows aligned to the clock so the
 * answer can say when the next one opens. Clients never used expire after the same window. Every new
 * client counts: registered here, or first named by a metadata document (cimd.ts, MC26).
 */
export async function countNewClient(store: Store, clock: Clock, limits: { maxClients: number; unusedClientTtl: number }): Promise<void> {
  const window = limits.unusedClientTtl;
  const now = nowSeconds(clock);
  const index = Math.floor(now / window);
  const count = await store.increment(storeKey.rateLimit("clients", String(index)), window);
  if (count <= limits.maxClients) return;
  const retryAfter = Math.max(1, (index + 1) * window - now);
  throw new OAuthError(
    "temporarily_unavailable",
    `This gateway has reached its limit of ${limits.maxClients} new clients (--max-clients); try again in ${Math.ceil(retryAfter / 60)} minutes.`,
    429,
    { "Retry-After": String(retryAfter) },
  );
}

/** RFC 7592 §3: the client information response with the client configuration endpoint and its token. */
function configurationResponse(client: ClientRecord, deps: RegistrationDeps, registrationAccessToken: string, secret?: string): Record<string, unknown> {
  return {
    ...clientInformation(client, secret),
    registration_access_token: registrationAccessToken,
    registration_client_uri: `${deps.issuer}${PATHS.register}/${encodeURIComponent(client.client_id)}`,
  };
}

/**
 * RFC 7592 §2: the registration access token as a Bearer token (RFC 6750 §2.1). A wrong or missing
 * token and an unknown client get the same 401 (§2.1: the server must not reveal which).
 */
export async function authorizeRegistration(
  store: Store,
  clientId: string,
  authorization: string | undefined,
): Promise<{ client: ClientRecord; token: string }> {
  const token = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization ?? "")?.[1];
  const client = token === undefined ? undefined : await getClient(store, clientId);
  const presented = sha256(token ?? "");
  const expected = client?.registration_access_token_hash ?? sha256(randomToken(16));
  if (!token || !client || !safeEqual(presented, expected))
    throw new OAuthError("invalid_token", "The registration access token is missing, wrong, or for another client.", 401, {
      "WWW-Authenticate": challenge("Bearer", { error: "invalid_token", error_description: "The registration access token is not valid." }),
    });
  return { client, token };
}

/** RFC 7592 §2.1: read the current registration. */
export async function readRegistration(clientId: string, authorization: string | undefined, deps: RegistrationDeps): Promise<Record<string, unknown>> {
  const { client, token } = await authorizeRegistration(deps.store, clientId, authorization);
  return configurationResponse(client, deps, token);
}

/** Fields the server provisions: a client MUST NOT send them in an update (RFC 7592 §2.2); we ignore them. */
const SERVER_FIELDS = ["registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at"];

/** RFC 7592 §2.2: replace the metadata with a full, valid new set; id, secret and token stay. */
export async function updateRegistration(
  clientId: string,
  authorization: string | undefined,
  body: unknown,
  deps: RegistrationDeps,
): Promise<Record<string, unknown>> {
  const { client, token } = await authorizeRegistration(deps.store, clientId, authorization);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw metadataError("The update request must be a JSON object.");
  const m = Object.fromEntries(Object.entries(body).filter(([k]) => !SERVER_FIELDS.includes(k)));
  // RFC 7592 §2.2: the request MUST include the client's current client_id
  if (m.client_id !== client.client_id) throw new OAuthError("invalid_request", "The update must carry this client's client_id.");
  // RFC 7592 §2.2: a client_secret sent MUST match; a client cannot choose its own secret
  if (
    m.client_secret !== undefined &&
    (typeof m.client_secret !== "string" || !client.client_secret_hash || !safeEqual(sha256(m.client_secret), client.client_secret_hash))
  )
    throw metadataError("client_secret does not match the one this gateway issued; a client cannot choose its own secret.");
  const metadata = clientMetadata(m, redirectPolicy(deps), client.token_endpoint_auth_method);
  if ((metadata.token_endpoint_auth_method === "none") !== (client.token_endpoint_auth_method === "none"))
    throw metadataError("A client cannot switch between public and confidential: register a new client instead.");
  const updated: ClientRecord = {
    client_id: client.client_id,
    client_id_issued_at: client.client_id_issued_at,
    ...metadata,
    ...(client.client_secret_hash === undefined ? {} : { client_secret_hash: client.client_secret_hash, client_secret_expires_at: 0 }),
    ...(client.registration_access_token_hash === undefined ? {} : { registration_access_token_hash: client.registration_access_token_hash }),
    ...(client.used ? { used: true as const } : {}),
  };
  const unusedLeft = client.client_id_issued_at + deps.registration.unusedClientTtl - nowSeconds(deps.clock);
  await deps.store.put(storeKey.client(client.client_id), updated, client.used ? CLIENT_TTL_SECONDS : Math.max(1, unusedLeft));
  return configurationResponse(updated, deps, token);
}

/**
 * RFC 7592 §2.3: deprovision the client; /authorize and /token stop knowing it, and its grants end
 * first (`endGrants`: the server "SHOULD immediately invalidate all existing authorization grants and
 * currently-active tokens"), so a failure leaves a client that can ask again.
 */
export async function deleteRegistration(
  clientId: string,
  authorization: string | undefined,
  deps: RegistrationDeps,
  endGrants: (clientId: string) => Promise<unknown>,
): Promise<void> {
  const { client } = await authorizeRegistration(deps.store, clientId, authorization);
  await endGrants(client.client_id);
  await deps.store.delete(storeKey.client(client.client_id));
}
