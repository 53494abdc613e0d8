import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { sha256 } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { FETCH_FAILED, fetchDocument, httpsUrlProblem, type GuardOptions } from "../fetch-guard.js";
import type { Logger } from "../log.js";
import { consume, RATE_RULES, type RateRule } from "../ratelimit.js";
import { storeKey, type Store } from "../store/store.js";
import {
  CLIENT_ID_MAX_LENGTH,
  CLIENT_TTL_SECONDS,
  clientMetadata,
  newClientLimits,
  type ClientRecord,
  type RedirectUriPolicy,
  type TokenEndpointAuthMethod,
} from "./clients.js";
import { countNewClient } from "./registration.js";

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
  /** Where a failed fetch's detail goes (the client is told only FETCH_FAILED), and a stale copy served in its place. */
  log?: Pick<Logger, "warn">;
  /** The address of the request that named the client: a client seen for the first time counts as a registration from it (MC26). */
  address?: string;
}

/**
 * MC26: how long a document its Cache-Control lets no one keep (no-store, no-cache, max-age=0, none) is
 * reused all the same. A short max-age is honoured (a key rotation, MC24): DOCUMENT_FETCH_RULES bound it.
 */
export const MIN_DOCUMENT_REUSE_SECONDS = 60;

/**
 * MC26: fetches, answered or not, per document URL, and per host for each requesting address: the
 * gateway is no one's fetcher. A host budget shared by everyone would let one address spend a popular
 * host's with made-up URLs there and turn away that host's new clients for everyone.
 */
export const DOCUMENT_FETCH_RULES = {
  url: { name: "cimd-url", limit: 10, windowSeconds: 600, message: "This client's metadata document was fetched too often." },
  host: { name: "cimd-host", limit: 60, windowSeconds: 600, message: "Client metadata documents on this host were fetched too often." },
} as const satisfies Record<string, RateRule>;

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
export function validateMetadataDocument(url: string, d: Record<string, unknown>, policy: RedirectUriPolicy, clock: Clock): ClientRecord {
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
 * The client a metadata-document URL names: from the cache while its Cache-Control allows (else for
 * MIN_DOCUMENT_REUSE_SECONDS), else fetched through the SSRF guard and validated; when that fetch
 * fails, the last good copy while it is under STALE_IF_ERROR_SECONDS old. Kept under `client:<url>`;
 * /token, /revoke and /introspect resolve such a client through here again (client-auth.ts).
 * A client seen for the first time is a new client as a registration is (MC26): it counts toward the
 * address's registration limit (before anything is fetched) and `--max-clients`, and lives
 * `--unused-client-ttl` until its first code is redeemed (markClientUsed).
 */
export async function resolveMetadataClient(url: string, deps: MetadataDocumentDeps): Promise<ClientRecord> {
  const problem = clientIdUrlProblem(url);
  if (problem) throw new OAuthError("invalid_client", `The client_id "${url.slice(0, 200)}" ${problem}: a client_id URL names a client metadata document.`);
  const known = await deps.store.get<ClientRecord>(storeKey.client(url));
  if (!known && deps.address !== undefined) await consume(deps.store, RATE_RULES.register, deps.address);
  const document = (await deps.store.get<ClientRecord>(documentKey(url))) ?? (await fetchClient(url, known, deps));
  if (!known) await countNewClient(deps.store, deps.clock, newClientLimits(deps.policy));
  return keep(document, known, deps);
}

const documentKey = (url: string) => storeKey.clientMetadataDocument(sha256(url));

/** The document as the client now, kept as long as its use so far earns: a year once used, else what is left of the unused lifetime. */
async function keep(document: ClientRecord, known: ClientRecord | undefined, deps: MetadataDocumentDeps): Promise<ClientRecord> {
  const issuedAt = known?.client_id_issued_at ?? nowSeconds(deps.clock);
  const client: ClientRecord = { ...document, client_id_issued_at: issuedAt, ...(known?.used ? { used: true as const } : {}) };
  const unusedLeft = issuedAt + newClientLimits(deps.policy).unusedClientTtl - nowSeconds(deps.clock);
  await deps.store.put(storeKey.client(client.client_id), client, client.used ? CLIENT_TTL_SECONDS : Math.max(1, unusedLeft));
  return client;
}

/** Fetch within the budgets and validate; a failure is answered by the last good copy (RFC 5861 §4) or refused. */
async function fetchClient(url: string, known: ClientRecord | undefined, deps: MetadataDocumentDeps): Promise<ClientRecord> {
  const fetched = await fetchJson(url, deps);
  if ("document" in fetched) {
    const client = validateMetadataDocument(url, fetched.document, deps.policy, deps.clock);
    await deps.store.put(documentKey(url), client, fetched.lifetime || MIN_DOCUMENT_REUSE_SECONDS);
    return client;
  }
  const age = known?.metadata_document && known.document_fetched_at !== undefined ? nowSeconds(deps.clock) - known.document_fetched_at : undefined;
  if (!known || age === undefined || age > STALE_IF_ERROR_SECONDS) {
    deps.log?.warn(`client metadata document ${url.slice(0, 200)} ${fetched.failure}`);
    throw fetched.refusal;
  }
  deps.log?.warn(
    `client metadata document ${url.slice(0, 200)} ${fetched.failure}; serving the copy fetched ${Math.round(age / 60)} min ago (stale copies are served up to ${STALE_IF_ERROR_SECONDS / 3600} h)`,
  );
  // reused a while too (MC26), but never past the stale bound
  const reuse = Math.min(MIN_DOCUMENT_REUSE_SECONDS, STALE_IF_ERROR_SECONDS - age);
  if (reuse > 0) await deps.store.put(documentKey(url), known, reuse);
  return known;
}

/**
 * The document as a JSON object and how long it may be kept; or why there is none, for the log, and
 * what the client is told (MC32: FETCH_FAILED, whatever the cause; a body that is no JSON object tells
 * only that something answered, so it fails as a fetch does).
 */
async function fetchJson(
  url: string,
  deps: MetadataDocumentDeps,
): Promise<{ document: Record<string, unknown>; lifetime: number } | { failure: string; refusal: OAuthError }> {
  const overBudget = await fetchBudget(url, deps);
  if (overBudget) return { failure: "was not fetched: its URL's or its host's fetch budget is spent", refusal: overBudget };
  const fetched = await fetchDocument(url, deps.fetch);
  if (typeof fetched === "string") return { failure: fetched, refusal: invalidDocument(url, FETCH_FAILED) };
  const document = jsonObject(fetched.body);
  if (!document) return { failure: "answered with a body that is not a JSON object", refusal: invalidDocument(url, FETCH_FAILED) };
  return { document, lifetime: fetched.lifetime };
}

/** Count this fetch toward its URL's budget and its host's for this address; the refusal when either is spent. */
async function fetchBudget(url: string, deps: MetadataDocumentDeps): Promise<OAuthError | undefined> {
  try {
    await consume(deps.store, DOCUMENT_FETCH_RULES.url, sha256(url));
    await consume(deps.store, DOCUMENT_FETCH_RULES.host, sha256(`${new URL(url).hostname}\n${deps.address ?? ""}`));
    return undefined;
  } catch (error) {
    if (error instanceof OAuthError) return error;
    throw error;
  }
}

function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const invalidDocument = (url: string, problem: string) =>
  new OAuthError("invalid_client", `The client metadata document at ${url.slice(0, 200)} ${problem}.`.replace(/\.\.$/, "."));
