import type { RequestListener } from "node:http";
import { fileURLToPath } from "node:url";
import cors from "cors";
import express, { type RequestHandler } from "express";
import session from "express-session";
import type { Dispatcher } from "undici";
import { asRoutes } from "./as/routes.js";
import { RefreshFlights } from "./as/refresh.js";
import { withGatewayOrigins } from "./as/clients.js";
import { gatewayUrls } from "./as/metadata.js";
import type { Clock } from "./clock.js";
import type { Config } from "./config/types.js";
import { randomToken, type Keys } from "./crypto.js";
import { errorMiddleware, OAuthError } from "./errors.js";
import { accessLog, type Logger } from "./log.js";
import { authorizeRoutes } from "./login/authorize-route.js";
import { cookieName, servedOverTls } from "./login/browser.js";
import { loginRoutes } from "./login/routes.js";
import { plainBodiesOnly, PARSED_BODY_PATHS } from "./limits.js";
import { mcpEndpoint } from "./rs/routes.js";
import type { Relays } from "./rs/relays.js";
import { McpSessions } from "./rs/sessions.js";
import { addressSubject } from "./ratelimit.js";
import { clientAddress, StreamLimits } from "./rs/streams.js";
import { StoreSessions } from "./store/sessions.js";
import { VerifiedTokens } from "./grants/validate.js";
import { storeKey, type Store } from "./store/store.js";
import { typedSlash, type Mounts } from "./upstream/mounts.js";

export interface AppDeps {
  config: Readonly<Config>;
  store: Store;
  keys: Keys;
  mounts: Mounts;
  dispatcher: Dispatcher;
  /** The /mcp exchanges in flight (heartbeats, shutdown). */
  relays: Relays;
  clock: Clock;
  log: Logger;
}

const SESSION_TTL = 8 * 3600;
const viewsDir = fileURLToPath(new URL("../views", import.meta.url));

/** The whole route table: /mcp (the hot path) on plain node:http, the rest on Express. No global body parser: /mcp streams. */
export function createApp(deps: AppDeps): RequestListener {
  const { config, store, keys, mounts, clock, log } = deps;
  const urls = gatewayUrls(config.publicUrl);
  const https = servedOverTls(urls.issuer);
  const tokenContext = { keys, store, clock, issuer: urls.issuer, accessTokenTtl: config.accessTokenTtl, refreshTokenTtl: config.refreshTokenTtl };

  const app = express();
  app.disable("x-powered-by");
  app.set("view engine", "ejs");
  app.set("views", viewsDir);
  app.set("query parser", "simple");
  app.set("trust proxy", config.trustProxy);
  app.use(accessLog(log));

  const corsFor = cors({
    origin: "*",
    methods: ["GET", "POST", "DELETE", "OPTIONS"],
    exposedHeaders: ["Mcp-Session-Id", "WWW-Authenticate", "MCP-Protocol-Version"],
    maxAge: 86400,
  });
  const page = pageHeaders();
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

  app.use(PARSED_BODY_PATHS, plainBodiesOnly);
  // /authorize reads the signed-in user (MC25) but never creates a session: saveUninitialized is false
  app.use("/authorize", overTls, sessions);
  const asDeps = {
    ...tokenContext,
    log,
    urls,
    mounts,
    refreshes: new RefreshFlights(),
    cors: corsFor,
    page,
    registration: withGatewayOrigins(config.registration, mounts.origins),
    metadataFetch: { allowPrivate: config.allowPrivateFetch },
    gatewayUsers: new Set(config.login.users.map((u) => u.username)),
    grantLifetime: config.grantLifetime,
  };
  app.use(asRoutes(asDeps));
  app.use(authorizeRoutes(asDeps));
  app.use(["/login", "/upstream/callback"], page, overTls, sessions);
  app.use(loginRoutes({ store, clock, keys, urls, mounts, login: config.login, log }));

  // liveness answers without the store; readiness needs one round trip to it (503 while it is away)
  app.get("/healthz", (_req, res) => void res.json({ status: "ok" }));
  app.get("/readyz", async (_req, res) => {
    await store.get(storeKey.masterSecret());
    res.json({ status: "ready" });
  });
  app.use(() => {
    throw new OAuthError("invalid_request", "No such endpoint.", 404);
  });
  app.use(errorMiddleware(log));

  // One MCP endpoint per upstream, each its own protected resource: a token for one is refused by the others
  const verified = new VerifiedTokens();
  const mcpSessions = new McpSessions(store, clock, config.refreshTokenTtl);
  const streams = new StreamLimits(config.proxy.maxStreamsPerGrant, config.proxy.maxStreamsPerAddress);
  const trust = app.get("trust proxy fn") as (address: string, hop: number) => boolean;
  const endpoints = new Map(
    mounts.all.map((mount) => [
      mount,
      mcpEndpoint({
        ...tokenContext,
        verified,
        resource: mount.resource,
        resourceMetadataUrl: (request) => mount.metadataUrlAt(mounts.origins.forHost(request.headers.host), typedSlash(request.url)),
        scopes: () => mount.advertisedScopes(),
        dispatcher: deps.dispatcher,
        target: mount.config.resource,
        upstreamHeaders: { ...mount.config.headers, ...(mount.config.auth === "static" ? mount.config.credentials : {}) },
        identityHeaders: mount.config.identityHeaders,
        userTokens: mount.config.auth !== "static" && mount.config.auth !== "none",
        upstreamTimeoutMs: config.proxy.upstreamTimeout * 1000,
        relays: deps.relays,
        sessions: mcpSessions,
        streams,
        clientAddress: (req) => addressSubject(clientAddress(req, trust)),
        log,
        publicUrl: config.publicUrl,
        allowedOrigins: config.allowedOrigins,
      }),
    ]),
  );
  return (req, res) => {
    const mount = mounts.byPath(req.url);
    if (mount) endpoints.get(mount)!(req, res);
    else app(req, res);
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
