import type { SimContext } from "../context.js";
import { json, type Handler, type SimRequest, type SimResponse } from "../http.js";
import { userEmails } from "../options.js";
import { expandScopes } from "../scopes.js";
import type { AccessTokenRecord } from "../store.js";
import { randomHex } from "../tokens.js";
import { applicationsRoute } from "./applications.js";
import { RateLimiter, rateLimitHeaders, type RateWindow } from "./rate-limit.js";
import { membershipJson, orgJson, userJson } from "./user.js";

const API_VERSIONS = ["2022-11-28", "2026-03-10"];
const DOCS = "https://docs.github.com/rest";

/** QUIRK (spec S2.1): a missing User-Agent is refused with an HTML 403 before anything else. */
const NO_USER_AGENT =
  "Request forbidden by administrative rules.\nPlease make sure your request has a User-Agent header.\nCheck https://developer.github.com for other possible causes.\n";

const message = (status: number, text: string, docs = DOCS): SimResponse => json(status, { message: text, documentation_url: docs, status: String(status) });

type Caller = { token: AccessTokenRecord } | { token: undefined } | "bad";

/** api.github.com */
export function apiHandler(ctx: SimContext): Handler {
  const limiter = new RateLimiter(ctx.clock);
  return (req) => {
    if (!req.headers["user-agent"]) {
      return { status: 403, headers: { "content-type": "text/html" }, body: NO_USER_AGENT };
    }
    const version = req.headers["x-github-api-version"] ?? API_VERSIONS[0];
    if (!API_VERSIONS.includes(version as string)) {
      return message(400, `Invalid API version provided: ${version}`, `${DOCS}/about-the-rest-api/api-versions`);
    }
    const common = {
      "x-github-request-id": `${randomHex(4).toUpperCase()}:${randomHex(6).toUpperCase()}`,
      "x-github-api-version-selected": version as string,
      "x-github-media-type": "github.v3; format=json",
    };
    const appRoute = /^\/applications\/([^/]+)\/(token|grant)$/.exec(req.url.pathname);
    if (appRoute) return withHeaders(applicationsRoute(req, ctx, appRoute[1] as string, appRoute[2] as string), common);

    const caller = authenticate(req.headers.authorization, ctx);
    const key = caller !== "bad" && caller.token ? `user:${caller.token.userId}` : "anonymous";
    const limit = caller !== "bad" && caller.token ? 5000 : 60;
    const window = req.url.pathname === "/rate_limit" ? limiter.peek(key, limit) : limiter.hit(key, limit);
    const headers: Record<string, string> = { ...common, ...rateLimitHeaders(window) };
    if (caller === "bad") return withHeaders(message(401, "Bad credentials"), headers);
    if (caller.token?.kind === "oauth_app") {
      headers["x-oauth-scopes"] = [...caller.token.scopes].sort().join(", ");
      headers["x-oauth-client-id"] = caller.token.clientId;
    } else if (caller.token) {
      headers["x-oauth-scopes"] = "";
    }
    return withHeaders(route(req, caller.token, ctx, window), headers);
  };
}

function route(req: SimRequest, token: AccessTokenRecord | undefined, ctx: SimContext, window: RateWindow): SimResponse {
  const path = req.url.pathname;
  const read = req.method === "GET" || req.method === "HEAD";
  if (read && path === "/") return json(200, rootJson(ctx));
  if (read && path === "/rate_limit") return json(200, { resources: { core: window }, rate: window });
  if (!read) return message(404, "Not Found");
  if (!token) {
    if (path.startsWith("/user")) return message(401, "Requires authentication");
    return message(404, "Not Found");
  }
  const user = ctx.users.find((u) => u.id === token.userId);
  if (!user) return message(401, "Bad credentials");
  const scopes = token.kind === "oauth_app" ? expandScopes(token.scopes) : undefined;
  const has = (...any: string[]): boolean => scopes === undefined || any.some((s) => scopes.has(s));

  if (path === "/user") {
    return accepted(json(200, userJson(user, ctx, has("read:user"))), "");
  }
  if (path === "/user/emails") {
    if (!has("user:email")) return accepted(message(404, "Not Found"), "user, user:email");
    return accepted(json(200, userEmails(user)), "user, user:email");
  }
  if (path === "/user/orgs") {
    if (!has("read:org", "user"))
      return accepted(message(403, "You need at least read:org scope or user scope to list your organizations."), "admin:org, read:org, repo, user, write:org");
    const visible = (user.orgs ?? []).filter((o) => o.state === "active" && !o.oauthAppRestricted?.includes(token.clientId));
    return accepted(
      json(
        200,
        visible.map((o) => orgJson(o, ctx)),
      ),
      "admin:org, read:org, repo, user, write:org",
    );
  }
  const membership = /^\/user\/memberships\/orgs\/([^/]+)$/.exec(path);
  if (membership) {
    const scopesHeader = "admin:org, read:org, repo, user, write:org";
    if (!has("read:org")) return accepted(message(403, "You need at least read:org scope to view this membership."), scopesHeader);
    const org = (user.orgs ?? []).find((o) => o.login.toLowerCase() === (membership[1] as string).toLowerCase());
    if (!org) return accepted(message(404, "Not Found"), scopesHeader);
    if (org.oauthAppRestricted?.includes(token.clientId)) return accepted(restricted(org.login), scopesHeader);
    if (org.samlRequired) return accepted(samlRequired(org.login, ctx), scopesHeader);
    return accepted(json(200, membershipJson(org, user, ctx)), scopesHeader);
  }
  return message(404, "Not Found");
}

function authenticate(header: string | undefined, ctx: SimContext): Caller {
  if (!header) return { token: undefined };
  const match = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(header);
  const token = match?.[1] ? ctx.store.findAccess(match[1]) : undefined;
  return token ? { token } : "bad";
}

const withHeaders = (res: SimResponse, headers: Record<string, string>): SimResponse => ({
  ...res,
  headers: { ...headers, ...res.headers },
});

const accepted = (res: SimResponse, scopes: string): SimResponse => withHeaders(res, { "x-accepted-oauth-scopes": scopes });

const restricted = (org: string): SimResponse =>
  message(
    403,
    `Although you appear to have the correct authorization credentials, the \`${org}\` organization has enabled OAuth App access restrictions, meaning that data access to third-parties is limited. For more information on these restrictions, including how to enable this app, visit https://docs.github.com/articles/restricting-access-to-your-organization-s-data/`,
    "https://docs.github.com/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user",
  );

function samlRequired(org: string, ctx: SimContext): SimResponse {
  const res = message(
    403,
    "Resource protected by organization SAML enforcement. You must grant your OAuth token access to this organization.",
    "https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/",
  );
  return withHeaders(res, { "x-github-sso": `required; url=${ctx.origins.web}/orgs/${org}/sso?authorization_request=${randomHex(10)}` });
}

const rootJson = (ctx: SimContext) => ({
  current_user_url: `${ctx.origins.api}/user`,
  authorizations_url: `${ctx.origins.web}/settings/connections/applications{/client_id}`,
  emails_url: `${ctx.origins.api}/user/emails`,
  organization_url: `${ctx.origins.api}/orgs/{org}`,
  rate_limit_url: `${ctx.origins.api}/rate_limit`,
  user_url: `${ctx.origins.api}/users/{user}`,
  user_organizations_url: `${ctx.origins.api}/user/orgs`,
});
