import { readFileSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import { dirname } from "node:path";
import { ConfigError, isLoopbackHost, upstreamHeaderProblem, type UpstreamConfig } from "./config.js";
import { firstOutside } from "./scope.js";
import { authMethodNamed, loadSigningKey, pinnedMethodProblem, TOKEN_ENDPOINT_AUTH_METHODS, type TokenEndpointAuthMethod } from "./upstream/client-auth.js";

type Env = Readonly<Record<string, string | undefined>>;
type Entry = Record<string, unknown>;

/** What the checks share: the file (named in messages), the environment (`${VAR}`) and the gateway's URL (first-party hosts). */
interface Context {
  source: string;
  env: Env;
  publicUrl: string;
}

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

const MAX_SERVERS = 50;
const MAX_ALLOWED = 1000;
const MAX_TITLE = 100;
const SERVER_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TOP_KEYS = ["mcpServers", "$schema"];
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
/** `$${` (a literal `${`), `${NAME}`, or a `${` that starts no reference. */
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{/g;

/** Private, link-local and unique-local ranges (RFC 1918, RFC 3927, RFC 4193, RFC 4291 §2.5.6), and loopback. */
const PRIVATE_RANGES = new BlockList();
for (const cidr of ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128"]) {
  const [network, prefix] = cidr.split("/") as [string, string];
  PRIVATE_RANGES.addSubnet(network, Number(prefix), isIP(network) === 4 ? "ipv4" : "ipv6");
}
/** Names that resolve only inside a site (RFC 6762 .local, RFC 6761 .localhost, RFC 8375 .home.arpa, ICANN's .internal, the common .lan). */
const LOCAL_SUFFIXES = [".internal", ".local", ".localhost", ".lan", ".home.arpa"];

/** Read the `--config` file; every problem is a ConfigError that never shows a secret. */
export function readUpstreamsFile(path: string, env: Env, publicUrl: string): UpstreamConfig[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`--config ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"}): give the path of a readable JSON file`);
  }
  return parseUpstreamsFile(text, path, env, publicUrl);
}

/** The upstreams of a config file's text, each frozen; `source` names the file in messages. */
export function parseUpstreamsFile(text: string, source: string, env: Env, publicUrl: string): UpstreamConfig[] {
  const ctx: Context = { source, env, publicUrl };
  const file = parseJson(ctx, text);
  if (!isEntry(file)) throw problem(ctx, `the file must hold one JSON object: { "mcpServers": { "<name>": { "url": "https://…" } } }`);
  knownKeys(ctx, "the top level", file, TOP_KEYS);
  if (file.$schema !== undefined && typeof file.$schema !== "string") throw problem(ctx, "$schema must be a string (the path or URL of gateway.schema.json)");
  const servers = file.mcpServers;
  if (!isEntry(servers))
    throw problem(ctx, `mcpServers must be an object of servers by name, e.g. "mcpServers": { "github": { "url": "https://api.githubcopilot.com/mcp/" } }`);
  const names = Object.keys(servers);
  if (names.length < 1 || names.length > MAX_SERVERS) throw problem(ctx, `mcpServers holds ${names.length} servers: give 1 to ${MAX_SERVERS}`);
  return names.map((name) => server(ctx, name, servers[name]));
}

function server(ctx: Context, name: string, value: unknown): UpstreamConfig {
  if (!SERVER_NAME.test(name))
    throw problem(ctx, `mcpServers.${quote(name)}: a server name is 1-63 lowercase letters, digits, "-" or "_" (it becomes the path /mcp/<name>)`);
  const path = `mcpServers.${name}`;
  if (!isEntry(value)) throw problem(ctx, `${path} must be an object such as { "url": "https://example.com/mcp" }`);
  remoteOnly(ctx, path, value);
  knownKeys(ctx, path, value, SERVER_KEYS);
  if (value.url === undefined) throw problem(ctx, `${path}.url is missing: give the server's MCP endpoint, e.g. "url": "https://example.com/mcp"`);
  const url = httpUrl(ctx, `${path}.url`, value.url);
  if (value.oauth !== undefined && value.auth !== undefined)
    throw problem(ctx, `${path}: "oauth" and "auth" do not go together: "oauth" signs each user in at the upstream, "auth" sends fixed credentials or none`);
  let access: Access =
    value.oauth !== undefined
      ? oauth(ctx, `${path}.oauth`, value.oauth)
      : value.auth !== undefined
        ? auth(ctx, `${path}.auth`, value.auth)
        : { auth: "detect" };
  const { authorization, ...headers } = fixedHeaders(ctx, `${path}.headers`, value.headers, access.credentials);
  if (authorization !== undefined) access = headerCredential(ctx, path, access, authorization);
  const allowOrgs = allowList(ctx, `${path}.allowOrgs`, value.allowOrgs);
  if (allowOrgs.length > 0 && (access.auth === "static" || access.auth === "none"))
    throw problem(ctx, `${path}.allowOrgs needs "oauth": organisation membership is checked with the user's GitHub token, which "auth" servers have not`);
  return Object.freeze({
    name,
    path: `/mcp/${name}`,
    title: value.title === undefined ? name : title(ctx, `${path}.title`, value.title),
    resource: url.href,
    ...access,
    headers: Object.freeze(headers),
    identityHeaders: identityHeaders(ctx, path, value.identityHeaders, url, value.url as string),
    allowUsers: allowList(ctx, `${path}.allowUsers`, value.allowUsers),
    allowOrgs,
  });
}

