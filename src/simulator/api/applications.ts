import type { SimContext } from "../context.js";
import { json, type SimRequest, type SimResponse } from "../http.js";
import { appName, type SimApp } from "../options.js";
import type { AccessTokenRecord } from "../store.js";
import { sha256Hex } from "../tokens.js";
import { simpleUserJson } from "./user.js";

const DOCS = "https://docs.github.com/rest/apps/oauth-applications";

const notFound = (): SimResponse => json(404, { message: "Not Found", documentation_url: DOCS, status: "404" });

const validationFailed = (): SimResponse =>
  json(422, {
    message: "Validation Failed",
    errors: [{ resource: "Application", code: "missing_field", field: "access_token" }],
    documentation_url: DOCS,
    status: "422",
  });

/** `/applications/{client_id}/token|grant`, authenticated with Basic client_id:client_secret. */
export function applicationsRoute(req: SimRequest, ctx: SimContext, clientId: string, resource: string): SimResponse {
  const app = basicClient(req.headers.authorization, ctx.apps);
  // Wrong Basic credentials: GitHub hides app endpoints behind 404 (INFER in spec S2).
  if (!app || app.clientId !== clientId) return notFound();
  const accessToken = bodyAccessToken(req.body);
  if (accessToken === undefined) return validationFailed();
  const record = ctx.store.findAccess(accessToken);
  if (!record || record.clientId !== clientId) return notFound();
  switch (`${req.method} ${resource}`) {
    case "POST token":
      return json(200, authorizationJson(record, app, ctx));
    case "PATCH token": {
      const reset = ctx.store.resetAccess(accessToken);
      return reset ? json(200, authorizationJson(reset, app, ctx)) : notFound();
    }
    case "DELETE token":
      ctx.store.revokeAccess(accessToken);
      return { status: 204 };
    case "DELETE grant":
      ctx.store.revokeGrant(clientId, record.userId);
      return { status: 204 };
    default:
      return notFound();
  }
}

function basicClient(header: string | undefined, apps: SimApp[]): SimApp | undefined {
  const match = /^basic\s+(\S+)$/i.exec(header ?? "");
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  const id = decoded.slice(0, colon);
  const secret = decoded.slice(colon + 1);
  return apps.find((a) => a.clientId === id && a.clientSecrets.includes(secret));
}

function bodyAccessToken(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    const token = (parsed as { access_token?: unknown } | null)?.access_token;
    return typeof token === "string" && token !== "" ? token : undefined;
  } catch {
    return undefined;
  }
}

function authorizationJson(record: AccessTokenRecord, app: SimApp, ctx: SimContext): Record<string, unknown> {
  const user = ctx.users.find((u) => u.id === record.userId);
  const createdAt = new Date(record.createdAt).toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    id: record.id,
    url: `${ctx.origins.api}/authorizations/${record.id}`,
    scopes: record.scopes,
    token: record.token,
    token_last_eight: record.token.slice(-8),
    hashed_token: sha256Hex(record.token),
    app: { client_id: app.clientId, name: appName(app), url: `${ctx.origins.web}/settings/connections/applications/${app.clientId}` },
    note: null,
    note_url: null,
    updated_at: createdAt,
    created_at: createdAt,
    fingerprint: null,
    expires_at: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
    user: user ? simpleUserJson(user, ctx) : null,
    installation: null,
  };
}
