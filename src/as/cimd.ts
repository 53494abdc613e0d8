import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { sha256 } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { FetchRefused, guardedFetch, type GuardOptions } from "../fetch-guard.js";
import { keys, type Store } from "../store/store.js";
import { CLIENT_ID_MAX_LENGTH, CLIENT_TTL_SECONDS, clientMetadata, type ClientRecord, type RedirectUriPolicy } from "./clients.js";

/**
 * Client ID Metadata Documents (MCP 2025-11-25 §Client ID Metadata Documents,
 * draft-ietf-oauth-client-id-metadata-document): a client_id that is an https URL names a JSON
 * document, published by the client, that describes it.
 */
export interface MetadataDocumentDeps {
  store: Store;
  clock: Clock;
  policy: RedirectUriPolicy;
  fetch: GuardOptions;
}

/** The longest a fetched document is trusted without fetching it again. */
export const MAX_DOCUMENT_CACHE_SECONDS = 24 * 3600;

/** Registered client ids are base64url; anything with a scheme is meant as a metadata document URL. */
export const isClientIdUrl = (clientId: string): boolean => clientId.includes(":");

/** CIMD draft §3: https, a path, no fragment, no userinfo, no dot segments; we also ask for canonical form. */
export function clientIdUrlProblem(clientId: string): string | undefined {
  if (clientId.length > CLIENT_ID_MAX_LENGTH) return "is too long";
  let u: URL;
  try {
    u = new URL(clientId);
  } catch {
    return "is not a URL";
  }
  if (u.protocol !== "https:") return "must be an https URL";
  if (u.username || u.password) return "must not contain userinfo";
  if (u.hash || clientId.includes("#")) return "must not contain a fragment";
  const rawPath = clientId.slice(u.origin.length).split("?")[0] ?? "";
  if (rawPath.split("/").some((s) => /^(\.|%2e){1,2}$/i.test(s))) return "must not contain . or .. path segments";
  if (u.pathname === "/") return "must have a path";
  if (u.href !== clientId) return `must be written in canonical form (${u.href.slice(0, 200)})`;
  return undefined;
}

/** RFC 9111 §5.2.2: max-age (capped at 24 h) unless no-store or no-cache; 0 means do not cache. */
export function cacheLifetime(cacheControl: string | string[] | undefined): number {
  const directives = [cacheControl ?? []]
    .flat()
    .join(",")
    .split(",")
    .map((d) => d.trim().toLowerCase());
  if (directives.some((d) => d === "no-store" || d === "no-cache" || d.startsWith("no-cache="))) return 0;
  const maxAge = directives.find((d) => d.startsWith("max-age="))?.slice(8);
  if (maxAge === undefined || !/^\d+$/.test(maxAge)) return 0;
  return Math.min(Number(maxAge), MAX_DOCUMENT_CACHE_SECONDS);
}

const SECRET_METHODS = ["client_secret_basic", "client_secret_post", "client_secret_jwt"];

/** CIMD draft §4.1: the document describes the URL it was fetched from, and a client with no shared secret. */
export function validateMetadataDocument(url: string, text: string, policy: RedirectUriPolicy, clock: Clock): ClientRecord {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw invalidDocument(url, "is not JSON");
  }
  if (typeof document !== "object" || document === null || Array.isArray(document)) throw invalidDocument(url, "is not a JSON object");
  const d = document as Record<string, unknown>;
  // CIMD draft §4.1: client_id MUST equal the document's URL (simple string comparison)
  if (d.client_id !== url) throw invalidDocument(url, "names a different client_id than its own URL");
  if (d.client_secret !== undefined || d.client_secret_expires_at !== undefined) throw invalidDocument(url, "must not contain a client secret");
  if (SECRET_METHODS.includes(d.token_endpoint_auth_method as string))
    throw invalidDocument(url, "asks for a shared-secret token_endpoint_auth_method, which a public document cannot have");
  if (d.token_endpoint_auth_method !== undefined && d.token_endpoint_auth_method !== "none")
    throw invalidDocument(url, 'must use token_endpoint_auth_method "none"');
  let metadata;
  try {
    metadata = clientMetadata(d, policy, "none");
  } catch (error) {
    if (error instanceof OAuthError) throw invalidDocument(url, `is not valid client metadata: ${error.description}`);
    throw error;
  }
  return { client_id: url, client_id_issued_at: nowSeconds(clock), ...metadata, metadata_document: true };
}

/**
 * The client a metadata-document URL names: from the cache while its Cache-Control allows, else
 * fetched through the SSRF guard and validated. Kept under `client:<url>` for the rest of the flow.
 */
export async function resolveMetadataClient(url: string, deps: MetadataDocumentDeps): Promise<ClientRecord> {
  const problem = clientIdUrlProblem(url);
  if (problem) throw new OAuthError("invalid_client", `The client_id "${url.slice(0, 200)}" ${problem}: a client_id URL names a client metadata document.`);
  const cacheKey = keys.clientMetadataDocument(sha256(url));
  let client = await deps.store.get<ClientRecord>(cacheKey);
  if (!client) {
    const response = await guardedFetch(url, deps.fetch).catch((error: unknown) => {
      if (error instanceof FetchRefused) throw invalidDocument(url, `could not be fetched: ${error.message}`);
      throw error;
    });
    if (response.status >= 300 && response.status < 400)
      throw invalidDocument(url, `answered with a redirect (HTTP ${response.status}), which is not followed`);
    if (response.status !== 200) throw invalidDocument(url, `answered HTTP ${response.status}`);
    client = validateMetadataDocument(url, response.body, deps.policy, deps.clock);
    const lifetime = cacheLifetime(response.headers["cache-control"]);
    if (lifetime > 0) await deps.store.put(cacheKey, client, lifetime);
  }
  await deps.store.put(keys.client(url), client, CLIENT_TTL_SECONDS);
  return client;
}

const invalidDocument = (url: string, problem: string) =>
  new OAuthError("invalid_client", `The client metadata document at ${url.slice(0, 200)} ${problem}.`.replace(/\.\.$/, "."));