function remoteOnly(ctx: Context, path: string, entry: Entry): void {
  if (entry.command !== undefined || entry.type === "sse" || entry.type === "stdio")
    throw problem(
      ctx,
      `${path}: only remote Streamable HTTP servers can be proxied, not "command" or "sse"/"stdio" ones: give the server's MCP endpoint as "url"`,
    );
  if (entry.type !== undefined && !STREAMABLE_HTTP.includes(entry.type))
    throw problem(ctx, `${path}.type must be "http", "streamable-http" or "streamableHttp" (or be left out)`);
}

function oauth(ctx: Context, path: string, value: unknown): Access {
  if (!isEntry(value)) throw problem(ctx, `${path} must be an object, e.g. { "clientId": "…", "clientSecret": "\${CLIENT_SECRET}" }`);
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
  if ((fields.authorizationEndpoint === undefined) !== (fields.tokenEndpoint === undefined))
    throw problem(ctx, `${path}.authorizationEndpoint and ${path}.tokenEndpoint go together: give both to skip discovery, or neither`);
  if (fields.clientSecret !== undefined && fields.clientId === undefined)
    throw problem(ctx, `${path}.clientSecret needs ${path}.clientId: give the id of the client the secret belongs to`);
  const pinned = pinnedMethodProblem(
    { method: fields.tokenEndpointAuthMethod, privateKey: fields.privateKey, clientId: fields.clientId, clientSecret: fields.clientSecret },
    { method: `${path}.tokenEndpointAuthMethod`, privateKey: `${path}.privateKey`, clientSecret: `${path}.clientSecret` },
  );
  if (pinned) throw problem(ctx, pinned);
  const bounded = scopeMaxProblem(fields, { scope: `${path}.scope`, scopeMax: `${path}.scopeMax` });
  if (bounded) throw problem(ctx, bounded);
  return { auth: "oauth", ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) };
}

/** A PEM private key, written in the file (through `${VAR}`) or as the path of a file holding one (relative to the config file). */
function privateKey(ctx: Context, path: string, value: unknown): string {
  const loaded = loadSigningKey(text(ctx, path, value), dirname(ctx.source));
  if ("problem" in loaded) throw problem(ctx, `${path}: ${loaded.problem}`);
  return loaded.pem;
}

function authMethod(ctx: Context, path: string, value: unknown): TokenEndpointAuthMethod {
  const method = authMethodNamed(value);
  if (!method) throw problem(ctx, `${path} must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.map((m) => `"${m}"`).join(", ")}`);
  return method;
}

/**
 * A scope maximum needs a default scope inside it: a client that asks for none gets the default, and
 * without one the upstream's own default, which the gateway cannot hold to the maximum (MC34).
 */
export function scopeMaxProblem(given: { scope?: string; scopeMax?: string }, names: { scope: string; scopeMax: string }): string | undefined {
  if (given.scopeMax === undefined) return undefined;
  if (given.scope === undefined) return `${names.scopeMax} needs ${names.scope}: what to ask the upstream when a client asks for nothing, within the maximum`;
  const beyond = firstOutside(given.scope, given.scopeMax);
  return beyond === undefined ? undefined : `${names.scope} asks for "${beyond}", which ${names.scopeMax} does not allow`;
}

/** "a b", "a,b" or ["a", "b"], as one space-separated string. */
function scope(ctx: Context, path: string, value: unknown): string {
  const parts = typeof value === "string" ? [value] : Array.isArray(value) && value.length > 0 ? (value as unknown[]) : [];
  if (parts.length === 0 || parts.some((p) => typeof p !== "string" || p === ""))
    throw problem(ctx, `${path} must be a string such as "repo read:org" or an array of strings such as ["repo", "read:org"]`);
  const scopes = parts.flatMap((p, i) => {
    const where = Array.isArray(value) ? `${path}[${i}]` : path;
    const named = expand(ctx, where, p as string)
      .split(/[\s,]+/)
      .filter(Boolean);
    if (named.length === 0) throw problem(ctx, `${where} names no scope: give at least one, or leave scope out`);
    return named;
  });
  return scopes.join(" ");
}

