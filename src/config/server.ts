import { isFirstPartyHost } from "../hosts.js";
import { configuredScopeTokens, firstOutside } from "../scope.js";
import { authMethodNamed, loadSigningKey, pinnedMethodProblem, TOKEN_ENDPOINT_AUTH_METHODS, type TokenEndpointAuthMethod } from "../upstream/client-auth.js";
import { allowList, expand, httpUrl, isEntry, knownKeys, member, text, title, type Context, type Entry } from "./entry.js";
import { upstreamHeaderProblem } from "./headers.js";
import { isStdioEntry, parseStdioEntry } from "./stdio.js";
import { signsUsersIn, type UpstreamConfig } from "./types.js";

/** How the gateway reaches one upstream: the part of UpstreamConfig that `oauth` or `auth` decide. */
type Access = Pick<
  UpstreamConfig,
  | "auth"
  | "issuer"
  | "clientId"
  | "clientSecret"
  | "authorizationEndpoint"
  | "tokenEndpoint"
  | "scope"
  | "scopeMax"
  | "apiUrl"
  | "credentials"
  | "privateKey"
  | "tokenEndpointAuthMethod"
>;

/** An upstream entry without what its source decides: its name, its path at the gateway and its fallback title. */
export type ParsedEntry = Omit<UpstreamConfig, "name" | "path" | "title"> & { title?: string };

const SERVER_KEYS = ["url", "type", "title", "oauth", "auth", "headers", "identityHeaders", "allowUsers", "allowOrgs"];
const OAUTH_KEYS = [
  "clientId",
  "clientSecret",
  "scope",
  "scopeMax",
  "issuer",
  "authorizationEndpoint",
  "tokenEndpoint",
  "apiUrl",
  "privateKey",
  "tokenEndpointAuthMethod",
];
const STREAMABLE_HTTP: readonly unknown[] = ["http", "streamable-http", "streamableHttp"];
const AUTH_FORMS = `"none", { "bearer": "<token>" } or { "header": "<name>", "value": "<value>" }`;

/** One `mcpServers` entry at `path`; an entry that may go without `url` (the demo's flags) has the resource "". */
export function parseEntry(ctx: Context, path: string, value: Entry, urlRequired = true): ParsedEntry {
  if (isStdioEntry(value)) return parseStdioEntry(ctx, path, value);
  remoteOnly(ctx, path, value);
  knownKeys(ctx, path, value, SERVER_KEYS);
  if (value.url === undefined && urlRequired)
    throw ctx.problem(`${path}.url is missing: give the server's MCP endpoint, e.g. "url": "https://example.com/mcp"`);
  const url = value.url === undefined ? undefined : httpUrl(ctx, `${path}.url`, value.url);
  if (value.oauth !== undefined && value.auth !== undefined)
    throw ctx.problem(`${path}: "oauth" and "auth" do not go together: "oauth" signs each user in at the upstream, "auth" sends fixed credentials or none`);
  let access: Access =
    value.oauth !== undefined
      ? oauth(ctx, `${path}.oauth`, value.oauth)
      : value.auth !== undefined
        ? auth(ctx, `${path}.auth`, value.auth)
        : { auth: "detect" };
  const { authorization, ...headers } = fixedHeaders(ctx, `${path}.headers`, value.headers, access.credentials);
  if (authorization !== undefined) access = headerCredential(ctx, path, access, authorization);
  const allowOrgs = allowList(ctx, `${path}.allowOrgs`, value.allowOrgs);
  if (allowOrgs.length > 0 && !signsUsersIn(access.auth))
    throw ctx.problem(`${path}.allowOrgs needs "oauth": organisation membership is checked with the user's GitHub token, which "auth" servers have not`);
  return {
    ...(value.title === undefined ? {} : { title: title(ctx, `${path}.title`, value.title) }),
    resource: url?.href ?? "",
    ...access,
    headers: Object.freeze(headers),
    identityHeaders: url === undefined ? false : identityHeaders(ctx, path, value.identityHeaders, url, value.url as string),
    allowUsers: allowList(ctx, `${path}.allowUsers`, value.allowUsers),
    allowOrgs,
  };
}

