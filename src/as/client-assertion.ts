import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from "jose";
import type { Clock } from "../clock.js";
import { nowSeconds } from "../clock.js";
import { sha256 } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { cacheLifetime, FetchRefused, guardedFetch, type GuardOptions } from "../fetch-guard.js";
import { keys, type Store } from "../store/store.js";
import type { ClientRecord } from "./clients.js";

/**
 * private_key_jwt client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9): the client
 * signs a short-lived JWT with a private key whose public half it publishes (`jwks_uri` or `jwks`).
 * ChatGPT's Client ID Metadata Documents ask for it.
 */
export const CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** Asymmetric algorithms only: a MAC (HS256) would need a secret shared with a client that has none. */
export const ASSERTION_ALGORITHMS: readonly string[] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

/** The longest an assertion may still have to live when it arrives (plus the clock skew). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
export const CLOCK_SKEW_SECONDS = 60;
/** A key set is larger than a metadata document: a few RSA-4096 keys. */
export const JWKS_MAX_BYTES = 16 * 1024;
/** A cached key set lacking the assertion's key is fetched again, but not more often than this (key rotation). */
export const JWKS_REFETCH_COOLDOWN_SECONDS = 30;
const MAX_KEYS = 20;
/** RFC 7518 §6: members that only a private or symmetric key has. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

export interface ClientAssertionDeps {
  store: Store;
  clock: Clock;
  /** The gateway's issuer: it and its token endpoint are the audiences an assertion may name. */
  issuer: string;
  /** Each upstream of a config file is also an issuer of this same authorization server. */
  mounts?: { all: readonly { issuer: string }[] };
  /** How a `jwks_uri` is fetched: the guard and `--allow-private-fetch` of metadata documents. */
  metadataFetch?: GuardOptions;
}

export type ClientKeyMetadata = Pick<ClientRecord, "jwks_uri" | "jwks" | "token_endpoint_auth_signing_alg">;

/** RFC 7591 §2: a private_key_jwt client names its public keys by `jwks_uri` (https) or `jwks`, never both. */
export function clientKeyMetadata(m: Record<string, unknown>): ClientKeyMetadata {
  const { jwks_uri: uri, jwks, token_endpoint_auth_signing_alg: alg } = m;
  if (uri !== undefined && jwks !== undefined) throw keyMetadataError("Give jwks_uri or jwks, not both (RFC 7591 §2).");
  if (uri === undefined && jwks === undefined) throw keyMetadataError("private_key_jwt needs the client's public keys: give jwks_uri or jwks.");
  if (alg !== undefined && (typeof alg !== "string" || !ASSERTION_ALGORITHMS.includes(alg)))
    throw keyMetadataError(`token_endpoint_auth_signing_alg must be one of ${ASSERTION_ALGORITHMS.join(", ")}.`);
  const signing = alg === undefined ? {} : { token_endpoint_auth_signing_alg: alg };
  if (uri !== undefined) {
    const problem = jwksUriProblem(uri);
    if (problem) throw keyMetadataError(`jwks_uri ${problem}.`);
    return { jwks_uri: uri as string, ...signing };
  }
  const problem = keySetProblem(jwks);
  if (problem) throw keyMetadataError(`jwks ${problem}.`);
  return { jwks: jwks as JSONWebKeySet, ...signing };
}

function jwksUriProblem(uri: unknown): string | undefined {
  if (typeof uri !== "string" || uri.length > 2000) return "must be a URL of at most 2000 characters";
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return "is not a URL";
  }
  if (u.protocol !== "https:") return "must be an https URL";
  if (u.username || u.password) return "must not contain userinfo";
  if (u.hash || uri.includes("#")) return "must not contain a fragment";
  return undefined;
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