function auth(ctx: Context, path: string, value: unknown): Access {
  if (value === "none") return { auth: "none" };
  if (!isEntry(value)) throw problem(ctx, `${path} must be ${AUTH_FORMS}`);
  if (value.bearer !== undefined) {
    knownKeys(ctx, path, value, ["bearer"]);
    const authorization = `Bearer ${text(ctx, `${path}.bearer`, value.bearer)}`;
    if (upstreamHeaderProblem("Authorization", authorization, { authorization: true }))
      throw problem(ctx, `${path}.bearer holds a line break, a control character or a character beyond Latin-1`);
    return { auth: "static", credentials: Object.freeze({ authorization }) };
  }
  knownKeys(ctx, path, value, ["header", "value"]);
  if (value.header === undefined || value.value === undefined) throw problem(ctx, `${path} must be ${AUTH_FORMS}`);
  const name = text(ctx, `${path}.header`, value.header);
  const credential = text(ctx, `${path}.value`, value.value);
  if (upstreamHeaderProblem(name, "", { authorization: true }))
    throw problem(
      ctx,
      `${path}.header is not a header the gateway can send: give a name such as X-API-Key (not Host, Content-Length, a hop-by-hop header or an identity header such as X-Forwarded-User)`,
    );
  if (upstreamHeaderProblem(name, credential, { authorization: true }))
    throw problem(ctx, `${path}.value holds a line break, a control character or a character beyond Latin-1`);
  return { auth: "static", credentials: Object.freeze({ [name.toLowerCase()]: credential }) };
}

/**
 * `headers.Authorization`, as mcpServers files carry a fixed credential: the upstream's static
 * credential, for an entry that says nothing else about how to reach it.
 */
function headerCredential(ctx: Context, path: string, access: Access, authorization: string): Access {
  if (access.auth !== "detect")
    throw problem(
      ctx,
      `${path}.headers.Authorization and ${path}.${access.auth === "oauth" ? "oauth" : "auth"} do not go together: the upstream gets one Authorization, either the user's token ("oauth") or a fixed credential (this header or "auth")`,
    );
  return { auth: "static", credentials: Object.freeze({ authorization }) };
}

function fixedHeaders(ctx: Context, path: string, value: unknown, credentials: UpstreamConfig["credentials"]): Record<string, string> {
  if (value === undefined) return {};
  if (!isEntry(value)) throw problem(ctx, `${path} must be an object of header names and string values, e.g. { "X-MCP-Readonly": "true" }`);
  const headers = new Map<string, string>();
  for (const [name, raw] of Object.entries(value)) {
    const where = member(path, name);
    if (typeof raw !== "string") throw problem(ctx, `${where} must be a string`);
    const header = expand(ctx, where, raw);
    const why = upstreamHeaderProblem(name, header, { authorization: true });
    if (why) throw problem(ctx, `${path}: ${why}`);
    const lower = name.toLowerCase();
    if (headers.has(lower)) throw problem(ctx, `${path} gives ${name} twice (header names ignore case)`);
    if (credentials?.[lower] !== undefined) throw problem(ctx, `${where} is the header "auth" sends: give it once, in "auth"`);
    headers.set(lower, header);
  }
  return Object.fromEntries(headers);
}

function identityHeaders(ctx: Context, serverPath: string, value: unknown, url: URL, rawUrl: string): boolean {
  const path = `${serverPath}.identityHeaders`;
  if (value === undefined || value === false) return false;
  if (isEntry(value) && Object.keys(value).length === 1 && value.thirdParty === true) return true;
  if (value !== true) throw problem(ctx, `${path} must be true, false or { "thirdParty": true }`);
  if (isFirstPartyHost(url.hostname, ctx.publicUrl)) return true;
  const host = rawUrl.includes("${") ? `the host of ${serverPath}.url` : url.hostname;
  throw problem(
    ctx,
    `${path}: ${host} is a third-party host: identity headers go only to first-party hosts unless you write "identityHeaders": { "thirdParty": true }`,
  );
}

function allowList(ctx: Context, path: string, value: unknown): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value) || value.length > MAX_ALLOWED) throw problem(ctx, `${path} must be an array of at most ${MAX_ALLOWED} names`);
  return Object.freeze(value.map((entry, i) => text(ctx, `${path}[${i}]`, entry)));
}

function title(ctx: Context, path: string, value: unknown): string {
  const shown = typeof value === "string" ? expand(ctx, path, value) : "";
  if (shown.length < 1 || shown.length > MAX_TITLE) throw problem(ctx, `${path} must be a string of 1 to ${MAX_TITLE} characters`);
  return shown;
}

