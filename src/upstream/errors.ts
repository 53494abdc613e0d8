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

/** What a client of the gateway's token endpoint sees when an upstream refresh fails. */
export function refreshFailure(error: UpstreamError): OAuthError {
  return error.definitive
    ? new OAuthError("invalid_grant", "The upstream authorization server no longer accepts this grant: authorize again.")
    : new OAuthError("temporarily_unavailable", "The upstream authorization server could not be reached; try again shortly.", 503, { "Retry-After": "5" });
}
