import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { sha256 } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { fetchDocument, httpsUrlProblem, type GuardOptions } from "../fetch-guard.js";
import type { Logger } from "../log.js";
import { keys, type Store } from "../store/store.js";
import {
  CLIENT_ID_MAX_LENGTH,
  CLIENT_TTL_SECONDS,
  clientMetadata,
  type ClientRecord,
  type RedirectUriPolicy,
  type TokenEndpointAuthMethod,
} from "./clients.js";

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
  /** Where a stale copy served in place of a failed refetch is told. */
  log?: Pick<Logger, "warn">;
}

/**
 * RFC 5861 §4 stale-if-error: when a refetch fails (403, 404, 5xx, timeout, refused), the last copy
 * that was fetched and valid is served for this long after that fetch. claude.ai's documents have
 * answered both 403 and 404 for a while (anthropics/claude-ai-mcp#518, #650).
 */
export const STALE_IF_ERROR_SECONDS = 24 * 3600;

/** Registered client ids are base64url; anything with a scheme is meant as a metadata document URL. */
export const isClientIdUrl = (clientId: string): boolean => clientId.includes(":");

/** CIMD draft §3: https, a path, no fragment, no userinfo, no dot segments; we also ask for canonical form. */
export function clientIdUrlProblem(clientId: string): string | undefined {
  const problem = httpsUrlProblem(clientId, CLIENT_ID_MAX_LENGTH);
  if (problem) return problem;
  const u = new URL(clientId);
  const rawPath = clientId.slice(u.origin.length).split("?")[0] ?? "";
  if (rawPath.split("/").some((s) => /^(\.|%2e){1,2}$/i.test(s))) return "must not contain . or .. path segments";
  if (u.pathname === "/") return "must have a path";
  if (u.href !== clientId) return `must be written in canonical form (${u.href.slice(0, 200)})`;
  return undefined;
}

const SECRET_METHODS = ["client_secret_basic", "client_secret_post", "client_secret_jwt"];
/** A public client, or one that proves itself with keys it publishes (RFC 7523 §2.2): nothing shared. */
const DOCUMENT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ["none", "private_key_jwt"];

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
  if (d.token_endpoint_auth_method !== undefined && !DOCUMENT_AUTH_METHODS.includes(d.token_endpoint_auth_method as TokenEndpointAuthMethod))
    throw invalidDocument(url, 'must use token_endpoint_auth_method "none" or "private_key_jwt"');
  let metadata;
  try {
    metadata = clientMetadata(d, policy, "none", DOCUMENT_AUTH_METHODS);
  } catch (error) {
    if (error instanceof OAuthError) throw invalidDocument(url, `is not valid client metadata: ${error.description}`);
    throw error;
  }
  const now = nowSeconds(clock);
  return { client_id: url, client_id_issued_at: now, ...metadata, metadata_document: true, document_fetched_at: now };
}

/**
 * The client a metadata-document URL names: from the cache while its Cache-Control allows, else
 * fetched through the SSRF guard and validated; when that fetch fails, the last good copy while it is
 * under STALE_IF_ERROR_SECONDS old. Kept under `client:<url>`; /token, /revoke and /introspect
 * resolve such a client through here again (client-auth.ts).
 */
export async function resolveMetadataClient(url: string, deps: MetadataDocumentDeps): Promise<ClientRecord> {
  const problem = clientIdUrlProblem(url);
  if (problem) throw new OAuthError("invalid_client", `The client_id "${url.slice(0, 200)}" ${problem}: a client_id URL names a client metadata document.`);
  const cacheKey = keys.clientMetadataDocument(sha256(url));
  let client = await deps.store.get<ClientRecord>(cacheKey);
  if (!client) {
    const fetched = await fetchDocument(url, deps.fetch);
    if (typeof fetched === "string") client = await lastGoodCopy(url, fetched, deps);
    else {
      client = validateMetadataDocument(url, fetched.body, deps.policy, deps.clock);
      if (fetched.lifetime > 0) await deps.store.put(cacheKey, client, fetched.lifetime);
    }
  }
  await deps.store.put(keys.client(url), client, CLIENT_TTL_SECONDS);
  return client;
}

/** RFC 5861 §4: the copy last fetched and valid, while young enough; else the failure as it is. */
async function lastGoodCopy(url: string, failure: string, deps: MetadataDocumentDeps): Promise<ClientRecord> {
  const last = await deps.store.get<ClientRecord>(keys.client(url));
  const age = last?.metadata_document && last.document_fetched_at !== undefined ? nowSeconds(deps.clock) - last.document_fetched_at : undefined;
  if (!last || age === undefined || age > STALE_IF_ERROR_SECONDS) throw invalidDocument(url, failure);
  deps.log?.warn(
    `client metadata document ${url.slice(0, 200)} ${failure}; serving the copy fetched ${Math.round(age / 60)} min ago (stale copies are served up to ${STALE_IF_ERROR_SECONDS / 3600} h)`,
  );
  return last;
}

const invalidDocument = (url: string, problem: string) =>
  new OAuthError("invalid_client", `The client metadata document at ${url.slice(0, 200)} ${problem}.`.replace(/\.\.$/, "."));
