import type { RequestHandler } from "express";
import { approvedBefore } from "./approvals.js";
import { browserBinding, keepBinding, servedOverTls, sessionUser } from "./browser.js";
import { go } from "./pages.js";
import { addressSubject } from "../ratelimit.js";
import type { Mount } from "../upstream/mounts.js";
import { authorize, type AuthorizeDeps, type AuthorizeFailure } from "../as/authorize.js";

/**
 * GET /authorize (or /authorize/<name> of `issuerMount`, MU8), counted per address (HI5) before it: the
 * request bound to this browser by a cookie (WP9), and an error for the verified client sent back by
 * redirect only to a client this browser's user approved before; any other client gets a page with a
 * link (RFC 9700 §4.11.2, MC25). The session is read here, never created.
 */
export function authorizeHandler(deps: AuthorizeDeps, issuerMount?: Mount): RequestHandler {
  const https = servedOverTls(deps.urls.issuer);
  return async (req, res) => {
    const browser = browserBinding(req, https);
    const outcome = await authorize(req.query, deps, { browser: browser.hash, address: addressSubject(req.ip) }, issuerMount);
    if ("pending" in outcome) {
      keepBinding(res, https, browser.value);
      return res.redirect(302, outcome.redirectTo);
    }
    const user = sessionUser(req, deps.gatewayUsers);
    const approved = user !== undefined && (await approvedBefore(deps.store, deps.clock, user, outcome.failed.client, outcome.failed.redirectUri));
    go(res, 302, approved ? { redirectTo: outcome.failed.redirectTo } : { refused: stopPage(outcome.failed) });
  };
}

const stopPage = (failed: AuthorizeFailure) => ({
  error: failed.error,
  reason: `The client's request cannot be served: ${failed.description}`,
  hint: "You have not approved this client in this browser, so the gateway does not send you back to it on its own. Follow the link only if you started this from the client it names.",
  returnTo: failed.redirectTo,
});