function remoteOnly(ctx: Context, path: string, entry: Entry): void {
  if (entry.type === "sse")
    throw ctx.problem(
      `${path}: SSE servers (the 2024-11-05 transport) cannot be proxied: give a Streamable HTTP endpoint as "url", or "command" for a local server`,
    );
  if (entry.type !== undefined && !STREAMABLE_HTTP.includes(entry.type))
    throw ctx.problem(`${path}.type must be "http", "streamable-http" or "streamableHttp" for a remote server, or "stdio" with "command" (or be left out)`);
}

function oauth(ctx: Context, path: string, value: unknown): Access {
  if (!isEntry(value)) throw ctx.problem(`${path} must be an object, e.g. { "clientId": "…", "clientSecret": "\${CLIENT_SECRET}" }`);
  knownKeys(ctx, path, value, OAUTH_KEYS);
  const read = <T>(key: string, parse: (ctx: Context, path: string, value: unknown) => T): T | undefined =>
    value[key] === undefined ? undefined : parse(ctx, `${path}.${key}`, value[key]);
  const href = (c: Context, p: string, v: unknown) => httpUrl(c, p, v).href;
  const fields = {
    issuer: read("issuer", href),
    clientId: read("clientId", text),
    clientSecret: read("clientSecret", text),
    authorizationEndpoint: read("authorizationEndpoint", href),
    tokenEndpoint: read("tokenEndpoint", href),
    scope: read("scope", scope),
    scopeMax: read("scopeMax", scope),
    apiUrl: read("apiUrl", href)?.replace(/\/$/, ""),
    privateKey: read("privateKey", privateKey),
    tokenEndpointAuthMethod: read("tokenEndpointAuthMethod", authMethod),
  };
  const name = (key: keyof typeof fields) => ctx.name(`${path}.${key}`);
  if ((fields.authorizationEndpoint === undefined) !== (fields.tokenEndpoint === undefined))
    throw ctx.problem(`${name("authorizationEndpoint")} and ${name("tokenEndpoint")} go together: give both to skip discovery, or neither`);
  if (fields.clientSecret !== undefined && fields.clientId === undefined)
    throw ctx.problem(`${name("clientSecret")} needs ${name("clientId")}: give the id of the client the secret belongs to`);
  const pinned = pinnedMethodProblem(
    { method: fields.tokenEndpointAuthMethod, privateKey: fields.privateKey, clientId: fields.clientId, clientSecret: fields.clientSecret },
    { method: name("tokenEndpointAuthMethod"), privateKey: name("privateKey"), clientSecret: name("clientSecret") },
  );
  if (pinned) throw ctx.problem(pinned);
  const bounded = scopeMaxProblem(fields, { scope: name("scope"), scopeMax: name("scopeMax") });
  if (bounded) throw ctx.problem(bounded);
  return { auth: "oauth", ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) };
}

/** A PEM private key, written in the file (through `${VAR}`) or as the path of a file holding one (relative to the config file). */
function privateKey(ctx: Context, path: string, value: unknown): string {
  const loaded = loadSigningKey(text(ctx, path, value), ctx.baseDir);
  if ("problem" in loaded) throw ctx.problem(`${ctx.name(path)}: ${loaded.problem}`);
  return loaded.pem;
}

function authMethod(ctx: Context, path: string, value: unknown): TokenEndpointAuthMethod {
  const method = authMethodNamed(value);
  if (!method) throw ctx.problem(`${ctx.name(path)} must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.map((m) => `"${m}"`).join(", ")}`);
  return method;
}

/**
 * A scope maximum needs a default scope inside it: a client that asks for none gets the default, and
 * without one the upstream's own default, which the gateway cannot hold to the maximum (MC34).
 */
function scopeMaxProblem(given: { scope?: string; scopeMax?: string }, names: { scope: string; scopeMax: string }): string | undefined {
  if (given.scopeMax === undefined) return undefined;
  if (given.scope === undefined) return `${names.scopeMax} needs ${names.scope}: what to ask the upstream when a client asks for nothing, within the maximum`;
  const beyond = firstOutside(given.scope, given.scopeMax);
  return beyond === undefined ? undefined : `${names.scope} asks for "${beyond}", which ${names.scopeMax} does not allow`;
}

/** "a b", "a,b" or ["a", "b"], as one space-separated string. */
function scope(ctx: Context, path: string, value: unknown): string {
  const parts = typeof value === "string" ? [value] : Array.isArray(value) && value.length > 0 ? (value as unknown[]) : [];
  if (parts.length === 0 || parts.some((p) => typeof p !== "string" || p === ""))
    throw ctx.problem(`${path} must be a string such as "repo read:org" or an array of strings such as ["repo", "read:org"]`);
  const scopes = parts.flatMap((p, i) => {
    const where = Array.isArray(value) ? `${path}[${i}]` : path;
    const named = configuredScopeTokens(expand(ctx, where, p as string));
    if (named.length === 0) throw ctx.problem(`${where} names no scope: give at least one, or leave scope out`);
    return named;
  });
  return scopes.join(" ");
}

