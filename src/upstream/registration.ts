import * as oauth from "oauth4webapi";
import type { JWK } from "jose";
import { TOKEN_ENDPOINT_AUTH_METHODS, type TokenEndpointAuthMethod } from "./client-auth.js";

/** The gateway's registration at one upstream authorization server, as stored (sealed). */
export interface Registration {
  client_id: string;
  client_secret?: string | undefined;
  /** What the server registered (RFC 7591 §3.2.1 echoes it, possibly changed); what was asked when it does not say. */
  token_endpoint_auth_method?: TokenEndpointAuthMethod | undefined;
  /** RFC 7591 §3.2.1: seconds since the epoch when the secret expires; absent or 0: never. */
  client_secret_expires_at?: number | undefined;
}

/**
 * The gateway's RFC 7591 client metadata: a confidential web client (SEP-837's `application_type`,
 * OIDC Registration §2) that redeems codes and refreshes, authenticating with `method`.
 */
export function clientMetadata(callbackUrl: string, method: TokenEndpointAuthMethod, publicJwk?: JWK): Partial<oauth.OmitSymbolProperties<oauth.Client>> {
  return {
    redirect_uris: [callbackUrl],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: method,
    application_type: "web",
    client_name: "MCP OAuth Gateway",
    ...(method === "private_key_jwt" && publicJwk ? { jwks: { keys: [publicJwk] } } : {}),
  };
}

/**
 * The registration response as real servers send it (RFC 7591 §3.2.1): `client_id` is all that must be
 * there. oauth4webapi insists on `client_secret_expires_at` beside a secret, which many servers omit;
 * absent means the secret does not expire. 200 is taken as well as 201 (some servers answer it).
 */
export async function parseRegistration(response: Response, asked: TokenEndpointAuthMethod): Promise<Registration> {
  const text = await response.text();
  let body: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    /* described below */
  }
  if (response.status !== 200 && response.status !== 201) {
    const error = typeof body?.error === "string" ? `${body.error}${typeof body.error_description === "string" ? ` (${body.error_description})` : ""}` : `HTTP ${response.status}`;
    throw new Error(`the upstream refused the gateway's client registration: ${error}`);
  }
  if (!body) throw new Error("the upstream's registration response is not a JSON object");
  const { client_id, client_secret, client_secret_expires_at, token_endpoint_auth_method } = body;
  if (typeof client_id !== "string" || client_id === "") throw new Error("the upstream's registration response has no client_id");
  if (client_secret !== undefined && typeof client_secret !== "string") throw new Error("the upstream's registration response has a client_secret that is not a string");
  const method = TOKEN_ENDPOINT_AUTH_METHODS.find((m) => m === token_endpoint_auth_method) ?? asked;
  return {
    client_id,
    ...(client_secret ? { client_secret } : {}),
    // a server that issued no secret registered a public client, whatever it was asked
    token_endpoint_auth_method: client_secret || method === "private_key_jwt" ? method : "none",
    ...(typeof client_secret_expires_at === "number" && client_secret_expires_at > 0 ? { client_secret_expires_at } : {}),
  };
}