function httpUrl(ctx: Context, path: string, value: unknown): URL {
  const raw = text(ctx, path, value);
  const url = URL.canParse(raw) && !/\s/.test(raw) ? new URL(raw) : undefined;
  if (url?.protocol !== "http:" && url?.protocol !== "https:") throw problem(ctx, `${path} must be an absolute http(s) URL such as https://example.com/mcp`);
  if (url.href.includes("#")) throw problem(ctx, `${path} must not have a #fragment`);
  return url;
}

/** A non-empty string, `${VAR}` expanded. */
function text(ctx: Context, path: string, value: unknown): string {
  if (typeof value !== "string" || value === "") throw problem(ctx, `${path} must be a non-empty string`);
  return expand(ctx, path, value);
}

/** `${NAME}` from the environment, `$${` as a literal `${`; one pass, so an expanded value is never expanded again. */
function expand(ctx: Context, path: string, raw: string): string {
  return raw.replace(REFERENCE, (match, name: string | undefined) => {
    if (match === "$${") return "${";
    if (name === undefined) throw problem(ctx, `${path} has a "\${" that starts no variable: write \${NAME} (letters, digits, _), or $\${ for a literal "\${"`);
    const value = ctx.env[name];
    if (!value) throw problem(ctx, `${path} needs ${name}, which is ${value === undefined ? "not set" : "empty"}: set it in the environment or the env file`);
    return value;
  });
}

/** A host that belongs to the operator: identity headers may go there without `thirdParty` (docs/upstreams.md). */
export function isFirstPartyHost(hostname: string, publicUrl: string): boolean {
  const host = bareHost(hostname);
  const publicHost = bareHost(new URL(publicUrl).hostname);
  if (isSiteLocalHost(host) || host === publicHost) return true;
  if (isIP(host) !== 0) return false;
  const parent = publicHost.slice(publicHost.indexOf(".") + 1);
  return isIP(publicHost) === 0 && publicHost.includes(".") && parent.includes(".") && (host === parent || host.endsWith(`.${parent}`));
}

/** Reachable only inside a site: loopback, a private, link-local or unique-local address, a single-label name, or a local suffix. */
export function isSiteLocalHost(hostname: string): boolean {
  const host = bareHost(hostname);
  const family = isIP(host);
  if (isLoopbackHost(host)) return true;
  if (family !== 0) return PRIVATE_RANGES.check(host, family === 4 ? "ipv4" : "ipv6");
  return !host.includes(".") || LOCAL_SUFFIXES.some((suffix) => host.endsWith(suffix));
}

/** Lowercase, without IPv6 brackets or the root's trailing dot. */
const bareHost = (hostname: string): string =>
  hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "");

function parseJson(ctx: Context, text: string): unknown {
  const body = text.replace(/^\uFEFF/, "");
  try {
    return JSON.parse(body);
  } catch (error) {
    const { message } = error as Error;
    const at = jsonErrorPosition(body, message);
    const where = at === undefined ? "" : ` at line ${body.slice(0, at).split("\n").length}, column ${at - body.lastIndexOf("\n", at - 1)}`;
    // V8 quotes the text around an unexpected token, which may be a secret
    const reason = /^Unexpected token|"/.test(message) ? "unexpected character" : uncapitalise(message.replace(/( in JSON)? at position.*$/s, ""));
    throw problem(ctx, `not valid JSON${where}: ${reason}`);
  }
}

/** Where JSON.parse gave up; for an unexpected token V8 names no position, so find the shortest prefix that fails the same way. */
function jsonErrorPosition(text: string, message: string): number | undefined {
  const at = / at position (\d+)/.exec(message);
  if (at) return Number(at[1]);
  if (message.startsWith("Unexpected end")) return text.length;
  if (!message.startsWith("Unexpected token")) return undefined;
  let [low, high] = [1, text.length];
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (failsOnToken(text.slice(0, middle))) high = middle;
    else low = middle + 1;
  }
  return low - 1;
}

function failsOnToken(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch (error) {
    return (error as Error).message.startsWith("Unexpected token");
  }
}

function knownKeys(ctx: Context, where: string, entry: Entry, keys: readonly string[]): void {
  const unknown = Object.keys(entry).find((key) => !keys.includes(key));
  if (unknown !== undefined) throw problem(ctx, `${where}: unknown key ${quote(unknown)} (the keys are ${keys.join(", ")})`);
}

const isEntry = (value: unknown): value is Entry => typeof value === "object" && value !== null && !Array.isArray(value);

const uncapitalise = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

/** `path.key`, quoting a key that is not a plain word. */
const member = (path: string, key: string): string => `${path}.${/^[A-Za-z0-9_-]+$/.test(key) ? key : quote(key)}`;

/** A key as JSON, cut short: keys are never secret, but may be long. */
const quote = (key: string): string => JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);

const problem = (ctx: Context, message: string): ConfigError => new ConfigError(`${ctx.source}: ${message}`);
