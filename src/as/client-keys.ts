import type { JSONWebKeySet } from "jose";
import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { sha256 } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { FETCH_FAILED, fetchDocument, type GuardOptions } from "../fetch-guard.js";
import type { Logger } from "../log.js";
import { storeKey, type Store } from "../store/store.js";
import type { ClientRecord } from "./clients.js";

/** A key set is larger than a metadata document: a few RSA-4096 keys. */
export const JWKS_MAX_BYTES = 16 * 1024;
/**
 * A fetched key set is kept at least this long, whatever its Cache-Control, and a cached one that
 * lacks the assertion's key is fetched again no sooner (key rotation): assertions cannot make the
 * gateway fetch a client's keys at will.
 */
export const JWKS_REFETCH_COOLDOWN_SECONDS = 30;
const MAX_KEYS = 20;
/** RFC 7518 §6: members that only a private or symmetric key has. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

export interface KeySetDeps {
  store: Store;
  clock: Clock;
  /** How a `jwks_uri` is fetched: the guard and `--allow-private-fetch` of metadata documents. */
  metadataFetch: GuardOptions;
  /** Where why a key set could not be had is told; the client hears only FETCH_FAILED (MC32). */
  log?: Pick<Logger, "warn">;
}

/** RFC 7517 §5: a JWK Set of public, asymmetric keys. */
export function keySetProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "is not a JSON Web Key Set";
  const set = (value as { keys?: unknown }).keys;
  if (!Array.isArray(set) || set.length === 0 || set.length > MAX_KEYS) return `is not a JSON Web Key Set of 1 to ${MAX_KEYS} keys`;
  for (const key of set as unknown[]) {
    if (typeof key !== "object" || key === null || Array.isArray(key) || typeof (key as { kty?: unknown }).kty !== "string") return "holds a key without kty";
    if ((key as { kty: string }).kty === "oct" || PRIVATE_MEMBERS.some((m) => m in key))
      return "holds private or symmetric key material: publish public keys only";
  }
  return undefined;
}

export interface ClientKeySet {
  jwks: JSONWebKeySet;
  /** A cached set old enough to be fetched again when it lacks the assertion's key. */
  mayRefetch: boolean;
}

interface CachedKeySet {
  jwks: JSONWebKeySet;
  fetchedAt: number;
}

/** The client's keys: inline, or from its `jwks_uri` through the SSRF guard, cached per Cache-Control and at least the cooldown. */
export async function clientKeySet(client: ClientRecord, deps: KeySetDeps, refetch = false): Promise<ClientKeySet> {
  if (client.jwks) return { jwks: client.jwks, mayRefetch: false };
  const uri = client.jwks_uri;
  if (!uri) throw invalidClient("This client has no keys to verify a client_assertion with.");
  const cacheKey = storeKey.clientJwks(sha256(uri));
  const now = nowSeconds(deps.clock);
  const cached = refetch ? undefined : await deps.store.get<CachedKeySet>(cacheKey);
  if (cached) return { jwks: cached.jwks, mayRefetch: now - cached.fetchedAt >= JWKS_REFETCH_COOLDOWN_SECONDS };
  const unusable = (problem: string) => invalidClient(`The client's jwks_uri ${uri.slice(0, 200)} ${problem}.`);
  const unfetchable = (detail: string) => {
    deps.log?.warn(`client jwks_uri ${uri.slice(0, 200)} ${detail}`);
    return unusable(FETCH_FAILED);
  };
  const fetched = await fetchDocument(uri, { ...deps.metadataFetch, maxBytes: JWKS_MAX_BYTES, accept: "application/jwk-set+json, application/json" });
  if (typeof fetched === "string") throw unfetchable(fetched);
  let jwks: unknown;
  try {
    jwks = JSON.parse(fetched.body);
  } catch {
    throw unfetchable("did not answer JSON");
  }
  const problem = keySetProblem(jwks);
  if (problem) throw unusable(`answered JSON that ${problem}`);
  const lifetime = Math.max(fetched.lifetime, JWKS_REFETCH_COOLDOWN_SECONDS);
  await deps.store.put<CachedKeySet>(cacheKey, { jwks: jwks as JSONWebKeySet, fetchedAt: now }, lifetime);
  return { jwks: jwks as JSONWebKeySet, mayRefetch: false };
}

const invalidClient = (description: string) => new OAuthError("invalid_client", description);
