import { challenge, OAuthError } from "../errors.js";
import { authenticateClient } from "./client-auth.js";
import { optionalParam, type ClientCredentials, type ClientRecord } from "./clients.js";
import { findToken } from "../grants/lookup.js";
import type { TokenDeps } from "./token.js";

/**
 * RFC 7662 §2: what an authenticated confidential client may learn about a token issued to it.
 * Everything else, whether unknown, expired, revoked or another client's, is `active: false` (§2.2).
 * The upstream token is never part of the answer.
 */
export async function introspect(body: Record<string, unknown>, credentials: ClientCredentials, deps: TokenDeps): Promise<Record<string, unknown>> {
  const client = await confidentialClient(credentials, deps);
  const token = optionalParam(body, "token");
  if (!token) throw new OAuthError("invalid_request", "token is required.");
  const found = await findToken(deps, token, deps.mounts.resources, optionalParam(body, "token_type_hint"));
  if (!found || found.clientId !== client.client_id) return { active: false };
  return {
    active: true,
    scope: found.scope,
    client_id: found.clientId,
    sub: found.sub,
    username: found.sub, // the gateway user who approved
    ...(found.identity ? { upstream_identity: found.identity } : {}), // and who they are at the upstream
    aud: found.audience,
    iss: deps.issuer,
    exp: found.expiresAt,
    iat: found.issuedAt,
    ...(found.type === "access_token" ? { token_type: "Bearer" } : {}),
  };
}

/** RFC 7662 §2.1: the caller must authenticate, with a client secret or a private_key_jwt assertion. §2.3: else 401. */
async function confidentialClient(credentials: ClientCredentials, deps: TokenDeps): Promise<ClientRecord> {
  const unauthorized = (description: string) =>
    new OAuthError("invalid_client", description, 401, { "WWW-Authenticate": challenge("Basic", { realm: "mcp-oauth-gateway" }) });
  const client = await authenticateClient(deps, credentials).catch((error: unknown) => {
    throw error instanceof OAuthError && error.code === "invalid_client" ? unauthorized(error.description) : error;
  });
  if (client.token_endpoint_auth_method === "none") throw unauthorized("Introspection is for confidential clients: authenticate with the client secret.");
  return client;
}
