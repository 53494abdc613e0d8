import { OAuthError } from "../errors.js";
import type { ClientCredentials } from "./clients.js";
import type { TokenDeps } from "./token.js";

/** RFC 7662 §2: what an authenticated confidential client may learn about a token issued to it. */
export async function introspect(_body: Record<string, unknown>, _credentials: ClientCredentials, _deps: TokenDeps): Promise<Record<string, unknown>> {
  throw new OAuthError("invalid_request", "Introspection is not built yet.", 501);
}
