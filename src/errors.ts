import type { ServerResponse } from "node:http";
import type { ErrorRequestHandler } from "express";
import { StoreUnavailableError } from "./store/store.js";

/** Error codes of RFC 6749 §4.1.2.1/§5.2, RFC 6750 §3.1, RFC 7591 §3.2.2, RFC 8707 §2 and RFC 7009 §2.2.1. */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_response_type"
  | "invalid_scope"
  | "access_denied"
  | "server_error"
  | "temporarily_unavailable"
  | "invalid_token"
  | "insufficient_scope"
  | "invalid_redirect_uri"
  | "invalid_client_metadata"
  | "invalid_target"
  | "unsupported_token_type"
  // RFC 8628 §3.5
  | "authorization_pending"
  | "slow_down"
  | "expired_token";

/** The one error type. Handlers throw it; the error middleware writes it. */
export class OAuthError extends Error {
  override name = "OAuthError";
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    readonly status = 400,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(`${code}: ${description}`);
  }

  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

/** Quote a value for an RFC 9110 §5.6.4 quoted-string (auth-param values in WWW-Authenticate). */
export const quote = (value: string): string => `"${value.replace(/[\\"]/g, "\\$&").replace(/[\r\n]/g, " ")}"`;

export const challenge = (scheme: "Bearer" | "Basic", params: Record<string, string | undefined>): string =>
  `${scheme} ${Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(", ")}`.trimEnd();

export interface ErrorLog {
  error(message: string, detail?: unknown): void;
}

/**
 * The one error middleware. JSON (RFC 6749 §5.2) unless the route marked itself a browser page
 * (`res.locals.page`), then an HTML page. Anything that is not an OAuthError is a generic
 * server_error on the wire; its cause goes to the log only.
 */
export function errorMiddleware(log: ErrorLog): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    if (!res.locals.page || res.headersSent) return sendError(res, error, log);
    const e = knownOrLogged(error, log);
    res.status(e.status).set({ "Cache-Control": "no-store", Pragma: "no-cache", ...e.headers });
    // A failing template, or a view engine that cannot load (Express throws then, before any callback),
    // must not fall through to Express's final handler, which prints stacks.
    const plain = (renderError: unknown) => {
      log.error("error page failed to render", renderError);
      res.type("text/plain").send(`${e.code}: ${e.description}`);
    };
    try {
      res.render("error", { error: e.code, description: e.description }, (renderError: Error | null, html?: string) =>
        renderError ? plain(renderError) : void res.send(html),
      );
    } catch (renderError) {
      plain(renderError);
    }
  };
}

/** The RFC 6749 §5.2 JSON form of any error, for endpoints without Express (/mcp) and API routes. */
export function sendError(res: ServerResponse, error: unknown, log: ErrorLog): void {
  if (res.headersSent) return void res.destroy();
  const e = knownOrLogged(error, log);
  const body = JSON.stringify(e.toJSON());
  res.writeHead(e.status, {
    "Cache-Control": "no-store",
    Pragma: "no-cache",
    ...e.headers,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(body);
}

function knownOrLogged(error: unknown, log: ErrorLog): OAuthError {
  const known = asOAuthError(error);
  if (!known) log.error("unexpected error", error);
  return known ?? new OAuthError("server_error", "The gateway hit an unexpected error; the details are in its log.", 500);
}

/** body-parser's error types (and Express's own 4xx), each with a fixed description: nothing of the input is echoed. */
const BODY_ERRORS: Readonly<Record<string, { status: number; description: string }>> = {
  "entity.too.large": { status: 413, description: "The request body is too large." },
  "parameters.too.many": { status: 413, description: "The request body has too many parameters." },
  "entity.parse.failed": { status: 400, description: "The request body could not be parsed." },
  "entity.verify.failed": { status: 400, description: "The request body could not be parsed." },
  "charset.unsupported": { status: 415, description: "The request body's charset is not supported: send UTF-8." },
  "encoding.unsupported": { status: 415, description: "The request body's Content-Encoding is not supported: send it uncompressed." },
  "request.aborted": { status: 400, description: "The request body ended early." },
  "request.size.invalid": { status: 400, description: "The request body does not match its Content-Length." },
};

/** Errors other layers raise that have a fixed OAuth meaning. */
function asOAuthError(error: unknown): OAuthError | undefined {
  if (error instanceof OAuthError) return error;
  if (error instanceof StoreUnavailableError)
    return new OAuthError("temporarily_unavailable", "The gateway's store is unreachable; try again shortly.", 503, {
      "Retry-After": String(error.retryAfterSeconds),
    });
  const e = error as { type?: unknown; status?: unknown; expose?: unknown } | null;
  // Express's router decodes path parameters (`/register/:client_id`) and marks a malformed one 400 without `expose`:
  // invalid percent-encoding (RFC 3986 §2.1) is the client's fault, and the raw path is not echoed
  if (error instanceof URIError && e?.status === 400) return new OAuthError("invalid_request", "The request path is not valid percent-encoding.");
  // body-parser and http-errors: malformed or oversized input is the client's fault (RFC 6749 §5.2 invalid_request)
  if (e?.expose === true && typeof e.status === "number" && e.status >= 400 && e.status < 500) {
    const known = typeof e.type === "string" ? BODY_ERRORS[e.type] : undefined;
    return new OAuthError("invalid_request", known?.description ?? "The request is malformed.", known?.status ?? 400);
  }
  return undefined;
}
