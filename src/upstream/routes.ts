import type { Request, RequestHandler } from "express";
import type { GatewayUrls } from "../as/metadata.js";
import { upstreamCallback, type LoginDeps } from "../login/flow.js";
import { go } from "../login/pages.js";
import type { Mounts } from "./mounts.js";

/** The `:name` of a per-upstream path; "" on the plain one, the flags' single upstream's (src/paths.ts). */
const nameIn = (req: Request): string => (typeof req.params.name === "string" ? req.params.name : "");

/** One callback per upstream (src/paths.ts, callbackPath): where the upstream's authorization server sends the user back. */
export function callbackHandler(deps: LoginDeps): RequestHandler {
  return async (req, res) => {
    const callback = new URL(req.originalUrl, deps.urls.issuer);
    go(res, 302, await upstreamCallback(deps, callback, req.sessionID, deps.mounts.byName(nameIn(req).toLowerCase())));
  };
}

/** The gateway's Client ID Metadata Documents, its client_id at upstream authorization servers that take them. */
export function clientMetadataHandler(deps: { urls: GatewayUrls; mounts: Mounts }): RequestHandler {
  return (req, res, next) => {
    const mount = deps.mounts.byName(nameIn(req));
    if (!mount) return next();
    res.set("Cache-Control", "max-age=3600").json({
      client_id: mount.clientMetadataUrl,
      client_name: "MCP OAuth Gateway",
      client_uri: deps.urls.issuer,
      redirect_uris: [mount.callbackUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
  };
}