function auth(ctx: Context, path: string, value: unknown): Access {
  if (value === "none") return { auth: "none" };
  if (!isEntry(value)) throw ctx.problem(`${path} must be ${AUTH_FORMS}`);
  if (value.bearer !== undefined) {
    knownKeys(ctx, path, value, ["bearer"]);
    const authorization = `Bearer ${text(ctx, `${path}.bearer`, value.bearer)}`;
    if (upstreamHeaderProblem("Authorization", authorization, { authorization: true }))
      throw ctx.problem(`${path}.bearer holds a line break, a control character or a character beyond Latin-1`);
    return { auth: "static", credentials: Object.freeze({ authorization }) };
  }
  knownKeys(ctx, path, value, ["header", "value"]);
  if (value.header === undefined || value.value === undefined) throw ctx.problem(`${path} must be ${AUTH_FORMS}`);
  const name = text(ctx, `${path}.header`, value.header);
  const credential = text(ctx, `${path}.value`, value.value);
  if (upstreamHeaderProblem(name, "", { authorization: true }))
    throw ctx.problem(
      `${path}.header is not a header the gateway can send: give a name such as X-API-Key (not Host, Content-Length, a hop-by-hop header or an identity header such as X-Forwarded-User)`,
    );
  if (upstreamHeaderProblem(name, credential, { authorization: true }))
    throw ctx.problem(`${path}.value holds a line break, a control character or a character beyond Latin-1`);
  return { auth: "static", credentials: Object.freeze({ [name.toLowerCase()]: credential }) };
}

/**
 * `headers.Authorization`, as mcpServers files carry a fixed credential: the upstream's static
 * credential, for an entry that says nothing else about how to reach it.
 */
function headerCredential(ctx: Context, path: string, access: Access, authorization: string): Access {
  if (access.auth !== "detect")
    throw ctx.problem(
      `${path}.headers.Authorization and ${path}.${access.auth === "oauth" ? "oauth" : "auth"} do not go together: the upstream gets one Authorization, either the user's token ("oauth") or a fixed credential (this header or "auth")`,
    );
  return { auth: "static", credentials: Object.freeze({ authorization }) };
}

function fixedHeaders(ctx: Context, path: string, value: unknown, credentials: UpstreamConfig["credentials"]): Record<string, string> {
  if (value === undefined) return {};
  if (!isEntry(value)) throw ctx.problem(`${path} must be an object of header names and string values, e.g. { "X-MCP-Readonly": "true" }`);
  const headers = new Map<string, string>();
  for (const [name, raw] of Object.entries(value)) {
    const where = member(path, name);
    if (typeof raw !== "string") throw ctx.problem(`${where} must be a string`);
    const header = expand(ctx, where, raw);
    const why = upstreamHeaderProblem(name, header, { authorization: true });
    if (why) throw ctx.problem(`${ctx.name(path)}: ${why}`);
    const lower = name.toLowerCase();
    if (headers.has(lower)) throw ctx.problem(`${path} gives ${name} twice (header names ignore case)`);
    if (credentials?.[lower] !== undefined) throw ctx.problem(`${where} is the header "auth" sends: give it once, in "auth"`);
    headers.set(lower, header);
  }
  return Object.fromEntries(headers);
}

function identityHeaders(ctx: Context, serverPath: string, value: unknown, url: URL, rawUrl: string): boolean {
  const path = `${serverPath}.identityHeaders`;
  if (value === undefined || value === false) return false;
  if (isEntry(value) && Object.keys(value).length === 1 && value.thirdParty === true) return true;
  if (value !== true) throw ctx.problem(`${path} must be true, false or { "thirdParty": true }`);
  if (isFirstPartyHost(url.hostname, ctx.publicUrl)) return true;
  const host = rawUrl.includes("${") ? `the host of ${serverPath}.url` : url.hostname;
  throw ctx.problem(
    `${path}: ${host} is a third-party host: identity headers go only to first-party hosts unless you write "identityHeaders": { "thirdParty": true }`,
  );
}