/** RFC 7521 §4.2: the assertion pair, with client_id optional beside it: the assertion's `sub` names the client. */
export function assertionClientId(type: string | undefined, assertion: string | undefined, clientId: string | undefined): string {
  if (type === undefined || assertion === undefined) throw new OAuthError("invalid_request", "Send client_assertion_type and client_assertion together.");
  if (type !== CLIENT_ASSERTION_TYPE) throw invalidClient(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE} (RFC 7523 §2.2).`);
  if (clientId !== undefined) return clientId;
  let sub: unknown;
  try {
    sub = decodeJwt(assertion).sub;
  } catch {
    throw invalidClient("The client_assertion is not a JWT.");
  }
  if (typeof sub !== "string" || sub === "") throw invalidClient("The client_assertion names no client: sub must be the client_id (RFC 7523 §3).");
  return sub;
}

/**
 * RFC 7523 §3: signed by one of the client's keys with an asymmetric algorithm; `iss` = `sub` =
 * client_id; `aud` names this authorization server; `exp` present and near; `jti` used once.
 */
export async function verifyClientAssertion(assertion: string, client: ClientRecord, deps: ClientAssertionDeps): Promise<void> {
  const tokenEndpoint = `${deps.issuer}/token`;
  const algorithms = client.token_endpoint_auth_signing_alg ? [client.token_endpoint_auth_signing_alg] : [...ASSERTION_ALGORITHMS];
  const options = {
    algorithms,
    issuer: client.client_id,
    subject: client.client_id,
    // RFC 7523 §3 item 3: the token endpoint URL or the issuer identifier (draft-ietf-oauth-rfc7523bis)
    audience: [tokenEndpoint, deps.issuer, ...(deps.mounts?.all.map((m) => m.issuer) ?? [])],
    requiredClaims: ["exp", "jti"],
    currentDate: new Date(deps.clock.now()),
    clockTolerance: CLOCK_SKEW_SECONDS,
  };
  const described = { algorithms, tokenEndpoint, issuer: deps.issuer };
  let set = await clientKeySet(client, deps);
  let payload = await verifyWith(set.jwks, assertion, options, described);
  // key rotation: a cached key set that lacks the assertion's key is fetched again, once
  if (payload === NO_MATCHING_KEY && set.mayRefetch) {
    set = await clientKeySet(client, deps, true);
    payload = await verifyWith(set.jwks, assertion, options, described);
  }
  if (payload === NO_MATCHING_KEY) throw invalidClient("No key the client publishes matches the client_assertion's kid and alg.");

  const now = nowSeconds(deps.clock);
  const exp = payload.exp!;
  if (exp > now + MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS)
    throw invalidClient(`The client_assertion lives too long: its exp may be at most ${MAX_ASSERTION_LIFETIME_SECONDS / 60} minutes ahead.`);
  const jti = payload.jti;
  if (typeof jti !== "string" || jti.length === 0 || jti.length > 256)
    throw invalidClient("The client_assertion's jti must be a string of 1 to 256 characters.");
  // RFC 7523 §3 item 7: a jti is used once; kept until the assertion could no longer pass the exp check
  const fresh = await deps.store.add(keys.usedClientAssertion(sha256(`${client.client_id}\n${jti}`)), 1, Math.max(1, exp - now + CLOCK_SKEW_SECONDS));
  if (!fresh) throw invalidClient("This client_assertion was already used: sign a new one, with a new jti, for every request.");
}

const NO_MATCHING_KEY = Symbol("no matching key");

type VerifyOptions = Parameters<typeof jwtVerify>[2];

/** Any failure of the assertion or of the client's own key material is the client's: invalid_client, never a 5xx. */
async function verifyWith(
  jwks: JSONWebKeySet,
  assertion: string,
  options: VerifyOptions,
  described: { algorithms: string[]; tokenEndpoint: string; issuer: string },
): Promise<JWTPayload | typeof NO_MATCHING_KEY> {
  try {
    return (await jwtVerify(assertion, createLocalJWKSet(jwks), options)).payload;
  } catch (error) {
    if (error instanceof errors.JWKSNoMatchingKey) return NO_MATCHING_KEY;
    if (error instanceof errors.JWTExpired) throw invalidClient("The client_assertion has expired.");
    if (error instanceof errors.JOSEAlgNotAllowed) throw invalidClient(`The client_assertion must be signed with one of ${described.algorithms.join(", ")}.`);
    if (error instanceof errors.JWSSignatureVerificationFailed)
      throw invalidClient("The client_assertion's signature does not verify with the keys the client publishes.");
    if (error instanceof errors.JWTClaimValidationFailed) {
      if (error.claim === "aud") throw invalidClient(`The client_assertion's aud must name ${described.tokenEndpoint} or ${described.issuer}.`);
      if (error.claim === "iss" || error.claim === "sub") throw invalidClient("The client_assertion's iss and sub must both be the client_id.");
      throw invalidClient(`The client_assertion was refused: ${error.message}.`);
    }
    if (error instanceof errors.JOSEError) throw invalidClient(`The client_assertion was refused: ${error.message}.`);
    throw invalidClient("The client_assertion could not be verified with the keys the client publishes.");
  }
}

interface CachedKeySet {
  jwks: JSONWebKeySet;
  fetchedAt: number;
}

/** The client's keys: inline, or from its `jwks_uri` through the SSRF guard, cached per Cache-Control. */
async function clientKeySet(client: ClientRecord, deps: ClientAssertionDeps, refetch = false): Promise<{ jwks: JSONWebKeySet; mayRefetch: boolean }> {
  if (client.jwks) return { jwks: client.jwks, mayRefetch: false };
  const uri = client.jwks_uri;
  if (!uri) throw invalidClient("This client has no keys to verify a client_assertion with.");
  const cacheKey = keys.clientJwks(sha256(uri));
  const now = nowSeconds(deps.clock);
  const cached = refetch ? undefined : await deps.store.get<CachedKeySet>(cacheKey);
  if (cached) return { jwks: cached.jwks, mayRefetch: now - cached.fetchedAt >= JWKS_REFETCH_COOLDOWN_SECONDS };
  const unusable = (problem: string) => invalidClient(`The client's jwks_uri ${uri.slice(0, 200)} ${problem}.`);
  const response = await guardedFetch(uri, {
    ...(deps.metadataFetch ?? { allowPrivate: false }),
    maxBytes: JWKS_MAX_BYTES,
    accept: "application/jwk-set+json, application/json",
  }).catch((error: unknown) => {
    throw error instanceof FetchRefused ? unusable(`could not be fetched: ${error.message}`) : error;
  });
  if (response.status >= 300 && response.status < 400) throw unusable(`answered with a redirect (HTTP ${response.status}), which is not followed`);
  if (response.status !== 200) throw unusable(`answered HTTP ${response.status}`);
  let jwks: unknown;
  try {
    jwks = JSON.parse(response.body);
  } catch {
    throw unusable("did not answer JSON");
  }
  const problem = keySetProblem(jwks);
  if (problem) throw unusable(`answered JSON that ${problem}`);
  const lifetime = cacheLifetime(response.headers["cache-control"]);
  if (lifetime > 0) await deps.store.put<CachedKeySet>(cacheKey, { jwks: jwks as JSONWebKeySet, fetchedAt: now }, lifetime);
  else if (refetch) await deps.store.delete(cacheKey);
  return { jwks: jwks as JSONWebKeySet, mayRefetch: false };
}

const invalidClient = (description: string) => new OAuthError("invalid_client", description);
const keyMetadataError = (description: string) => new OAuthError("invalid_client_metadata", description);
