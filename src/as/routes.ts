import type { Request, RequestHandler } from "express";
import type { Config } from "../config/types.js";
import { PATHS } from "../paths.js";
import { typedSlash, type Mount } from "../upstream/mounts.js";
import type { AuthorizeDeps } from "./authorize.js";
import { readClientCredentials } from "./clients.js";
import { endClientGrants } from "../grants/revoke.js";
import { addressSubject } from "../ratelimit.js";
import { deviceAuthorization } from "./device.js";
import { introspect } from "./introspection.js";
import { authorizationServerMetadata, protectedResourceMetadata } from "./metadata.js";
import { deleteRegistration, readRegistration, registerClient, updateRegistration, type RegistrationDeps } from "./registration.js";
import { revoke } from "./revocation.js";
import { token, type TokenDeps } from "./token.js";

export interface AsDeps extends AuthorizeDeps, TokenDeps {
  registration: Config["registration"];
}

const noStore = { "Cache-Control": "no-store", Pragma: "no-cache" };

const clientId = (req: Request) => (typeof req.params.client_id === "string" ? req.params.client_id : "");
/** A form and the client credentials it (or the Authorization header) carries. */
const formWithClient = (req: Request) => {
  const body = (req.body ?? {}) as Record<string, unknown>;
  return [body, readClientCredentials(req.headers.authorization, body)] as const;
};

/** The authorization server toward MCP clients: discovery, registration, token, revocation, introspection. */
export function asHandlers(deps: AsDeps) {
  const registration: RegistrationDeps = { store: deps.store, clock: deps.clock, issuer: deps.urls.issuer, registration: deps.registration };
  return {
    /** RFC 9728 §3.3: `resource` is the URL under the name the client used (src/origins.ts), with the slash it typed. */
    protectedResourceMetadata:
      (mount: Mount): RequestHandler =>
      (req, res) => {
        // the path-inserted document of `/mcp/` (non-strict routing matches it too) describes the URL with its slash
        const slash = req.path !== `${PATHS.protectedResourceMetadata}/` && typedSlash(req.path);
        const resource = mount.resourceAt(deps.mounts.origins.forHost(req.headers.host), slash);
        res.json(protectedResourceMetadata({ resource, title: mount.config.name && mount.config.title, issuer: mount.issuer }, mount.advertisedScopes()));
      },
    /** RFC 8414 §2 scopes_supported: one upstream's scopes; with several there is no one list to give. */
    authorizationServerMetadata:
      (mount?: Mount): RequestHandler =>
      (_req, res) =>
        void res.json(authorizationServerMetadata(deps.urls, (mount ?? deps.mounts.single)?.advertisedScopes(), mount)),
    register: (async (req, res) => {
      res
        .status(201)
        .set(noStore)
        .json(await registerClient(req.body, registration));
    }) satisfies RequestHandler,
    readClient: (async (req, res) => {
      res.set(noStore).json(await readRegistration(clientId(req), req.headers.authorization, registration));
    }) satisfies RequestHandler,
    updateClient: (async (req, res) => {
      res.set(noStore).json(await updateRegistration(clientId(req), req.headers.authorization, req.body, registration));
    }) satisfies RequestHandler,
    deleteClient: (async (req, res) => {
      await deleteRegistration(clientId(req), req.headers.authorization, registration, (id) => endClientGrants(deps, id));
      res.status(204).set(noStore).end();
    }) satisfies RequestHandler,
    /** RFC 8628 §3.1: at the gateway's issuer, or (`mount`) one upstream's, whose resource it implies. */
    deviceAuthorization:
      (mount?: Mount): RequestHandler =>
      async (req, res) => {
        res.set(noStore).json(await deviceAuthorization(...formWithClient(req), deps, { address: addressSubject(req.ip) }, mount));
      },
    token: (async (req, res) => {
      res.set(noStore).json(await token(...formWithClient(req), deps));
    }) satisfies RequestHandler,
    // RFC 7009 §2.2: 200 whether or not the token was known
    revoke: (async (req, res) => {
      await revoke(...formWithClient(req), deps);
      res.status(200).set(noStore).end();
    }) satisfies RequestHandler,
    introspect: (async (req, res) => {
      res.set(noStore).json(await introspect(...formWithClient(req), deps));
    }) satisfies RequestHandler,
  };
}
