import type { IncomingMessage } from "node:http";
import { challenge, OAuthError } from "../errors.js";
import { validateAccessToken, type ValidatedAccess, type ValidationContext } from "../grants/validate.js";

type McpRequest = Pick<IncomingMessage, "headers" | "url">;

export interface BearerDeps extends ValidationContext {
  resource: string;
  /** RFC 9728 §5.1: the metadata URL for the resource as this request named it (Host header, trailing slash). */
  resourceMetadataUrl: (request: McpRequest) => string;
  /** Advertised in every challenge (MCP Authorization §Scope Selection Strategy). */
  scopes: () => string[] | undefined;
}

/** The RFC 6750 §3 / RFC 9728 §5.1 challenge for /mcp. */
export function bearerChallenge(deps: BearerDeps, request: McpRequest, error?: { code: string; description: string; scope?: string }): string {
  const scope = error?.scope ?? deps.scopes()?.join(" ");
  return challenge("Bearer", {
    ...(error ? { error: error.code, error_description: error.description } : {}),
    ...(scope ? { scope } : {}),
    resource_metadata: deps.resourceMetadataUrl(request),
  });
}

/** RFC 6750 §2.1: `Bearer`, one or more spaces, the token (b64token, here any visible ASCII), trailing spaces tolerated. */
const BEARER = /^Bearer +[\x21-\x7E]+ *$/i;

/**
 * Authenticate one /mcp request from its Authorization header only (RFC 6750 §2.1; MCP forbids the
 * query string). No token: 401 without an error code (RFC 6750 §3.1). Bad token: 401 invalid_token.
 */
export async function authenticate(request: McpRequest, deps: BearerDeps): Promise<ValidatedAccess> {
  const header = request.headers.authorization;
  if (header === undefined || !BEARER.test(header)) {
    const malformed = header !== undefined && /^bearer\b/i.test(header);
    const error = malformed ? { code: "invalid_request", description: "The Authorization header is malformed." } : undefined;
    throw new OAuthError(malformed ? "invalid_request" : "invalid_token", error?.description ?? "An access token is required.", malformed ? 400 : 401, {
      "WWW-Authenticate": bearerChallenge(deps, request, error),
    });
  }
  try {
    // past "Bearer" and its spaces, to the trailing ones: the token itself has none
    return await validateAccessToken(deps, header.slice(7).trim(), deps.resource);
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    throw new OAuthError(error.code, error.description, 401, {
      "WWW-Authenticate": bearerChallenge(deps, request, { code: error.code, description: error.description }),
    });
  }
}
