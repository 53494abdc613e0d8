import type { SimContext } from "../context.js";
import { bodyParams, html, json, redirect, text, type Handler, type SimRequest, type SimResponse, type Takeover } from "../http.js";
import { authorize, decide, type AuthorizeOutcome } from "./authorize.js";
import { actionsOpenIdConfiguration, authorizationServerMetadata } from "./metadata.js";
import { beCarefulPage, consentPage, errorPage, notFoundPage, serverErrorPage, unprocessablePage } from "./pages.js";
import { tokenRequest } from "./token-endpoint.js";
import { serializeTokenOutcome } from "./token-response.js";

/** github.com. No CORS anywhere: docs say pre-flight requests are not supported on the OAuth endpoints. */
export function webHandler(ctx: SimContext): Handler {
  return (req) => {
    const route = `${req.method} ${req.url.pathname}`;
    switch (route) {
      case "GET /.well-known/oauth-authorization-server/login/oauth":
        return json(200, authorizationServerMetadata(ctx.origins.web));
      case "GET /login/oauth/.well-known/openid-configuration":
        return json(200, actionsOpenIdConfiguration(ctx.origins.web));
      case "GET /login/oauth/authorize":
        return renderAuthorize(authorize(req.url.searchParams, ctx));
      case "POST /login/oauth/authorize/decide":
        return renderAuthorize(decide(bodyParams(req) ?? new Map<string, string>(), ctx));
      case "POST /login/oauth/access_token":
        return accessToken(req, ctx);
      case "POST /register":
      case "POST /login/oauth/register":
        // Anomalyco/opencode#5716: guessed DCR hits a CSRF-protected web route and gets 422.
        return html(422, unprocessablePage());
      default:
        return html(404, notFoundPage());
    }
  };
}

function renderAuthorize(outcome: AuthorizeOutcome): SimResponse {
  if ("redirectTo" in outcome) return redirect(outcome.redirectTo);
  switch (outcome.page) {
    case "not_found":
      return html(404, notFoundPage());
    case "be_careful":
      return html(200, beCarefulPage());
    case "error":
      return html(200, errorPage(outcome.message));
    case "consent":
      return html(200, consentPage(outcome.app, outcome.user, outcome.pending));
  }
}

function accessToken(req: SimRequest, ctx: SimContext): SimResponse | Takeover {
  const resets = ctx.faults.tokenEndpointReset ?? 0;
  if (resets > 0) {
    ctx.faults.tokenEndpointReset = resets - 1;
    return async (_req, res) => void res.socket?.resetAndDestroy();
  }
  const failures = ctx.faults.tokenEndpoint5xx ?? 0;
  if (failures > 0) {
    ctx.faults.tokenEndpoint5xx = failures - 1;
    return html(502, serverErrorPage());
  }
  const body = bodyParams(req);
  if (body === null) return text(400, "Problems parsing JSON\n");
  // docs authorizing-oauth-apps: parameters may come as query parameters; the body wins.
  const params = new Map([...req.url.searchParams, ...body]);
  return serializeTokenOutcome(tokenRequest(params, ctx), req.headers.accept);
}
