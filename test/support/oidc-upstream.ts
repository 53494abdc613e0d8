import { generateKeyPairSync, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import express, { type Request, type Response } from "express";
// @ts-expect-error oidc-provider ships no type declarations (they live in @types/oidc-provider, not installed); typed below
import OidcProvider, { errors as oidcErrors } from "oidc-provider";

/**
 * A second, independent upstream: panva's certified `oidc-provider` as the authorization server
 * (dynamic registration, PKCE S256, RFC 8707 resource indicators, rotating refresh tokens,
 * introspection) and an MCP SDK server with sessions that validates bearer tokens by RFC 7662
 * introspection. Only the human is automated: `/interaction/:uid` answers the provider's login and
 * consent prompts with `interactionFinished`, so the browser's redirect chain completes.
 */
export interface OidcUpstream {
  issuer: string;
  /** `http://127.0.0.1:<port>/mcp`, the RFC 9728 `resource`. */
  mcpUrl: string;
  /** The end-user every interaction signs in as. */
  account: OidcAccount & { sub: string };
  /** A client registered statically in the provider for a gateway on a loopback address. */
  preRegistered: { client_id: string; client_secret: string; authorizationEndpoint: string; tokenEndpoint: string };
  /** Every request the provider handled, in order (interaction pages included). */
  providerRequests: ProviderRequest[];
  /** Prompts answered on the user's behalf, in order. */
  interactions: string[];
  /** Successful token endpoint grants, in order. */
  grants: { grantType: string; clientId: string }[];
  /** Clients registered at the provider's registration endpoint. */
  registrations: string[];
  /** What the provider reported as errors (server_error, authorization.error, grant.error...). */
  providerErrors: string[];
  /** Every request the MCP server received, in order. */
  mcpRequests: McpRequest[];
  /** MCP session ids the server opened and closed. */
  sessions: { opened: string[]; closed: string[] };
  /** The user withdraws every consent at the provider: its tokens stop introspecting as active. */
  revokeGrants(): Promise<void>;
  close(): Promise<void>;
}

export interface ProviderRequest {
  method: string;
  path: string;
  query: Record<string, unknown>;
  authorization?: string;
  body?: Record<string, unknown>;
  /** The token endpoint's JSON answer. */
  response?: Record<string, unknown>;
}

export interface McpRequest {
  method: string;
  path: string;
  authorization?: string;
  sessionId?: string;
  /** The `X-Forwarded-*` headers it carried, when it carried any. */
  forwarded?: Record<string, string>;
  rpcMethod?: string;
  /** What introspection said about the bearer token, when there was one. */
  token?: Introspection;
}

interface Introspection {
  active: boolean;
  sub?: string;
  client_id?: string;
  aud?: string | string[];
  scope?: string;
  exp?: number;
  token_type?: string;
}

export const ACCOUNT_ID = "oidc-user-1";
export const MCP_SCOPE = "mcp:tools";
/** OIDC Core §5.4: the claims each scope asks for. */
const SCOPE_CLAIMS = { openid: ["sub"], email: ["email", "email_verified"], profile: ["preferred_username"] };

/** The one end-user of the provider; without `account`, only `sub` = ACCOUNT_ID. */
export interface OidcAccount {
  sub?: string;
  email?: string;
  email_verified?: boolean;
  preferred_username?: string;
}

export interface OidcUpstreamOptions {
  accessTokenTtl?: number;
  account?: OidcAccount;
  /** More clients registered statically in the provider (oidc-provider client metadata), e.g. a `private_key_jwt` one with its `jwks`. */
  clients?: Record<string, unknown>[];
}

const RESOURCE_SERVER = { client_id: "mcp-resource-server", client_secret: "rs-secret-that-only-the-mcp-server-knows" };
const GATEWAY_CLIENT = { client_id: "gateway-static", client_secret: "static-secret-of-the-pre-registered-gateway" };

export async function startOidcUpstream(opts: OidcUpstreamOptions = {}): Promise<OidcUpstream> {
  const accessTokenTtl = opts.accessTokenTtl ?? 300;
  const account = { ...opts.account, sub: opts.account?.sub ?? ACCOUNT_ID };
  const providerServer = await listen();
  const mcpServer = await listen();
  const issuer = origin(providerServer);
  const mcpUrl = `${origin(mcpServer)}/mcp`;
  const record = {
    providerRequests: [] as ProviderRequest[],
    interactions: [] as string[],
    grants: [] as { grantType: string; clientId: string }[],
    registrations: [] as string[],
    providerErrors: [] as string[],
    mcpRequests: [] as McpRequest[],
    sessions: { opened: [] as string[], closed: [] as string[] },
  };
  const grantIds: string[] = [];

  const provider = new (OidcProvider as ProviderConstructor)(issuer, {
    clients: [
      { ...RESOURCE_SERVER, redirect_uris: [], response_types: [], grant_types: [] },
      {
        ...GATEWAY_CLIENT,
        // RFC 8252 §7.3: a loopback redirect URI of a native client matches on any port, so the test
        // gateway (port 0) can be registered before it listens.
        application_type: "native",
        redirect_uris: ["http://127.0.0.1/upstream/callback"],
        grant_types: ["authorization_code", "refresh_token"],
        token_endpoint_auth_method: "client_secret_post",
      },
      ...(opts.clients ?? []),
    ],
    jwks: { keys: [signingKey()] },
    cookies: { keys: ["oidc-upstream-test-cookie-key"] },
    // OIDC Core §5.4: the provider releases only the claims of the granted scopes (SCOPE_CLAIMS)
    findAccount: async (_ctx: unknown, sub: string) => (sub === account.sub ? { accountId: sub, claims: async () => ({ ...account }) } : undefined),
    claims: SCOPE_CLAIMS,
    scopes: ["openid", "offline_access", ...Object.keys(SCOPE_CLAIMS)],
    pkce: { required: () => true },
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }, source: { kind: string }) =>
      client.grantTypeAllowed("refresh_token") && source.kind === "AuthorizationCode",
    rotateRefreshToken: true,
    ttl: { AccessToken: accessTokenTtl, AuthorizationCode: 60, RefreshToken: 86_400, Grant: 86_400, Session: 86_400, Interaction: 600, IdToken: 600 },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientId: string }) => client.clientId === RESOURCE_SERVER.client_id },
      resourceIndicators: {
        enabled: true,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
          if (indicator !== mcpUrl) throw new (oidcErrors as { InvalidTarget: new () => Error }).InvalidTarget();
          return { scope: MCP_SCOPE, audience: mcpUrl, accessTokenTTL: accessTokenTtl, accessTokenFormat: "opaque" };
        },
      },
    },
  });
  provider.on("registration_create.success", (_ctx, client) => void record.registrations.push(client.clientId));
  provider.on("grant.success", (ctx) => void record.grants.push({ grantType: String(ctx.oidc.params.grant_type), clientId: ctx.oidc.client?.clientId ?? "" }));
  for (const event of ["server_error", "authorization.error", "grant.error", "registration_create.error", "introspection.error"])
    provider.on(event, (_ctx, error) => void record.providerErrors.push(`${event}: ${error?.message ?? "?"}`));

  provider.use(async (ctx, next) => {
    const entry: ProviderRequest = {
      method: ctx.method,
      path: ctx.path,
      query: { ...ctx.query },
      ...(ctx.headers.authorization ? { authorization: ctx.headers.authorization } : {}),
    };
    record.providerRequests.push(entry);
    if (/^\/interaction\/[^/]+$/.test(ctx.path)) {
      ctx.respond = false;
      return completeInteraction(provider, ctx.req, ctx.res, { accountId: account.sub, prompts: record.interactions, grantIds });
    }
    await next();
    if (ctx.oidc?.body) entry.body = { ...ctx.oidc.body };
    if (ctx.path === "/token" && typeof ctx.body === "object" && ctx.body !== null) entry.response = { ...(ctx.body as Record<string, unknown>) };
  });
  providerServer.on("request", provider.callback());

  const introspect = async (token: string): Promise<Introspection> => {
    const response = await fetch(provider.urlFor("introspection"), {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${RESOURCE_SERVER.client_id}:${RESOURCE_SERVER.client_secret}`).toString("base64")}`,
      },
      body: new URLSearchParams({ token }).toString(),
    });
    if (!response.ok) throw new Error(`introspection failed: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as Introspection;
  };
  const mcp = mcpApp({ issuer, mcpUrl, introspect, requests: record.mcpRequests, sessions: record.sessions });
  mcpServer.on("request", mcp.app);

  return {
    issuer,
    mcpUrl,
    account,
    preRegistered: { ...GATEWAY_CLIENT, authorizationEndpoint: provider.urlFor("authorization"), tokenEndpoint: provider.urlFor("token") },
    ...record,
    revokeGrants: async () => {
      for (const id of grantIds) await (await provider.Grant.find(id))?.destroy();
    },
    close: async () => {
      await mcp.close();
      await Promise.all([providerServer, mcpServer].map(stop));
    },
  };
}

/** The human: sign in as the one account, then approve exactly what the client asked for. */
async function completeInteraction(
  provider: Provider,
  req: IncomingMessage,
  res: ServerResponse,
  answered: { accountId: string; prompts: string[]; grantIds: string[] },
): Promise<void> {
  const interaction = await provider.interactionDetails(req, res);
  const { prompt, params, session } = interaction;
  answered.prompts.push(prompt.name);
  if (prompt.name === "login") return provider.interactionFinished(req, res, { login: { accountId: answered.accountId } }, { mergeWithLastSubmission: false });
  if (prompt.name !== "consent") throw new Error(`unexpected prompt ${prompt.name}`);
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId: session!.accountId, clientId: params.client_id });
  if (!grant) throw new Error(`grant ${interaction.grantId} vanished`);
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(" "));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(" "));
  const grantId = await grant.save();
  answered.grantIds.push(grantId);
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

interface McpAppOptions {
  issuer: string;
  mcpUrl: string;
  introspect(token: string): Promise<Introspection>;
  requests: McpRequest[];
  sessions: { opened: string[]; closed: string[] };
}

/** The MCP server: RFC 9728 metadata, RFC 6750 challenges, introspection, stateful Streamable HTTP sessions. */
function mcpApp(o: McpAppOptions) {
  const path = new URL(o.mcpUrl).pathname;
  const metadataUrl = new URL(`/.well-known/oauth-protected-resource${path}`, o.mcpUrl).href;
  const live = new Map<string, { transport: StreamableHTTPServerTransport; sub: string }>();
  const app = express();

  app.get(`/.well-known/oauth-protected-resource${path}`, (req, res) => {
    o.requests.push({ method: req.method, path: req.path });
    res.json({
      resource: o.mcpUrl,
      authorization_servers: [o.issuer],
      scopes_supported: [MCP_SCOPE],
      bearer_methods_supported: ["header"],
      resource_name: "oidc-provider e2e MCP server",
    });
  });

  app.all(path, express.json(), async (req: Request & { auth?: AuthInfo }, res: Response) => {
    const entry: McpRequest = {
      method: req.method,
      path: req.path,
      ...header(req, "authorization", "authorization"),
      ...header(req, "mcp-session-id", "sessionId"),
    };
    const forwarded = Object.entries(req.headers).filter(([name]) => name.startsWith("x-forwarded-"));
    if (forwarded.length) entry.forwarded = Object.fromEntries(forwarded.map(([name, value]) => [name, String(value)]));
    const body = req.body as { method?: unknown } | undefined;
    if (typeof body?.method === "string") entry.rpcMethod = body.method;
    o.requests.push(entry);

    const bearer = /^Bearer ([\x21-\x7E]+)$/.exec(entry.authorization ?? "")?.[1];
    if (!bearer) return void challenge(res, metadataUrl);
    const token = await o.introspect(bearer);
    entry.token = token;
    const audience = Array.isArray(token.aud) ? token.aud : [token.aud];
    // RFC 8707 / MCP Authorization §Token Handling: only tokens issued for this resource
    if (!token.active || token.token_type !== "Bearer" || !audience.includes(o.mcpUrl) || !token.sub) return void challenge(res, metadataUrl, "invalid_token");
    req.auth = {
      token: bearer,
      clientId: token.client_id ?? "",
      scopes: token.scope?.split(" ") ?? [],
      ...(token.exp ? { expiresAt: token.exp } : {}),
      extra: { sub: token.sub },
    };

    const sessionId = entry.sessionId;
    if (sessionId === undefined) {
      if (req.method !== "POST" || !isInitializeRequest(req.body)) return void res.status(400).json(rpcError("Bad Request: no session; initialize first"));
      const sub = token.sub;
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          live.set(id, { transport, sub });
          o.sessions.opened.push(id);
        },
      });
      transport.onclose = () => {
        if (transport.sessionId && live.delete(transport.sessionId)) o.sessions.closed.push(transport.sessionId);
      };
      await whoamiServer().connect(transport);
      return transport.handleRequest(req, res, req.body);
    }
    const session = live.get(sessionId);
    // A session belongs to the user who opened it.
    if (!session || session.sub !== token.sub) return void res.status(404).json(rpcError("Session not found"));
    return session.transport.handleRequest(req, res, req.body);
  });

  return {
    app,
    close: async () => {
      await Promise.all([...live.values()].map((s) => s.transport.close()));
    },
  };
}

function whoamiServer(): McpServer {
  const server = new McpServer({ name: "oidc-e2e-mcp", version: "1.0.0" });
  server.registerTool("whoami", { description: "Who the access token was issued to, and for which client, scope and session." }, (extra) => ({
    content: [
      {
        type: "text",
        text: JSON.stringify({
          sub: extra.authInfo?.extra?.sub,
          client_id: extra.authInfo?.clientId,
          scope: extra.authInfo?.scopes.join(" "),
          session_id: extra.sessionId,
        }),
      },
    ],
  }));
  return server;
}

function challenge(res: Response, metadataUrl: string, error?: "invalid_token"): void {
  // RFC 9728 §5.1, RFC 6750 §3
  res.set("WWW-Authenticate", `Bearer ${error ? `error="${error}", ` : ""}resource_metadata="${metadataUrl}", scope="${MCP_SCOPE}"`);
  res.status(401).json({ error: error ?? "unauthorized" });
}

const rpcError = (message: string) => ({ jsonrpc: "2.0", id: null, error: { code: -32000, message } });

function header<K extends string>(req: Request, name: string, key: K): Partial<Record<K, string>> {
  const value = req.headers[name];
  return typeof value === "string" ? ({ [key]: value } as Partial<Record<K, string>>) : {};
}

let rsaKey: Record<string, unknown> | undefined;
/** One RS256 key for every provider in this process: ID tokens and signed responses need one. */
function signingKey(): Record<string, unknown> {
  rsaKey ??= { ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }), alg: "RS256", use: "sig", kid: "e2e" };
  return rsaKey;
}

async function listen(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", () => resolve()));
  return server;
}

const origin = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/* The slice of oidc-provider's API used here (the package publishes no types). */

interface ProviderConstructor {
  new (issuer: string, configuration: Record<string, unknown>): Provider;
}

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, unknown>;
  headers: Record<string, string | undefined>;
  req: IncomingMessage;
  res: ServerResponse;
  respond?: boolean;
  body?: unknown;
  oidc?: { body?: Record<string, unknown>; params: Record<string, unknown>; client?: { clientId: string } };
}

interface Interaction {
  prompt: { name: string; details: { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> } };
  params: { client_id: string } & Record<string, unknown>;
  session?: { accountId: string };
  grantId?: string;
}

interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
  destroy(): Promise<void>;
}

interface Provider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  urlFor(route: "authorization" | "token" | "introspection" | "registration"): string;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options: { mergeWithLastSubmission: boolean }): Promise<void>;
  Grant: { new (init: { accountId: string; clientId: string }): Grant; find(id: string): Promise<Grant | undefined> };
  on(event: "registration_create.success", listener: (ctx: KoaContext, client: { clientId: string }) => void): void;
  on(event: "grant.success", listener: (ctx: KoaContext & { oidc: NonNullable<KoaContext["oidc"]> }) => void): void;
  on(event: string, listener: (ctx: KoaContext, error?: Error) => void): void;
}
