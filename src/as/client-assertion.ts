import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from "jose";
import { nowSeconds } from "../clock.js";
import { sha256 } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { httpsUrlProblem } from "../fetch-guard.js";
import { storeKey } from "../store/store.js";
import { clientKeySet, keySetProblem, type KeySetDeps } from "./client-keys.js";
import type { ClientRecord } from "./clients.js";

/**
 * private_key_jwt client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9): the client
 * signs a short-lived JWT with a private key whose public half it publishes (`jwks_uri` or `jwks`,
 * client-keys.ts). ChatGPT's Client ID Metadata Documents ask for it.
 */
export const CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** Asymmetric algorithms only: a MAC (HS256) would need a secret shared with a client that has none. */
export const ASSERTION_ALGORITHMS: readonly string[] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

/** The longest an assertion may still have to live when it arrives (plus the clock skew). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
export const CLOCK_SKEW_SECONDS = 60;
const JWKS_URI_MAX_LENGTH = 2000;

export interface ClientAssertionDeps extends KeySetDeps {
  /** The gateway's issuer: it and its token endpoint are the audiences an assertion may name. */
  issuer: string;
  /** Each upstream of a config file is also an issuer of this same authorization server. */
  mounts: { all: readonly { issuer: string }[] };
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
    const problem = httpsUrlProblem(uri, JWKS_URI_MAX_LENGTH);
    if (problem) throw keyMetadataError(`jwks_uri ${problem}.`);
    return { jwks_uri: uri as string, ...signing };
  }
  const problem = keySetProblem(jwks);
  if (problem) throw keyMetadataError(`jwks ${problem}.`);
  return { jwks: jwks as JSONWebKeySet, ...signing };
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
 * Everything but the signature is checked first, so an assertion that could never pass costs no
 * fetch of the client's keys (MC22).
 */
export async function verifyClientAssertion(assertion: string, client: ClientRecord, deps: ClientAssertionDeps): Promise<void> {
  const algorithms = client.token_endpoint_auth_signing_alg ? [client.token_endpoint_auth_signing_alg] : [...ASSERTION_ALGORITHMS];
  const { exp, jti } = checkUnsigned(assertion, client.client_id, algorithms, deps);
  const options = {
    algorithms,
    issuer: client.client_id,
    subject: client.client_id,
    requiredClaims: ["exp", "jti"],
    currentDate: new Date(deps.clock.now()),
    clockTolerance: CLOCK_SKEW_SECONDS,
  };
  let set = await clientKeySet(client, deps);
  let verified = await verifyWith(set.jwks, assertion, options);
  // key rotation: a cached key set that lacks the assertion's key is fetched again, once
  if (!verified && set.mayRefetch) {
    set = await clientKeySet(client, deps, true);
    verified = await verifyWith(set.jwks, assertion, options);
  }
  if (!verified) throw invalidClient("No key the client publishes matches the client_assertion's kid and alg.");
  // RFC 7523 §3 item 7: a jti is used once; kept until the assertion could no longer pass the exp check
  const ttl = Math.max(1, exp - nowSeconds(deps.clock) + CLOCK_SKEW_SECONDS);
  if (!(await deps.store.add(storeKey.usedClientAssertion(sha256(`${client.client_id}\n${jti}`)), 1, ttl)))
    throw invalidClient("This client_assertion was already used: sign a new one, with a new jti, for every request.");
}

/** The header's `alg` and the RFC 7523 §3 claims, read before the signature is verified. */
function checkUnsigned(assertion: string, clientId: string, algorithms: string[], deps: ClientAssertionDeps): { exp: number; jti: string } {
  let header: ProtectedHeaderParameters;
  let claims: JWTPayload;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    throw invalidClient("The client_assertion is not a JWT.");
  }
  if (typeof header.alg !== "string" || !algorithms.includes(header.alg))
    throw invalidClient(`The client_assertion must be signed with one of ${algorithms.join(", ")}.`);
  if (claims.iss !== clientId || claims.sub !== clientId) throw invalidClient("The client_assertion's iss and sub must both be the client_id.");
  // RFC 7523 §3 item 3: the token endpoint or the issuer; one value only (draft-ietf-oauth-rfc7523bis: audience injection)
  const audiences = [...new Set([`${deps.issuer}/token`, deps.issuer, ...deps.mounts.all.map((m) => m.issuer)])];
  const aud = Array.isArray(claims.aud) && claims.aud.length === 1 ? claims.aud[0] : claims.aud;
  if (typeof aud !== "string" || !audiences.includes(aud))
    throw invalidClient(`The client_assertion's aud must be a single value, one of ${audiences.join(", ")}.`);
  const { exp, jti } = claims;
  const now = nowSeconds(deps.clock);
  if (typeof exp !== "number") throw invalidClient("The client_assertion has no exp.");
  // jose's rule (RFC 7519 §4.1.4): expired once now - skew ≥ exp
  if (exp <= now - CLOCK_SKEW_SECONDS) throw invalidClient("The client_assertion has expired.");
  if (exp > now + MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS)
    throw invalidClient(`The client_assertion lives too long: its exp may be at most ${MAX_ASSERTION_LIFETIME_SECONDS / 60} minutes ahead.`);
  if (typeof jti !== "string" || jti.length === 0 || jti.length > 256)
    throw invalidClient("The client_assertion's jti must be a string of 1 to 256 characters.");
  return { exp, jti };
}

type VerifyOptions = Parameters<typeof jwtVerify>[2];

/** False when no key of the set matches; any other failure is the client's: invalid_client, never a 5xx. */
async function verifyWith(jwks: JSONWebKeySet, assertion: string, options: VerifyOptions): Promise<boolean> {
  try {
    await jwtVerify(assertion, createLocalJWKSet(jwks), options);
    return true;
  } catch (error) {
    if (error instanceof errors.JWKSNoMatchingKey) return false;
    if (error instanceof errors.JWSSignatureVerificationFailed)
      throw invalidClient("The client_assertion's signature does not verify with the keys the client publishes.");
    if (error instanceof errors.JOSEError) throw invalidClient(`The client_assertion was refused: ${error.message}.`);
    throw invalidClient("The client_assertion could not be verified with the keys the client publishes.");
  }
}

const invalidClient = (description: string) => new OAuthError("invalid_client", description);
const keyMetadataError = (description: string) => new OAuthError("invalid_client_metadata", description);
