import type { RequestHandler } from "express";
import { asHandlers, type AsDeps } from "./as/routes.js";
import { formBody, jsonBody, plainBodiesOnly as plain, rateLimited } from "./limits.js";
import { authorizeHandler } from "./login/authorize-route.js";
import type { LoginDeps } from "./login/flow.js";
import { deviceHandlers } from "./login/device.js";
import { loginHandlers } from "./login/routes.js";
import { issuerMetadataPaths, PATHS } from "./paths.js";
import { RATE_RULES } from "./ratelimit.js";
import { storeKey, type Store } from "./store/store.js";
import type { Mount } from "./upstream/mounts.js";
import { callbackHandler, clientMetadataHandler } from "./upstream/routes.js";

export type Method = "use" | "get" | "post" | "put" | "delete" | "options";
export type Route = [method: Method, path: string, ...handlers: RequestHandler[]];

/** What routes declare besides their handler. */
export interface RouteMiddleware {
  /** CORS for endpoints browser-based clients call (never /authorize: RFC 9700 §2.6). */
  cors: RequestHandler;
  /** RFC 7592 §2: the client configuration endpoint's methods. */
  configurationCors: RequestHandler;
  /** Pages humans see (CSP, no framing, no caching), and errors as HTML pages. */
  page: RequestHandler;
  /** The browser's session, over TLS whenever the public URL is https. */
  session: RequestHandler[];
}

export interface RouteDeps {
  as: AsDeps;
  login: LoginDeps;
  store: Store;
}

/**
 * Every route but /mcp (src/app.ts: the hot path, on plain node:http), in the order Express tries them,
 * each with its middleware in the order it runs. Bodies are parsed only where declared, after plainBodiesOnly (HI2).
 */
export function routeTable({ as, login, store }: RouteDeps, { cors, configurationCors, page, session }: RouteMiddleware): Route[] {
  const { mounts } = as;
  const h = asHandlers(as);
  const screen = loginHandlers(login);
  const device = deviceHandlers(login);
  const form = formBody(50);
  const loginForm = formBody(20);
  const issuers = mounts.all.filter((m) => m !== mounts.single);
  const withCors = (path: string, handler: RequestHandler): Route[] => [
    ["options", path, cors],
    ["get", path, cors, handler],
  ];
  return [
    // RFC 9728 §3.1: each upstream's metadata at its path-inserted URL; the root one only for the flags' single upstream
    ...mounts.all.flatMap((m) => withCors(new URL(m.metadataUrl).pathname, h.protectedResourceMetadata(m))),
    ...(mounts.single ? withCors(PATHS.protectedResourceMetadata, h.protectedResourceMetadata(mounts.single)) : []),
    ...[PATHS.authorizationServerMetadata, PATHS.openidConfiguration].flatMap((path) => withCors(path, h.authorizationServerMetadata())),
    // Each upstream of a config file is also an issuer of its own, at its MCP URL (RFC 8414 §3.1, OpenID Connect Discovery §4)
    ...issuers.flatMap((m) => issuerMetadataPaths(new URL(m.issuer).pathname).flatMap((path) => withCors(path, h.authorizationServerMetadata(m)))),

    // "use": what every request under the path runs first, also one no route matches (a 415, a 404 page)
    ["use", PATHS.register, plain],
    ["options", PATHS.register, cors],
    ["post", PATHS.register, cors, rateLimited(store, RATE_RULES.register), jsonBody, h.register],
    ["options", PATHS.registeredClient, configurationCors],
    ["get", PATHS.registeredClient, configurationCors, h.readClient],
    ["put", PATHS.registeredClient, configurationCors, jsonBody, h.updateClient],
    ["delete", PATHS.registeredClient, configurationCors, h.deleteClient],
    ["use", PATHS.token, plain],
    ["options", PATHS.token, cors],
    ["post", PATHS.token, cors, form, h.token],
    ["use", PATHS.revoke, plain],
    ["options", PATHS.revoke, cors],
    ["post", PATHS.revoke, cors, form, h.revoke],
    ...deviceAuthorizationRoutes(issuers, h.deviceAuthorization, cors, rateLimited(store, RATE_RULES.deviceAuthorization), form),
    ["use", PATHS.introspect, plain],
    ["post", PATHS.introspect, form, h.introspect],

    // /authorize reads the signed-in user (MC25) but never creates a session: saveUninitialized is false
    ["use", PATHS.authorize, ...session],
    ["get", PATHS.authorize, page, rateLimited(store, RATE_RULES.authorize), authorizeHandler(as)],
    // each upstream of a config file is an issuer of its own, with its own authorization endpoint (MU8)
    ...issuers.map((m): Route => ["get", new URL(m.authorizationEndpoint).pathname, page, rateLimited(store, RATE_RULES.authorize), authorizeHandler(as, m)]),
    ["use", PATHS.login, plain, page, ...session],
    ["get", PATHS.login, screen.show],
    ["post", PATHS.login, loginForm, screen.submit],
    ["use", PATHS.device, plain, page, ...session, rateLimited(store, RATE_RULES.device)],
    ["get", PATHS.device, device.show],
    ["post", PATHS.device, loginForm, device.submit],
    ["use", PATHS.upstreamCallback, page, ...session],
    ["get", PATHS.upstreamCallback, callbackHandler(login)],
    ["get", PATHS.upstreamCallbackNamed, callbackHandler(login)],
    ["get", PATHS.clientMetadata, clientMetadataHandler(login)],
    ["get", PATHS.clientMetadataNamed, clientMetadataHandler(login)],

    // liveness answers without the store; readiness needs one round trip to it (503 while it is away)
    ["get", PATHS.healthz, (_req, res) => void res.json({ status: "ok" })],
    [
      "get",
      PATHS.readyz,
      async (_req, res) => {
        await store.get(storeKey.masterSecret());
        res.json({ status: "ready" });
      },
    ],
  ];
}

/** RFC 8628 §3.1: the device authorization endpoint of the gateway's issuer and of each upstream's, each with its resource implied. */
function deviceAuthorizationRoutes(
  issuers: readonly Mount[],
  handler: (mount?: Mount) => RequestHandler,
  cors: RequestHandler,
  limited: RequestHandler,
  form: RequestHandler,
): Route[] {
  return [undefined, ...issuers].flatMap((m): Route[] => {
    const path = m ? new URL(m.deviceAuthorizationEndpoint).pathname : PATHS.deviceAuthorization;
    return [
      ["use", path, plain],
      ["options", path, cors],
      ["post", path, cors, limited, form, handler(m)],
    ];
  });
}
