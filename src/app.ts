import type { RequestListener } from "node:http";
import { fileURLToPath } from "node:url";
import cors from "cors";
import express, { type Express, type RequestHandler } from "express";
import session from "express-session";
import type { Dispatcher } from "undici";
import { RefreshFlights } from "./as/refresh.js";
import { withGatewayOrigins } from "./as/clients.js";
import { gatewayUrls } from "./as/metadata.js";
import type { AsDeps } from "./as/routes.js";
import type { Clock } from "./clock.js";
import type { Config } from "./config/types.js";
import { randomToken, type Keys } from "./crypto.js";
import { errorMiddleware, OAuthError } from "./errors.js";
import { accessLog, type Logger } from "./log.js";
import { cookieName, servedOverTls } from "./login/browser.js";
import { addressSubject } from "./ratelimit.js";
import type { McpPolicy } from "./rs/policy.js";
import type { Relays } from "./rs/relays.js";
import { mcpEndpoint } from "./rs/routes.js";
import { McpSessions } from "./rs/sessions.js";
import { clientAddress, StreamLimits } from "./rs/streams.js";
import { routeTable, type RouteMiddleware } from "./routes.js";
import { StoreSessions } from "./store/sessions.js";
import type { Store } from "./store/store.js";
import type { RevocationView } from "./grants/revocations.js";
import { VerifiedTokens } from "./grants/validate.js";
import type { StdioProcesses } from "./stdio/child.js";
import type { Mounts } from "./upstream/mounts.js";

export interface AppDeps {
  config: Readonly<Config>;
  store: Store;
  keys: Keys;
  mounts: Mounts;
  dispatcher: Dispatcher;
  /** The /mcp exchanges in flight (heartbeats, shutdown). */
  relays: Relays;
  /** The processes of the local (stdio) servers (src/stdio/pool.ts). */
  stdio: StdioProcesses;
  /** Revoked grants held in this process: /mcp checks them without a store read. */
  revocations: RevocationView;
  clock: Clock;
  log: Logger;
  /** Which /mcp calls are relayed (src/rs/policy.ts); absent: every authenticated one. */
  policy?: McpPolicy;
}

const SESSION_TTL = 8 * 3600;
const viewsDir = fileURLToPath(new URL("../views", import.meta.url));
const MCP_CORS = {
  origin: "*",
  methods: ["GET", "POST", "DELETE", "OPTIONS"],
  exposedHeaders: ["Mcp-Session-Id", "WWW-Authenticate", "MCP-Protocol-Version"],
  maxAge: 86400,
};

/** The gateway: /mcp (the hot path) on plain node:http, every other route (src/routes.ts) on Express. No global body parser: /mcp streams. */
export function createApp(deps: AppDeps): RequestListener {
  const { config, store, keys, mounts, clock, log } = deps;
  const urls = gatewayUrls(config.publicUrl);
  const tokenContext = { keys, store, clock, issuer: urls.issuer, accessTokenTtl: config.accessTokenTtl, refreshTokenTtl: config.refreshTokenTtl };
  const as: AsDeps = {
    ...tokenContext,
    log,
    urls,
    mounts,
    refreshes: new RefreshFlights(),
    registration: withGatewayOrigins(config.registration, mounts.origins),
    metadataFetch: { allowPrivate: config.allowPrivateFetch },
    gatewayUsers: new Set(config.login.users.map((u) => u.username)),
    grantLifetime: config.grantLifetime,
  };
  const login = { store, clock, keys, urls, mounts, login: config.login, log };

  const app = express();
  app.disable("x-powered-by");
  app.set("view engine", "ejs");
  app.set("views", viewsDir);
  app.set("query parser", "simple");
  app.set("trust proxy", config.trustProxy);
  app.use(accessLog(log));
  // In a Router of its own, an OPTIONS no row answers gets Express's automatic 200 with `Allow`, before the app's 404
  const routes = express.Router();
  for (const [method, path, ...handlers] of routeTable({ as, login, store }, routeMiddleware(deps, servedOverTls(urls.issuer))))
    routes[method](path, ...handlers);
  app.use(routes);
  app.use(() => {
    throw new OAuthError("invalid_request", "No such endpoint.", 404);
  });
  app.use(errorMiddleware(log));

  // One MCP endpoint per upstream, each its own protected resource: a token for one is refused by the others
  const shared = {
    ...tokenContext,
    verified: new VerifiedTokens(),
    revocations: deps.revocations,
    origins: mounts.origins,
    dispatcher: deps.dispatcher,
    upstreamTimeoutMs: config.proxy.upstreamTimeout * 1000,
    relays: deps.relays,
    sessions: new McpSessions(store, clock, config.refreshTokenTtl),
    streams: new StreamLimits(config.proxy.maxStreamsPerGrant, config.proxy.maxStreamsPerAddress),
    clientAddress: addressOf(app),
    log,
    publicUrl: config.publicUrl,
    allowedOrigins: config.allowedOrigins,
    policy: deps.policy,
    stdio: deps.stdio,
  };
  const endpoints = new Map(mounts.all.map((mount) => [mount, mcpEndpoint(mount, shared)]));
  return (req, res) => {
    const mount = mounts.byPath(req.url);
    if (mount) endpoints.get(mount)!(req, res);
    else app(req, res);
  };
}

/** The client's address on /mcp as Express has it for the other routes (`--trust-proxy`). */
function addressOf(app: Express) {
  const trust = app.get("trust proxy fn") as (address: string, hop: number) => boolean;
  return (req: Parameters<typeof clientAddress>[0]) => addressSubject(clientAddress(req, trust));
}

/** The middleware routes declare (src/routes.ts). */
function routeMiddleware({ keys, store }: AppDeps, https: boolean): RouteMiddleware {
  const sessions = session({
    name: cookieName("mcp-gateway", https),
    secret: keys.all.map((k) => k.cookie),
    store: new StoreSessions(store, SESSION_TTL),
    resave: false,
    saveUninitialized: false,
    proxy: https,
    cookie: { httpOnly: true, sameSite: "lax", secure: https, path: "/", maxAge: SESSION_TTL * 1000 },
  });
  // An https public URL means browsers reach these pages over TLS, whatever the last hop says: always a Secure cookie
  const overTls: RequestHandler = (req, _res, next) => {
    if (https) req.headers["x-forwarded-proto"] = "https";
    next();
  };
  return {
    cors: cors(MCP_CORS),
    configurationCors: cors({ origin: "*", methods: ["GET", "PUT", "DELETE"], exposedHeaders: ["WWW-Authenticate"], maxAge: 86400 }),
    page: pageHeaders(),
    session: [overTls, sessions],
  };
}

/** Pages humans see: strict CSP with a per-response nonce, no framing, no referrer, no caching. */
function pageHeaders(): RequestHandler {
  return (_req, res, next) => {
    const nonce = randomToken(16);
    res.locals.page = true;
    res.locals.nonce = nonce;
    res.set({
      "Content-Security-Policy": `default-src 'none'; style-src 'nonce-${nonce}'; frame-ancestors 'none'; base-uri 'none'`,
      "X-Frame-Options": "DENY",
      "Referrer-Policy": "same-origin",
      "X-Content-Type-Options": "nosniff",
      "Cache-Control": "no-store",
    });
    next();
  };
}
