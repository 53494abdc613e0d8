import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Gateway } from "../../src/gateway.js";
import type { Store } from "../../src/store/store.js";
import { TestBrowser } from "./browser.js";
import { authorizationRequest, register, REDIRECT_URI } from "./oauth-steps.js";
import { LOGIN, type ServerEntry } from "./config.js";
import { startTestGateway } from "./gateway.js";
import { s256 } from "./pkce.js";

export type AuthMethod = "client_secret_basic" | "client_secret_post" | "none";

/** Every quirk is read on each request, so a test may change one between requests (`upstream.quirks.x = …`). */
export interface PlainAsQuirks {
  /**
   * How a client finds the authorization server: `rfc9728` (MCP 2025-06-18: protected resource metadata
   * naming the issuer `<origin>/oauth`), or the MCP 2025-03-26 fallbacks: `rfc8414-at-origin` (issuer
   * `<origin>`, no RFC 9728 document) and `defaults` (no metadata at all; /authorize, /token, /register).
   */
  discovery: "rfc9728" | "rfc8414-at-origin" | "defaults";
  /** What the token endpoint takes (RFC 6749 §2.3.1, RFC 7591 §2); a registration asking for another is refused. */
  accepts: AuthMethod[];
  /** RFC 8414 `token_endpoint_auth_methods_supported`; `null` leaves the field out. Default: `accepts`. */
  offers?: AuthMethod[] | null;
  /** The RFC 7591 §3.2.1 response: its status, and `client_secret_expires_at` (seconds; "omitted" leaves it out). Default 201, 0. */
  registration: { status: 200 | 201; secretExpiresAt: number | "omitted" };
  /** The `scope` of the MCP endpoint's 401 challenge. */
  challengeScope?: string;
  /** No OAuth at all: the MCP endpoint takes only requests carrying this header value, and refuses others with a bare 401. */
  requireHeader?: { name: string; value: string };
  /** This metadata document answers 200 and its headers, then never ends its body. */
  stall?: "protected-resource" | "authorization-server";
  /** The RFC 9728 document answers this HTTP status instead. */
  resourceMetadataStatus?: number;
  /** The token endpoint answers every request with this RFC 6749 §5.2 error. */
  tokenError?: { status: number; error: string };
  /** `invalid_client` is sent without the `WWW-Authenticate` challenge RFC 6749 §5.2 requires after a Basic attempt, as many servers do. */
  bareInvalidClient?: boolean;
  /**
   * SEP-2352's move: the RFC 9728 metadata names these servers instead of this one (clients use the
   * first), and the MCP endpoint takes their access tokens besides its own. Each lists this `mcpUrl` in its `resources`.
   */
  authorizationServers?: PlainAs[];
  /** RFC 8707 resources this server issues tokens for besides its own `mcpUrl`: the MCP servers that name it. */
  resources?: string[];
  /** The access tokens' `expires_in`, in seconds. Default 3600. */
  expiresIn?: number;
  /** `tools/call` is refused with 403 `insufficient_scope` naming this scope (RFC 6750 §3.1; MCP Authorization §Step-Up Authorization). */
  insufficientScope?: string;
  /** Every RFC 9728 URL (path-inserted and root) answers this status, whatever `discovery` says: a front that refuses those paths. A 3xx points at `/elsewhere`. */
  protectedResourceStatus?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface ClientRecord {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  token_endpoint_auth_method: AuthMethod;
}

export interface PlainAs {
  origin: string;
  /** `<origin>/mcp`: the MCP endpoint and the RFC 8707 resource its tokens are for. */
  mcpUrl: string;
  issuer: string;
  endpoints: { authorize: string; token: string; register: string };
  quirks: PlainAsQuirks;
  /** Every request received, in order, body read in full. */
  requests: RecordedRequest[];
  /** Requests to one path (query aside). */
  to(path: string): RecordedRequest[];
  /** Clients by id: registered (RFC 7591) or added. */
  clients: ReadonlyMap<string, ClientRecord>;
  /** A client registered out of band, as an operator does on the server's console. */
  addClient(client: ClientRecord): void;
  /** Every token this server issued, oldest first. */
  issued: { access: string[]; refresh: string[] };
  /** Whether this server issued `accessToken` and it has not expired: what an MCP server that trusts this one asks. */
  holds(accessToken: string): boolean;
  close(): Promise<void>;
}

/** The end-user every authorization request approves for. */
export const PLAIN_USER = "plain-user";

interface Grant {
  clientId: string;
  scope?: string;
}

/**
 * A small, honest OAuth 2.1 authorization server in front of an MCP endpoint, with the quirks real
 * upstreams have (PlainAsQuirks). Authorization code with PKCE S256 only, single-use codes, RFC 8707
 * `resource` checked, rotating refresh tokens, RFC 7591 registration, RFC 9207 `iss`. /authorize
 * approves at once for PLAIN_USER. The MCP endpoint (the SDK's McpServer, stateless) takes only its
 * own unexpired access tokens; its `whoami` tool names the user the token was issued for.
 */
export async function startPlainAs(quirks: Partial<PlainAsQuirks> = {}, o: { port?: number } = {}): Promise<PlainAs> {
  const q: PlainAsQuirks = { discovery: "rfc9728", accepts: ["client_secret_basic"], registration: { status: 201, secretExpiresAt: 0 }, ...quirks };
  const requests: RecordedRequest[] = [];
  const clients = new Map<string, ClientRecord>();
  const codes = new Map<string, Grant & { redirectUri: string; codeChallenge: string }>();
  const accessTokens = new Map<string, Grant & { expiresAt: number }>();
  const refreshTokens = new Map<string, Grant>();
  const issued = { access: [] as string[], refresh: [] as string[] };

  const http = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    req.once("end", () => {
      const url = new URL(req.url!, origin);
      const recorded = { method: req.method!, path: url.pathname, query: url.searchParams, headers: { ...req.headers }, body };
      requests.push(recorded);
      route(recorded, req, res).catch((error: unknown) => {
        if (!res.headersSent) send(res, 500, { error: "server_error", error_description: String(error) });
      });
    });
  });
  await new Promise<void>((resolve) => http.listen(o.port ?? 0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const mcpUrl = `${origin}/mcp`;
  const prefix = () => (q.discovery === "defaults" ? "" : "/oauth");
  const issuer = () => (q.discovery === "rfc9728" ? `${origin}/oauth` : origin);
  const endpoints = () => ({ authorize: `${origin}${prefix()}/authorize`, token: `${origin}${prefix()}/token`, register: `${origin}${prefix()}/register` });
  const resourceMetadataPath = "/.well-known/oauth-protected-resource/mcp";
  const serves = (resource: string | null) => resource === mcpUrl || (q.resources ?? []).includes(resource ?? "");
  const holds = (token: string) => (accessTokens.get(token)?.expiresAt ?? 0) >= Date.now();
  // RFC 8414 §3.1: inserted between the host and the issuer's path
  const asMetadataPath = () => `/.well-known/oauth-authorization-server${new URL(issuer()).pathname.replace(/^\/$/, "")}`;

  async function route(r: RecordedRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const oauth = !q.requireHeader;
    if (r.path === "/mcp") return mcp(r, req, res);
    if (oauth && q.protectedResourceStatus && [resourceMetadataPath, "/.well-known/oauth-protected-resource"].includes(r.path)) {
      const status = q.protectedResourceStatus;
      return send(res, status, { error: "refused" }, status >= 300 && status < 400 ? { location: `${origin}/elsewhere` } : {});
    }
    if (oauth && q.discovery === "rfc9728" && r.path === resourceMetadataPath) {
      if (q.resourceMetadataStatus) return send(res, q.resourceMetadataStatus, { error: "server_error" });
      if (q.stall === "protected-resource") return stall(res);
      const named = q.authorizationServers?.length ? q.authorizationServers.map((s) => s.issuer) : [issuer()];
      return send(res, 200, { resource: mcpUrl, authorization_servers: named, bearer_methods_supported: ["header"] });
    }
    if (oauth && q.discovery !== "defaults" && r.path === asMetadataPath()) {
      if (q.stall === "authorization-server") return stall(res);
      return send(res, 200, authorizationServerMetadata());
    }
    const at = oauth ? Object.entries(endpoints()).find(([, href]) => new URL(href).pathname === r.path)?.[0] : undefined;
    if (at === "authorize" && r.method === "GET") return authorize(r.query, res);
    if (at === "token" && r.method === "POST") return token(r, res);
    if (at === "register" && r.method === "POST") return register(r.body, res);
    send(res, 404, { error: "not_found" });
  }

  const authorizationServerMetadata = () => {
    const offers = q.offers === undefined ? q.accepts : q.offers;
    return {
      issuer: issuer(),
      authorization_endpoint: endpoints().authorize,
      token_endpoint: endpoints().token,
      registration_endpoint: endpoints().register,
      response_types_supported: ["code"],
      grant_types_supported: ["authorization_code", "refresh_token"],
      code_challenge_methods_supported: ["S256"],
      ...(offers ? { token_endpoint_auth_methods_supported: offers } : {}),
      authorization_response_iss_parameter_supported: true,
    };
  };

  function authorize(p: URLSearchParams, res: ServerResponse): void {
    const client = clients.get(p.get("client_id") ?? "");
    const redirectUri = p.get("redirect_uri") ?? "";
    // RFC 6749 §4.1.2.1: never redirect to an unverified redirect_uri
    if (!client || !client.redirect_uris.includes(redirectUri))
      return send(res, 400, { error: "invalid_request", error_description: "unknown client or redirect_uri" });
    const back = new URL(redirectUri);
    const answer = (params: Record<string, string>) => {
      for (const [k, v] of Object.entries({ ...params, state: p.get("state") ?? "" })) if (v) back.searchParams.set(k, v);
      // RFC 9207 §2: when the metadata says so
      if (q.discovery !== "defaults") back.searchParams.set("iss", issuer());
      res.writeHead(302, { location: back.href }).end();
    };
    if (p.get("response_type") !== "code") return answer({ error: "unsupported_response_type" });
    if (p.get("code_challenge_method") !== "S256" || !p.get("code_challenge"))
      return answer({ error: "invalid_request", error_description: "PKCE S256 required" });
    if (p.has("resource") && !serves(p.get("resource"))) return answer({ error: "invalid_target" });
    const code = randomBytes(16).toString("base64url");
    const scope = p.get("scope") ?? undefined;
    codes.set(code, { clientId: client.client_id, redirectUri, codeChallenge: p.get("code_challenge")!, ...(scope ? { scope } : {}) });
    answer({ code });
  }

  async function token(r: RecordedRequest, res: ServerResponse): Promise<void> {
    if (q.tokenError) return send(res, q.tokenError.status, { error: q.tokenError.error });
    const form = new URLSearchParams(r.body);
    const client = authenticate(r.headers.authorization, form);
    if (typeof client === "string")
      return send(
        res,
        401,
        { error: "invalid_client", error_description: client },
        q.bareInvalidClient ? {} : { "www-authenticate": 'Basic realm="plain-as"' },
      );
    if (form.has("resource") && !serves(form.get("resource"))) return send(res, 400, { error: "invalid_target" });
    let grant: Grant | undefined;
    if (form.get("grant_type") === "authorization_code") {
      const code = codes.get(form.get("code") ?? "");
      codes.delete(form.get("code") ?? ""); // single use
      const verifier = form.get("code_verifier") ?? "";
      const ok = code && code.clientId === client.client_id && code.redirectUri === form.get("redirect_uri") && s256(verifier) === code.codeChallenge;
      if (!ok) return send(res, 400, { error: "invalid_grant" });
      grant = code;
    } else if (form.get("grant_type") === "refresh_token") {
      grant = refreshTokens.get(form.get("refresh_token") ?? "");
      refreshTokens.delete(form.get("refresh_token") ?? ""); // rotated
      if (grant?.clientId !== client.client_id) return send(res, 400, { error: "invalid_grant" });
    } else return send(res, 400, { error: "unsupported_grant_type" });
    const accessToken = randomBytes(24).toString("base64url");
    const refreshToken = randomBytes(24).toString("base64url");
    const kept: Grant = { clientId: grant.clientId, ...(grant.scope ? { scope: grant.scope } : {}) };
    const expiresIn = q.expiresIn ?? 3600;
    accessTokens.set(accessToken, { ...kept, expiresAt: Date.now() + expiresIn * 1000 });
    refreshTokens.set(refreshToken, kept);
    issued.access.push(accessToken);
    issued.refresh.push(refreshToken);
    send(res, 200, {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: expiresIn,
      refresh_token: refreshToken,
      ...(kept.scope ? { scope: kept.scope } : {}),
    });
  }

  /** RFC 6749 §2.3: the client, or why it is refused. One method per request, and the one it registered. */
  function authenticate(authorization: string | undefined, form: URLSearchParams): ClientRecord | string {
    const basic = /^Basic (.+)$/i.exec(authorization ?? "")?.[1];
    if (basic && form.has("client_secret")) return "more than one authentication method";
    let used: AuthMethod = form.has("client_secret") ? "client_secret_post" : "none";
    let [id, secret] = [form.get("client_id") ?? "", form.get("client_secret") ?? undefined];
    if (basic) {
      used = "client_secret_basic";
      // RFC 6749 §2.3.1: each part form-urlencoded before Basic
      const decoded = Buffer.from(basic, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      const decode = (s: string) => decodeURIComponent(s.replaceAll("+", " "));
      [id, secret] = [decode(decoded.slice(0, colon)), decode(decoded.slice(colon + 1))];
    }
    const client = clients.get(id);
    if (!client) return "unknown client";
    if (!q.accepts.includes(used) || client.token_endpoint_auth_method !== used)
      return `this client authenticates with ${client.token_endpoint_auth_method}, not ${used}`;
    if (used !== "none" && !(secret && client.client_secret && equal(secret, client.client_secret))) return "wrong secret";
    return client;
  }

  function register(body: string, res: ServerResponse): void {
    let metadata: { redirect_uris?: unknown; token_endpoint_auth_method?: unknown };
    try {
      metadata = JSON.parse(body) as typeof metadata;
    } catch {
      return send(res, 400, { error: "invalid_client_metadata" });
    }
    const method = (metadata.token_endpoint_auth_method ?? "client_secret_basic") as AuthMethod;
    if (!Array.isArray(metadata.redirect_uris) || !metadata.redirect_uris.every((u) => typeof u === "string"))
      return send(res, 400, { error: "invalid_redirect_uri" });
    // RFC 7591 §3.2.2: a method this server does not take is refused, not silently replaced
    if (!q.accepts.includes(method)) return send(res, 400, { error: "invalid_client_metadata", error_description: `${method} is not supported` });
    const client: ClientRecord = {
      client_id: `dyn-${randomBytes(8).toString("hex")}`,
      ...(method === "none" ? {} : { client_secret: randomBytes(24).toString("base64url") }),
      redirect_uris: metadata.redirect_uris,
      token_endpoint_auth_method: method,
    };
    clients.set(client.client_id, client);
    const { secretExpiresAt } = q.registration;
    const expiry = client.client_secret && secretExpiresAt !== "omitted" ? { client_secret_expires_at: secretExpiresAt } : {};
    send(res, q.registration.status, { ...metadata, ...client, client_id_issued_at: Math.floor(Date.now() / 1000), ...expiry });
  }

  async function mcp(r: RecordedRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let sub: string | undefined;
    if (q.requireHeader) {
      if (req.headers[q.requireHeader.name.toLowerCase()] !== q.requireHeader.value) return send(res, 401, { error: "invalid api key" });
    } else {
      const presented = /^Bearer (.+)$/.exec(r.headers.authorization ?? "")?.[1] ?? "";
      // RFC 6750 §3, RFC 9728 §5.1
      const challenge = (scope: string | undefined, error?: string) => {
        const params = [
          ...(q.discovery === "rfc9728" ? [`resource_metadata="${origin}${resourceMetadataPath}"`] : []),
          ...(scope ? [`scope="${scope}"`] : []),
          ...(error ? [`error="${error}"`] : []),
        ];
        return { "www-authenticate": `Bearer${params.length ? ` ${params.join(", ")}` : ""}` };
      };
      if (!holds(presented) && !q.authorizationServers?.some((s) => s.holds(presented)))
        return send(res, 401, { error: "invalid_token" }, challenge(q.challengeScope, presented ? "invalid_token" : undefined));
      if (q.insufficientScope && r.method === "POST" && rpcMethod(r.body) === "tools/call")
        return send(res, 403, { error: "insufficient_scope" }, challenge(q.insufficientScope, "insufficient_scope"));
      sub = PLAIN_USER;
    }
    if (r.method !== "POST") return void res.writeHead(405, { allow: "POST" }).end();
    const server = new McpServer({ name: "plain-as-mcp", version: "1.0.0" });
    server.registerTool("whoami", { description: "The user this request's access token was issued for, or anonymous." }, () => ({
      content: [{ type: "text", text: sub ?? "anonymous" }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.once("close", () => void server.close());
    await server.connect(transport);
    await transport.handleRequest(req, res, JSON.parse(r.body) as unknown);
  }

  return {
    origin,
    mcpUrl,
    get issuer() {
      return issuer();
    },
    get endpoints() {
      return endpoints();
    },
    quirks: q,
    requests,
    to: (path) => requests.filter((r) => r.path === path),
    clients,
    addClient: (client) => void clients.set(client.client_id, client),
    issued,
    holds,
    close: async () => {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers }).end(JSON.stringify(body));
}

/** Headers and the start of a JSON document, and then nothing, for ever. */
function stall(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "application/json" }).write('{"resource":');
}

function rpcMethod(body: string): unknown {
  try {
    return (JSON.parse(body) as { method?: unknown }).method;
  } catch {
    return undefined;
  }
}

function equal(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface GatewayInFront {
  gateway: Gateway;
  /** `<public-url>/mcp/<name>` */
  url(name: string): string;
  /** `<public-url>/upstream/callback/<name>`: the redirect URI the gateway registers upstream. */
  callback(name: string): string;
  /**
   * One sign-in by hand, as a client would start it: a public client registered at the gateway, its
   * authorization request for `/mcp/<name>`, the browser through the gateway's login and the upstream.
   */
  signIn(name: string): Promise<{ end: Awaited<ReturnType<TestBrowser["walk"]>>; browser: TestBrowser; state: string }>;
  close(): Promise<void>;
}

/**
 * A gateway serving `servers` as its config file's `mcpServers`, on an ephemeral port with a memory store; users sign in with LOGIN.
 * A restart: the same `port` and `store` as a gateway closed before (the store holds the master secret, grants and registrations).
 */
export async function startGatewayInFront(
  servers: Record<string, ServerEntry>,
  env: Record<string, string> = {},
  o: { port?: number; store?: Store } = {},
): Promise<GatewayInFront> {
  const gateway = await startTestGateway({ mcpServers: servers, env, ...(o.port ? { port: o.port } : {}), ...(o.store ? { store: o.store } : {}) });
  const base = gateway.publicUrl;
  return {
    gateway,
    url: (name) => `${base}/mcp/${name}`,
    callback: (name) => `${base}/upstream/callback/${name}`,
    signIn: async (name) => {
      const { client_id } = await register(base);
      const { url, state } = authorizationRequest(base, client_id, { resource: `${base}/mcp/${name}` });
      const browser = new TestBrowser();
      return { end: await browser.walk(url, { redirectUri: REDIRECT_URI, ...LOGIN }), browser, state };
    },
    close: () => gateway.close(),
  };
}
