import * as oauth from "oauth4webapi";
import { OAuthError } from "../errors.js";

/**
 * The one place where what went wrong upstream becomes what the client is told. Only a definitive
 * answer from the upstream authorization server (an RFC 6749 §5.2 error body) is definitive; a
 * network failure, a timeout or a 5xx is transient and must not cost the client its grant.
 */
export class UpstreamError extends Error {
  override name = "UpstreamError";
  constructor(
    readonly definitive: boolean,
    /** The upstream's error code, when it sent one. */
    readonly code: string | undefined,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }

  /** RFC 6749 §5.2 `invalid_grant`: the upstream grant itself is dead, so the gateway grant is too. */
  get endsGrant(): boolean {
    return this.definitive && this.code === "invalid_grant";
  }
}

export function classify(error: unknown, what: string): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (error instanceof oauth.ResponseBodyError) {
    const transient = error.status >= 500 || error.error === "temporarily_unavailable" || error.error === "server_error";
    return new UpstreamError(
      !transient,
      error.error,
      `${what}: the upstream answered ${error.error}${error.error_description ? ` (${error.error_description})` : ""}`,
      { cause: error },
    );
  }
  if (error instanceof oauth.AuthorizationResponseError)
    return new UpstreamError(true, error.error, `${what}: the upstream answered ${error.error}`, { cause: error });
  const status = (error as { cause?: { status?: number } })?.cause?.status;
  return new UpstreamError(false, undefined, `${what}: ${status ? `the upstream answered HTTP ${status}` : ((error as Error)?.message ?? "failed")}`, {
    cause: error,
  });
}

/**
 * What a client of the gateway's token endpoint sees when an upstream refresh fails: `invalid_grant`
 * only when the upstream grant is dead (NA4); a refusal of the gateway's own upstream credentials
 * is the operator's to fix and costs no user a grant; anything else is worth a retry (NA2).
 */
export function refreshFailure(error: UpstreamError): OAuthError {
  if (error.endsGrant) return new OAuthError("invalid_grant", "The upstream authorization server no longer accepts this grant: authorize again.");
  if (error.definitive)
    return new OAuthError(
      "server_error",
      `The upstream authorization server refused the gateway (${error.code ?? "error"}); the operator must check its upstream client.`,
      500,
    );
  return new OAuthError("temporarily_unavailable", "The upstream authorization server could not be reached; try again shortly.", 503, { "Retry-After": "5" });
}
