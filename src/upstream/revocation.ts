import * as oauth from "oauth4webapi";
import type { UpstreamTokens } from "../grants/format.js";
import type { Fetch } from "./http.js";
import { githubRevocationRequest, githubTokenRevocation } from "./quirks.js";
import type { Resolved } from "./servers.js";

export interface RevocationDeps {
  /** The upstream's fetch (the standardising wrapper of src/upstream/quirks.ts). */
  fetch: Fetch;
  options: { [oauth.customFetch]: Fetch; [oauth.allowInsecureRequests]: boolean };
  /** `--upstream-api-url`: GitHub Enterprise Server's API. */
  apiUrl?: string | undefined;
}

/**
 * Give the upstream's tokens back at the authorization server that issued them: GitHub's
 * `DELETE /applications/{client_id}/token`, else RFC 7009 at its `revocation_endpoint`. False when
 * it offers no way to revoke.
 */
export async function revokeAt(resolved: Resolved, tokens: UpstreamTokens, deps: RevocationDeps): Promise<boolean> {
  const github = githubTokenRevocation(resolved.as, resolved.client.client_id, deps.apiUrl);
  if (github) {
    if (resolved.clientSecret === undefined) throw new Error("GitHub token revocation needs the upstream client secret");
    const response = await deps.fetch(github, githubRevocationRequest(resolved.client.client_id, resolved.clientSecret, tokens.access_token));
    await response.body?.cancel();
    // 404: the token is already dead there
    if (response.status !== 204 && response.status !== 404) throw new Error(`GitHub token revocation answered HTTP ${response.status}`);
    return true;
  }
  if (!resolved.as.revocation_endpoint) return false;
  const { as, client, clientAuth } = resolved;
  const given = tokens.refresh_token ? [[tokens.refresh_token, "refresh_token"] as const] : [];
  for (const [token, hint] of [...given, [tokens.access_token, "access_token"] as const]) {
    const response = await oauth.revocationRequest(as, client, clientAuth, token, { ...deps.options, additionalParameters: { token_type_hint: hint } });
    await oauth.processRevocationResponse(response);
  }
  return true;
}
