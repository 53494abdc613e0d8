import { OAuthError } from "../errors.js";
import { authenticateClient } from "./client-auth.js";
import { optionalParam, type ClientCredentials } from "./clients.js";
import { findToken } from "../grants/lookup.js";
import { revokeGrant, revokeUpstream } from "../grants/revoke.js";
import type { TokenDeps } from "./token.js";

/**
 * RFC 7009 §2.1: revoke a gateway token, with its whole grant, then the upstream's token where the
 * upstream allows. Unknown tokens and tokens of other clients change nothing and are answered the
 * same 200 (§2.2), so the endpoint tells nobody which tokens exist.
 */
export async function revoke(body: Record<string, unknown>, credentials: ClientCredentials, deps: TokenDeps): Promise<void> {
  const client = await authenticateClient(deps, credentials);
  const token = optionalParam(body, "token");
  if (!token) throw new OAuthError("invalid_request", "token is required.");
  // RFC 7009 §2.2.1: a hint the server does not know is ignored; it only orders the search
  const found = await findToken(deps, token, deps.mounts.resources, optionalParam(body, "token_type_hint"));
  if (!found || found.clientId !== client.client_id) return;
  await revokeGrant(deps, found.grantId, { upstreamGivenBack: true });
  // the gateway grant is gone either way; the upstream's answer never fails the client's request
  await revokeUpstream(deps, found.audience, found.upstream);
}
