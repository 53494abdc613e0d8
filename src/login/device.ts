import type { Request, RequestHandler, Response } from "express";
import type { AuthorizationRequest } from "../as/authorize.js";
import { claimUserCode, formatUserCode, normalizeUserCode } from "../as/device.js";
import { nowSeconds } from "../clock.js";
import { randomToken } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { PATHS } from "../paths.js";
import { addressSubject, RATE_RULES, reserveCheck, type Wait } from "../ratelimit.js";
import { storeKey } from "../store/store.js";
import { browserBinding, csrfMatches, csrfToken, keepBinding, postedFromHere, servedOverTls } from "./browser.js";
import { AUTHORIZATION_REQUEST_TTL } from "../as/authorize.js";
import type { LoginDeps } from "./flow.js";

/** What the CSRF token of the code form is derived for: the form belongs to the browser binding, as Screen 1's does before sign-in. */
const FORM_ID = "device";

/**
 * GET and POST /device (RFC 8628 §3.3): the user types the code the device shows. A code is never taken
 * from the link alone: `verification_uri_complete` fills the field, the user still sends it (§5.4). A
 * right code starts the browser flow's pending request, bound to this browser, for the device's
 * client, scope and resource; wrong codes are counted per address and in all, and stop guessing (§5.1).
 */
export function deviceHandlers(deps: LoginDeps): { show: RequestHandler; submit: RequestHandler } {
  const https = servedOverTls(deps.urls.issuer);
  const render = (req: Request, res: Response, status: number, userCode: string, error?: string) => {
    const browser = browserBinding(req, https);
    keepBinding(res, https, browser.value);
    res.status(status).render("device", { userCode, csrf: csrfToken(deps.keys, FORM_ID, { browser: browser.hash }), error });
  };
  return {
    show: (req, res) => {
      const given = normalizeUserCode(req.query.user_code);
      render(req, res, 200, given ? formatUserCode(given) : "");
    },
    submit: async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (!postedFromHere(req.headers, deps.mounts.origins.all))
        throw new OAuthError("access_denied", "This form was sent from another site than this gateway's page. Open the device page again.", 403);
      const browser = browserBinding(req, https);
      if (!csrfMatches(deps.keys, FORM_ID, { browser: browser.hash }, body.csrf))
        throw new OAuthError("access_denied", "The form is stale or was not sent from this gateway's page. Reload the page and try again.", 403);
      const typed = typeof body.user_code === "string" ? body.user_code.slice(0, 20) : "";
      const turn = await codeCheckTurn(deps, req.ip);
      if ("wait" in turn) {
        res.set("Retry-After", String(turn.wait));
        return render(req, res, 429, typed, `${turn.message} Try again in ${Math.ceil(turn.wait / 60)} minutes.`);
      }
      const userCode = normalizeUserCode(typed);
      const claimed = userCode ? await claimUserCode(deps.store, nowSeconds(deps.clock), userCode) : undefined;
      if (!claimed) return render(req, res, 400, typed, "That code is wrong, expired or already used. Check the code your device shows now.");
      await turn.giveBack();
      const { record, binding } = claimed;
      const request: AuthorizationRequest = {
        id: randomToken(16),
        clientId: record.clientId,
        redirectUri: "",
        redirectUriGiven: false,
        codeChallenge: "",
        ...(record.scope === undefined ? {} : { scope: record.scope }),
        resource: record.resource,
        issuer: record.issuer,
        browser: browser.hash,
        device: binding,
        createdAt: nowSeconds(deps.clock),
      };
      await deps.store.put(storeKey.authorizationRequest(request.id), request, Math.min(AUTHORIZATION_REQUEST_TTL, record.expiresAt - request.createdAt));
      keepBinding(res, https, browser.value);
      res.redirect(303, `${PATHS.login}?request=${encodeURIComponent(request.id)}`);
    },
  };
}

/**
 * RFC 8628 §5.1: one code check, reserved against this address's wrong codes and against everyone's;
 * `giveBack` when the code was right.
 */
async function codeCheckTurn(deps: LoginDeps, ip: string | undefined): Promise<Wait | { giveBack: () => Promise<void> }> {
  const own = await reserveCheck(deps.store, deps.clock, RATE_RULES.deviceCodeFailure, addressSubject(ip));
  if ("wait" in own) return own;
  const everyone = await reserveCheck(deps.store, deps.clock, RATE_RULES.deviceCodeFailureAll, "all");
  if (!("wait" in everyone)) return { giveBack: async () => void (await Promise.all([own.giveBack(), everyone.giveBack()])) };
  await own.giveBack();
  return everyone;
}
