import type { Response } from "express";
import type { OAuthErrorCode } from "../errors.js";

/** Why the browser stops at the gateway, and the link back to the client that carries the error (RFC 6749 §4.1.2.1). */
export interface StopPage {
  error: OAuthErrorCode;
  reason: string;
  /** What the user (or an admin) can do about it. */
  hint?: string;
  /** The error response at the client's verified redirect URI. */
  returnTo: string;
  /** The page's title, when the error code's default does not fit. */
  heading?: string;
}

/** Where the browser goes next: on (a redirect), or nowhere, with a page saying why and a way back to the client. */
export type Step = { redirectTo: string } | { refused: StopPage };

/** What a user can recognise of a redirect URI: its host, or an app scheme's name. */
export function redirectHost(uri: string): string {
  const url = new URL(uri);
  return url.host || url.protocol;
}

const statusOf = (error: OAuthErrorCode): number => (error === "access_denied" ? 403 : error === "temporarily_unavailable" ? 503 : 400);

/** On to the next step, or the page: 403 refused or denied, 503 for now, 400 for a bad request. */
export function go(res: Response, status: 302 | 303, step: Step): void {
  if ("redirectTo" in step) return res.redirect(status, step.redirectTo);
  res.status(statusOf(step.refused.error)).render("refused", { ...step.refused, returnHost: redirectHost(step.refused.returnTo) });
}
