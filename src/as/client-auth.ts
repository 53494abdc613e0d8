import { safeEqual, sha256 } from "../crypto.js";
import type { Logger } from "../log.js";
import { resolveMetadataClient } from "./cimd.js";
import { verifyClientAssertion, type ClientAssertionDeps } from "./client-assertion.js";
import { getClient, invalidClient, type ClientCredentials, type ClientRecord, type RedirectUriPolicy } from "./clients.js";

export interface ClientAuthDeps extends ClientAssertionDeps {
  /** `--redirect-uri-allow`, which a metadata document fetched again must still satisfy. */
  registration: RedirectUriPolicy;
  /** Where a stale metadata document served in place of a failed refetch is told. */
  log?: Pick<Logger, "warn">;
}

/**
 * Authenticate a client at the token, revocation and introspection endpoints with the method it
 * registered and no other. Confidential clients may use either secret method.
 */
export async function authenticateClient(deps: ClientAuthDeps, creds: ClientCredentials): Promise<ClientRecord> {
  const basic = creds.method === "client_secret_basic";
  const client = await currentClient(deps, creds.clientId);
  if (!client) throw invalidClient("The client is unknown: register again.", basic);
  if (client.token_endpoint_auth_method === "none") {
    if (creds.method !== "none") throw invalidClient("This is a public client: it has no secret or key to authenticate with.", basic);
    return client;
  }
  if (client.token_endpoint_auth_method === "private_key_jwt") {
    // RFC 7523 §2.2: a client that registered private_key_jwt proves itself with an assertion, never without
    if (creds.clientAssertion === undefined)
      throw invalidClient("This client authenticates with a private_key_jwt client_assertion (RFC 7523), not with a secret or none.", basic);
    await verifyClientAssertion(creds.clientAssertion, client, deps);
    return client;
  }
  if (creds.clientAssertion !== undefined) throw invalidClient("This client authenticates with its client secret, not with a client_assertion.", basic);
  if (creds.clientSecret === undefined || !client.client_secret_hash || !safeEqual(sha256(creds.clientSecret), client.client_secret_hash))
    throw invalidClient("The client credentials are wrong.", basic);
  return client;
}

/**
 * The client as it is now. A `private_key_jwt` metadata-document client is its document as last
 * fetched, within the document's Cache-Control and the stale-if-error bound (MC24): its keys are never
 * those of the copy /authorize kept for a year. A public one has no credential to go stale, and its
 * refreshes must not hang on a document host that refuses datacenter fetches (claude.ai's has): it is
 * the copy /authorize kept. Only clients /authorize has seen are fetched.
 */
async function currentClient(deps: ClientAuthDeps, clientId: string): Promise<ClientRecord | undefined> {
  const known = await getClient(deps.store, clientId);
  if (!known?.metadata_document || known.token_endpoint_auth_method !== "private_key_jwt") return known;
  return resolveMetadataClient(clientId, { store: deps.store, clock: deps.clock, policy: deps.registration, fetch: deps.metadataFetch, log: deps.log });
}
