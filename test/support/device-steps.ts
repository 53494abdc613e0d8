import { expect } from "vitest";
import type { DeviceAuthorizationResponse } from "../../src/as/device.js";
import { TestBrowser } from "./browser.js";
import { LOGIN } from "./config.js";
import { tokenRequest } from "./oauth-steps.js";

export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** Register a device client (RFC 7591): public, device_code and refresh_token, no redirect URI. */
export async function registerDeviceClient(gatewayUrl: string, metadata: Record<string, unknown> = {}) {
  const response = await fetch(`${gatewayUrl}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "Build Agent", grant_types: [DEVICE_CODE_GRANT, "refresh_token"], token_endpoint_auth_method: "none", ...metadata }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> & { client_id: string } };
}

/** RFC 8628 §3.2, as the gateway answers it. */
export type DeviceAuthorization = DeviceAuthorizationResponse;

/** POST the device authorization endpoint (RFC 8628 §3.1) with `form`. */
export async function deviceAuthorizationRequest(endpoint: string, form: Record<string, string>) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

/** A device authorization of `clientId` at the gateway's own endpoint; fails unless 200. */
export async function startDevice(gatewayUrl: string, clientId: string, extra: Record<string, string> = {}): Promise<DeviceAuthorization> {
  const { status, body } = await deviceAuthorizationRequest(`${gatewayUrl}/device_authorization`, { client_id: clientId, ...extra });
  expect(status, JSON.stringify(body)).toBe(200);
  return body as unknown as DeviceAuthorization;
}

/** One poll of /token with the device code (RFC 8628 §3.4). */
export const poll = (gatewayUrl: string, clientId: string, deviceCode: string) =>
  tokenRequest(gatewayUrl, { grant_type: DEVICE_CODE_GRANT, device_code: deviceCode, client_id: clientId });

/** Open /device (with `?user_code=` when given in the URL), and send the form with `typed`: the answer to the post. */
export async function enterCode(browser: TestBrowser, pageUrl: string, typed: string) {
  const page = await browser.request(pageUrl);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  if (!csrf) throw new Error(`no device form at ${pageUrl}: ${page.status} ${page.text.slice(0, 300)}`);
  return browser.request(new URL("/device", pageUrl).href, { form: { csrf, user_code: typed } });
}

/**
 * The user's whole part on a browser: the code entered at /device, then Screen 1 (signing in) and
 * the upstream's page, deciding as told. The page the walk ends on: "Device connected" or a refusal.
 */
export async function approveOnBrowser(verificationUri: string, userCode: string, opts: { browser?: TestBrowser; decision?: "approve" | "deny" } = {}) {
  const browser = opts.browser ?? new TestBrowser();
  const entered = await enterCode(browser, verificationUri, userCode);
  if (entered.status !== 303 || !entered.location) throw new Error(`the code was not taken: ${entered.status} ${entered.text.slice(0, 300)}`);
  const screen1 = await browser.request(entered.location);
  const end = await browser.walk(entered.location, { redirectUri: "urn:never", ...LOGIN, ...(opts.decision ? { decision: opts.decision } : {}) });
  if ("redirect" in end) throw new Error(`a device sign-in redirected to ${end.redirect.href}`);
  return { screen1, end, browser };
}
