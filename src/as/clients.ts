import type { JSONWebKeySet } from "jose";
import { OAuthError, challenge } from "../errors.js";
import { storeKey, type Store } from "../store/store.js";
import { assertionClientId, clientKeyMetadata } from "./client-assertion.js";
import { DEVICE_CODE_GRANT, GRANT_TYPES } from "./grant-types.js";
import { allowlistProblem, gatewayOriginProblem, redirectUriProblem } from "./redirect-uris.js";

export { redirectUriMatches, redirectUriProblem } from "./redirect-uris.js";

export type TokenEndpointAuthMethod = "none" | "client_secret_post" | "client_secret_basic" | "private_key_jwt";
/** What RFC 7591 registration offers; Client ID Metadata Documents choose from their own list (cimd.ts). */
const REGISTRATION_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ["none", "client_secret_post", "client_secret_basic"];

/** RFC 7591 §2 client metadata as registered, plus what the server provisioned. */
export interface ClientRecord {
  client_id: string;
  client_id_issued_at: number;
  /** Stored as a hash; the secret itself is shown once, in the registration response. */
  client_secret_hash?: string;
  client_secret_expires_at?: number;
  redirect_uris: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  /** private_key_jwt (RFC 7523 §2.2): where the client's public keys are, one or the other (RFC 7591 §2). */
  jwks_uri?: string;
  jwks?: JSONWebKeySet;
  /** The one algorithm its assertions use, when it named one. */
  token_endpoint_auth_signing_alg?: string;
  grant_types: string[];
  response_types: string[];
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
  scope?: string;
  software_id?: string;
  software_version?: string;
  /** RFC 7592 §3: the registration access token, stored as a hash. */
  registration_access_token_hash?: string;
  /** Set at the first redeemed code: from then on the client lives CLIENT_TTL_SECONDS. */
  used?: true;
  /** The client_id is an https URL whose Client ID Metadata Document described this client. */
  metadata_document?: true;
  /** When that document was last fetched and found valid (seconds): how stale a copy may be served. */
  document_fetched_at?: number;
}

/** Clients that redeemed a code live long; those that never do expire after `--unused-client-ttl`. */
export const CLIENT_TTL_SECONDS = 365 * 24 * 3600;
const OPTIONAL_STRINGS = ["client_name", "client_uri", "logo_uri", "scope", "software_id", "software_version"] as const;

/** What the operator allows of new clients (config.registration), registered or named by a metadata document. */
export interface RedirectUriPolicy {
  /** `--redirect-uri-allow` prefixes; `loopback` stands for any loopback http URI; empty allows all. */
  redirectUriAllow: readonly string[];
  /** The gateway's own origins (src/origins.ts), never a redirect target (MC28); added at start (withGatewayOrigins). */
  gatewayOrigins?: readonly string[];
  /** `--max-clients` per `--unused-client-ttl` window; config.registration always has both (NEW_CLIENT_DEFAULTS otherwise). */
  maxClients?: number;
  /** Seconds a client lives until it first redeems a code. */
  unusedClientTtl?: number;
}

/**
 * MC5: a device client has no redirect URI for `--redirect-uri-allow` to check, so anyone could register
 * one under any name and phish with it (RFC 8628 §5.4): an operator who narrowed redirect URIs gets no device grant.
 */
export const deviceGrantClosed = (policy: RedirectUriPolicy): boolean => policy.redirectUriAllow.length > 0;
export const DEVICE_GRANT_CLOSED = `This gateway allows only listed redirect URIs (--redirect-uri-allow), so it takes no client of the ${DEVICE_CODE_GRANT} grant: such a client has no redirect URI to check.`;

/** The defaults of `--max-clients` and `--unused-client-ttl`, for a policy built without them (tests). */
const NEW_CLIENT_DEFAULTS = { maxClients: 10_000, unusedClientTtl: 86_400 } as const;

export const newClientLimits = (policy: RedirectUriPolicy): { maxClients: number; unusedClientTtl: number } => ({
  maxClients: policy.maxClients ?? NEW_CLIENT_DEFAULTS.maxClients,
  unusedClientTtl: policy.unusedClientTtl ?? NEW_CLIENT_DEFAULTS.unusedClientTtl,
});

