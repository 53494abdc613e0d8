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

/** The end of a device's sign-in (RFC 8628): nothing to redirect to, the user goes back to the device. */
export interface DeviceEnd {
  connected: boolean;
  heading: string;
  reason: string;
}

/** Where the browser goes next: on (a redirect), or nowhere, with a page saying why and a way back to the client, or the device's end. */
export type Step = { redirectTo: string } | { refused: StopPage } | { device: DeviceEnd };

/** What a user can recognise of a redirect URI: its host, or an app scheme's name. */
export function redirectHost(uri: string): string {
  const url = new URL(uri);
  return url.host || url.protocol;
}

const statusOf = (error: OAuthErrorCode): number => (error === "access_denied" ? 403 : error === "temporarily_unavailable" ? 503 : 400);

/** On to the next step, or the page: 403 refused or denied, 503 for now, 400 for a bad request. */
export function go(res: Response, status: 302 | 303, step: Step): void {
  if ("redirectTo" in step) return res.redirect(status, step.redirectTo);
  if ("device" in step) return void res.status(step.device.connected ? 200 : 403).render("device-done", step.device);
  const { returnTo } = step.refused;
  res.status(statusOf(step.refused.error)).render("refused", { ...step.refused, returnHost: returnTo ? redirectHost(returnTo) : "" });
}
