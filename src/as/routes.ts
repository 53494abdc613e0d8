import cors from "cors";
import express, { Router, type RequestHandler } from "express";
import type { Config } from "../config/types.js";
import { typedSlash } from "../upstream/mounts.js";
import { OAuthError } from "../errors.js";
import { addressSubject, consume, RATE_RULES } from "../ratelimit.js";
import type { AuthorizeDeps } from "./authorize.js";
import { readClientCredentials } from "./clients.js";
import { endClientGrants } from "../grants/revoke.js";
import { introspect } from "./introspection.js";
import { revoke } from "./revocation.js";
import { authorizationServerMetadata, protectedResourceMetadata } from "./metadata.js";
import { deleteRegistration, readRegistration, registerClient, updateRegistration, type RegistrationDeps } from "./registration.js";
import { token, type TokenDeps } from "./token.js";

export interface AsDeps extends AuthorizeDeps, TokenDeps {
  /** CORS for endpoints browser-based clients call (never /authorize: RFC 9700 §2.6). */
  cors: RequestHandler;
  page: RequestHandler;
  registration: Config["registration"];
}

const noStore = { "Cache-Control": "no-store", Pragma: "no-cache" };

/** The authorization server toward MCP clients: discovery, registration, authorization, token. */
export function asRoutes(deps: AsDeps): Router {
  const router = Router();
  const { single } = deps.mounts;

  // RFC 9728 §3.1: each upstream's metadata at its path-inserted URL; the root one only for the flags' single upstream.
  // RFC 9728 §3.3: `resource` is the URL under the name the client used (src/origins.ts)
  for (const mount of deps.mounts.all) {
    const prm: RequestHandler = (req, res) => {
      // the path-inserted document of `/mcp/` (non-strict routing matches it too) describes the URL with its slash
      const slash = req.path !== "/.well-known/oauth-protected-resource/" && typedSlash(req.path);
      const resource = mount.resourceAt(deps.mounts.origins.forHost(req.headers.host), slash);
      res.json(protectedResourceMetadata({ resource, title: mount.config.name && mount.config.title, issuer: mount.issuer }, mount.advertisedScopes()));
    };
    const paths = [new URL(mount.metadataUrl).pathname, ...(mount === single ? ["/.well-known/oauth-protected-resource"] : [])];
    for (const path of paths) router.options(path, deps.cors).get(path, deps.cors, prm);
  }
  // RFC 8414 §2 scopes_supported: one upstream's scopes; with several there is no one list to give
  const asm: RequestHandler = (_req, res) => void res.json(authorizationServerMetadata(deps.urls, single?.advertisedScopes()));
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"])
    router.options(path, deps.cors).get(path, deps.cors, asm);
  // Each upstream of a config file is also an issuer of its own, at its MCP URL: RFC 8414 §3.1 path insertion,
  // and OpenID Connect Discovery §4's path appending, which MCP clients try too
  for (const mount of deps.mounts.all.filter((m) => m !== single)) {
    const metadata: RequestHandler = (_req, res) => void res.json(authorizationServerMetadata(deps.urls, mount.advertisedScopes(), mount));
    const { pathname } = new URL(mount.issuer);
    for (const path of [
      `/.well-known/oauth-authorization-server${pathname}`,
      `/.well-known/openid-configuration${pathname}`,
      `${pathname}/.well-known/openid-configuration`,
    ])
      router.options(path, deps.cors).get(path, deps.cors, metadata);
  }

  const json = express.json({ limit: "64kb" });
  const jsonBody: RequestHandler = (req, res, next) =>
    json(req, res, (error?: unknown) =>
      // only a body that is not JSON is bad metadata (RFC 7591 §3.2.2); too large or wrongly encoded keeps its 413/415
      next(
        (error as { type?: string } | undefined)?.type === "entity.parse.failed"
          ? new OAuthError("invalid_client_metadata", "The registration request is not valid JSON.")
          : error,
      ),
    );
  const registrationLimit: RequestHandler = async (req, _res, next) => {
    await consume(deps.store, RATE_RULES.register, addressSubject(req.ip));
    next();
  };
  const registration: RegistrationDeps = { store: deps.store, clock: deps.clock, issuer: deps.urls.issuer, registration: deps.registration };
  router.options("/register", deps.cors).post("/register", deps.cors, registrationLimit, jsonBody, async (req, res) => {
    const information = await registerClient(req.body, registration);
    res.status(201).set(noStore).json(information);
  });
  // RFC 7592 §2: the client configuration endpoint, `registration_client_uri`
  const configurationCors = cors({ origin: "*", methods: ["GET", "PUT", "DELETE"], exposedHeaders: ["WWW-Authenticate"], maxAge: 86400 });
  const clientPath = "/register/:client_id";
  const clientId = (req: { params: Record<string, unknown> }) => (typeof req.params.client_id === "string" ? req.params.client_id : "");
  router
    .options(clientPath, configurationCors)
    .get(clientPath, configurationCors, async (req, res) => {
      res.set(noStore).json(await readRegistration(clientId(req), req.headers.authorization, registration));
    })
    .put(clientPath, configurationCors, jsonBody, async (req, res) => {
      res.set(noStore).json(await updateRegistration(clientId(req), req.headers.authorization, req.body, registration));
    })
    .delete(clientPath, configurationCors, async (req, res) => {
      await deleteRegistration(clientId(req), req.headers.authorization, registration, (id) => endClientGrants(deps, id));
      res.status(204).set(noStore).end();
    });

  const form = express.urlencoded({ extended: false, limit: "16kb", parameterLimit: 50 });
  router.options("/token", deps.cors).post("/token", deps.cors, form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    res.set(noStore).json(await token(body, readClientCredentials(req.headers.authorization, body), deps));
  });
  // RFC 7009 §2.2: 200 whether or not the token was known
  router.options("/revoke", deps.cors).post("/revoke", deps.cors, form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    await revoke(body, readClientCredentials(req.headers.authorization, body), deps);
    res.status(200).set(noStore).end();
  });
  router.post("/introspect", form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    res.set(noStore).json(await introspect(body, readClientCredentials(req.headers.authorization, body), deps));
  });
  return router;
}
