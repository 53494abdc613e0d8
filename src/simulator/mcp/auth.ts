import type { SimContext } from "../context.js";
import { text, type SimResponse } from "../http.js";
import { coversScopes } from "../scopes.js";
import type { AccessTokenRecord } from "../store.js";
import { prmUrl, type McpRoute } from "./paths.js";

export type GateResult = { token: AccessTokenRecord | undefined } | { response: SimResponse };

/** github-mcp-server pkg/utils/token.go: the token formats it recognises. */
const KNOWN_FORMAT = /^(?:ghp_|github_pat_|gho_|ghu_|ghs_)[A-Za-z0-9_]+$|^[0-9a-f]{40}$/;

/** Go's %q for the ASCII values used here. */
const quote = (value: string): string => JSON.stringify(value);

export const bearerChallenge = (params: Array<[string, string]>): string => `Bearer ${params.map(([k, v]) => `${k}=${quote(v)}`).join(", ")}`;

/** Spec S3.3: hosted behaviour validates the token before any transport rule. */
export function authGate(header: string | undefined, route: McpRoute, ctx: SimContext): GateResult {
  const resourceMetadata = prmUrl(ctx.origins.mcp, route);
  const raw = (header ?? "").trim();
  if (raw === "") {
    return unauthorized(resourceMetadata, "invalid_request", "No access token was provided in this request");
  }
  const bearer = /^bearer\s+(\S+)$/i.exec(raw);
  const token = bearer ? bearer[1] : /\s/.test(raw) ? undefined : raw;
  if (token === undefined || (!ctx.quirks.validateTokensUpfront && !KNOWN_FORMAT.test(token))) {
    return { response: text(400, "Authorization header is badly formatted\n") };
  }
  const record = ctx.store.findAccess(token);
  if (ctx.quirks.validateTokensUpfront && !record) {
    return unauthorized(resourceMetadata, "invalid_token", "The access token is invalid or has expired");
  }
  return { token: record };
}

const unauthorized = (resourceMetadata: string, error: string, description: string): GateResult => ({
  response: text(401, "Unauthorized\n", {
    "www-authenticate": bearerChallenge([
      ["error", error],
      ["error_description", description],
      ["resource_metadata", resourceMetadata],
    ]),
  }),
});

/**
 * github-mcp-server middleware/scope_challenge.go: only OAuth App (gho_) tokens, only tools/call;
 * scope lists the token's scopes followed by the missing ones.
 */
export function scopeChallenge(token: AccessTokenRecord | undefined, requiredScopes: string[], route: McpRoute, ctx: SimContext): SimResponse | undefined {
  if (token?.kind !== "oauth_app") return undefined;
  const missing = requiredScopes.filter((s) => !coversScopes(token.scopes, [s]));
  if (missing.length === 0) return undefined;
  return text(403, "Forbidden: insufficient scopes\n", {
    "www-authenticate": bearerChallenge([
      ["error", "insufficient_scope"],
      ["scope", [...token.scopes, ...missing].join(" ")],
      ["resource_metadata", prmUrl(ctx.origins.mcp, route)],
      ["error_description", `Additional scopes required: ${missing.join(", ")}`],
    ]),
  });
}
