import { OAuthError } from "../errors.js";
import type { ClientCredentials } from "./clients.js";
import type { TokenDeps } from "./token.js";

/** RFC 7009 §2.1: revoke a gateway token (and its grant), and the upstream's token where it allows. */
export async function revoke(_body: Record<string, unknown>, _credentials: ClientCredentials, _deps: TokenDeps): Promise<void> {
  throw new OAuthError("invalid_request", "Revocation is not built yet.", 501);
}