/** The policy with the origins the gateway answers under, known once it listens. */
export const withGatewayOrigins = <P extends RedirectUriPolicy>(policy: P, origins: { all: readonly string[] }): P => ({
  ...policy,
  gatewayOrigins: origins.all,
});

/** The RFC 7591 §2 metadata a client may choose, validated; what the server provisions is not here. */
export type ClientMetadata = Omit<
  ClientRecord,
  "client_id" | "client_id_issued_at" | "client_secret_hash" | "client_secret_expires_at" | "document_fetched_at"
>;

/** RFC 7591 §2 and §3.2.2: validate client metadata (registration, RFC 7592 update, metadata documents). */
export function clientMetadata(
  body: unknown,
  policy: RedirectUriPolicy,
  defaultMethod: TokenEndpointAuthMethod,
  methods: readonly TokenEndpointAuthMethod[] = REGISTRATION_AUTH_METHODS,
): ClientMetadata {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw metadataError("The client metadata must be a JSON object.");
  const m = body as Record<string, unknown>;
  const method = m.token_endpoint_auth_method ?? defaultMethod;
  if (!methods.includes(method as TokenEndpointAuthMethod)) throw metadataError(`token_endpoint_auth_method must be one of ${methods.join(", ")}.`);
  // Provisioned default: MCP clients need refresh; RFC 7591 §3.2.1 lets us say what we registered.
  const grantTypes = stringList(m.grant_types, "grant_types") ?? ["authorization_code", "refresh_token"];
  const unsupportedGrant = grantTypes.find((g) => !(GRANT_TYPES as readonly string[]).includes(g));
  if (unsupportedGrant) throw metadataError(`grant_type "${unsupportedGrant.slice(0, 100)}" is not supported; use ${GRANT_TYPES.join(", ")}.`);
  const browserFlow = grantTypes.includes("authorization_code");
  if (!browserFlow && !grantTypes.includes(DEVICE_CODE_GRANT)) throw metadataError(`grant_types must include authorization_code or ${DEVICE_CODE_GRANT}.`);
  if (grantTypes.includes(DEVICE_CODE_GRANT) && deviceGrantClosed(policy)) throw metadataError(DEVICE_GRANT_CLOSED);
  // RFC 8628 §3.1: a device client receives nothing at a redirect URI, so it need not register one
  const redirectUris = browserFlow || m.redirect_uris !== undefined ? validateRedirectUris(m.redirect_uris, policy) : [];
  const responseTypes = stringList(m.response_types, "response_types") ?? (browserFlow ? ["code"] : []);
  if (responseTypes.some((r) => r !== "code")) throw metadataError('response_types must be ["code"].');
  const metadata: ClientMetadata = {
    redirect_uris: redirectUris,
    token_endpoint_auth_method: method as TokenEndpointAuthMethod,
    ...(method === "private_key_jwt" ? clientKeyMetadata(m) : {}),
    grant_types: grantTypes,
    response_types: responseTypes,
  };
  for (const field of OPTIONAL_STRINGS) {
    const v = m[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string" || v.length > 1000) throw metadataError(`${field} must be a string of at most 1000 characters.`);
    metadata[field] = v;
  }
  return metadata;
}

/** The RFC 7591 §3.2.1 view of a client: never a hash, never the server's own marks. */
export function clientInformation(client: ClientRecord, secret?: string): Record<string, unknown> {
  const { client_secret_hash: _s, registration_access_token_hash: _r, used: _u, ...visible } = client;
  return secret === undefined ? visible : { ...visible, client_secret: secret };
}

/** Client ids: our random ones, or a metadata document's https URL. */
export const CLIENT_ID_MAX_LENGTH = 2000;

export const getClient = (store: Store, clientId: string): Promise<ClientRecord | undefined> =>
  clientId.length > 0 && clientId.length <= CLIENT_ID_MAX_LENGTH ? store.get<ClientRecord>(storeKey.client(clientId)) : Promise.resolve(undefined);

/** Each redirect URI checked and kept in its canonical form (URL.href), the form /authorize compares (MC30). */
function validateRedirectUris(value: unknown, policy: RedirectUriPolicy): string[] {
  const uris = stringList(value, "redirect_uris");
  if (!uris || uris.length === 0) throw metadataError("redirect_uris is required: give at least one redirect URI.");
  if (uris.length > 20) throw metadataError("redirect_uris may hold at most 20 URIs.");
  return uris.map((uri) => {
    const problem = redirectUriProblem(uri);
    const canonical = problem === undefined ? new URL(uri).href : "";
    const refusal = problem ?? allowlistProblem(canonical, policy.redirectUriAllow) ?? gatewayOriginProblem(canonical, policy.gatewayOrigins);
    if (refusal) throw new OAuthError("invalid_redirect_uri", `Redirect URI "${uri.slice(0, 200)}" ${refusal}.`);
    return canonical;
  });
}

export interface ClientCredentials {
  clientId: string;
  clientSecret?: string;
  /** RFC 7523 §2.2: the signed JWT of a private_key_jwt client, not yet verified. */
  clientAssertion?: string;
  method: TokenEndpointAuthMethod;
}

/**
 * RFC 6749 §2.3.1: Basic (form-urlencoded id and secret) or body; or an RFC 7523 §2.2 client
 * assertion in the body. Only one method per request (OAuth 2.1 §2.4).
 */
export function readClientCredentials(authorization: string | undefined, body: Record<string, unknown>): ClientCredentials {
  const bodyId = optionalParam(body, "client_id");
  const bodySecret = optionalParam(body, "client_secret");
  const basic = authorization !== undefined && /^basic /i.test(authorization);
  const assertionType = optionalParam(body, "client_assertion_type");
  const assertion = optionalParam(body, "client_assertion");
  if (assertionType !== undefined || assertion !== undefined) {
    if (basic || bodySecret !== undefined)
      throw new OAuthError("invalid_request", "Use one client authentication method: a client_assertion or a client secret, not both.");
    return { clientId: assertionClientId(assertionType, assertion, bodyId), clientAssertion: assertion!, method: "private_key_jwt" };
  }
  if (basic) {
    if (bodySecret !== undefined)
      throw new OAuthError("invalid_request", "Use one client authentication method: the Authorization header or client_secret in the body, not both.");
    const decoded = Buffer.from(authorization.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw invalidClient("The Basic credentials are malformed.", true);
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, " "));
      } catch {
        throw invalidClient("The Basic credentials are malformed.", true);
      }
    };
    const clientId = decode(decoded.slice(0, colon));
    if (bodyId !== undefined && bodyId !== clientId)
      throw new OAuthError("invalid_request", "client_id in the body differs from the one in the Authorization header.");
    return { clientId, clientSecret: decode(decoded.slice(colon + 1)), method: "client_secret_basic" };
  }
  if (bodyId === undefined)
    throw new OAuthError("invalid_client", "Client authentication is required: send client_id (and client_secret for a confidential client).", 401, {
      "WWW-Authenticate": challenge("Basic", { realm: "mcp-oauth-gateway" }),
    });
  return bodySecret === undefined ? { clientId: bodyId, method: "none" } : { clientId: bodyId, clientSecret: bodySecret, method: "client_secret_post" };
}

/** RFC 6749 §5.2: 401 with a challenge when the client used the Authorization header. */
export function invalidClient(description: string, basic: boolean): OAuthError {
  return basic
    ? new OAuthError("invalid_client", description, 401, { "WWW-Authenticate": challenge("Basic", { realm: "mcp-oauth-gateway" }) })
    : new OAuthError("invalid_client", description, 400);
}

/** A single-valued string parameter; RFC 6749 §3.1: parameters MUST NOT be repeated. */
export function optionalParam(params: Record<string, unknown>, name: string): string | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new OAuthError("invalid_request", `Parameter ${name} must be given once, as a string.`);
  return v === "" ? undefined : v;
}

function stringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw metadataError(`${field} must be an array of strings.`);
  return value as string[];
}

export const metadataError = (description: string): OAuthError => new OAuthError("invalid_client_metadata", description);

/** A client's first redeemed code: from now on it lives the long registration lifetime (docs/security.md). */
export async function markClientUsed(store: Store, client: ClientRecord): Promise<void> {
  if (client.used) return;
  const current = await getClient(store, client.client_id);
  if (!current || current.used) return;
  await store.put(storeKey.client(current.client_id), { ...current, used: true }, CLIENT_TTL_SECONDS);
}
