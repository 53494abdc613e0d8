import express, { Router, type NextFunction, type Request, type Response } from "express";
import type { AuthorizationRequest } from "../as/authorize.js";
import type { ClientRecord } from "../as/clients.js";
import { OAuthError } from "../errors.js";
import { addressSubject, consume, RATE_RULES } from "../ratelimit.js";
import { approvedBefore, honoursRememberedApproval, isRemembered, recordApproval } from "./approvals.js";
import { checkBinding, csrfMatches, csrfToken, postedFromHere, servedOverTls, sessionUser, type CsrfHolder } from "./browser.js";
import { approve, consentView, deny, pendingRequest, upstreamCallback, type LoginDeps } from "./flow.js";
import { go } from "./pages.js";
import { passwordSignIn } from "./password-sign-in.js";
import { passwordChecker } from "./passwords.js";

/**
 * The human step: Screen 1 (gateway login and consent), then the upstream's own page. Nothing is
 * stored for a browser until it signs in: the pending request is bound to it by a cookie
 * (src/login/browser.ts) and its CSRF token is derived, not kept.
 */
export function loginRoutes(deps: LoginDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: "16kb", parameterLimit: 20 });
  const checkPassword = passwordChecker(deps.login.users);
  const names = new Set(deps.login.users.map((u) => u.username));
  const https = servedOverTls(deps.urls.issuer);
  const signedIn = (req: Request): string | undefined => sessionUser(req, names);
  /** RFC 6749 §10.12: the form belongs to the signed-in session, or before sign-in to the browser that started the request. */
  const holder = (req: Request, request: AuthorizationRequest): CsrfHolder => (signedIn(req) ? { session: req.sessionID } : { browser: request.browser ?? "" });
  /** Screen 1 for this request, with its CSRF token for whoever holds the form now. */
  const render = (req: Request, res: Response, status: number, pending: Pending, error?: string) =>
    res.status(status).render("login", {
      ...consentView(pending.request, pending.client, deps.mounts),
      csrf: csrfToken(deps.keys, pending.request.id, holder(req, pending.request)),
      signedIn: signedIn(req),
      error,
    });
  /** The pending request of this browser (docs/security.md HI5: counted per address first). */
  const pendingHere = async (req: Request, requestId: unknown) => {
    await consume(deps.store, RATE_RULES.login, addressSubject(req.ip));
    const pending = await pendingRequest(deps.store, requestId);
    checkBinding(req, https, pending.request);
    return pending;
  };

  router.get("/login", async (req, res) => {
    const { request, client } = await pendingHere(req, req.query.request);
    const user = signedIn(req);
    // docs/security.md MC1, MC2, MC27, WP3: skip Screen 1 only for this user's remembered approval, on a navigation the user started
    if (user && honoursRememberedApproval(req.get("sec-fetch-site")) && (await isRemembered(deps.store, deps.clock, user, request, client)))
      return go(res, 303, await approve(deps, request, req.sessionID, user));
    render(req, res, 200, { request, client });
  });

  router.post("/login", form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!postedFromHere(req.headers, deps.mounts.origins.all))
      throw new OAuthError("access_denied", "This form was sent from another site than this gateway's page. Open the sign-in from your MCP client again.", 403);
    const { request, client } = await pendingHere(req, body.request);
    if (!csrfMatches(deps.keys, request.id, holder(req, request), body.csrf))
      throw new OAuthError("access_denied", "The form is stale or was not sent from this gateway's page. Reload the page and try again.", 403);
    if (body.decision === "deny") {
      const user = signedIn(req);
      const approved = user !== undefined && (await approvedBefore(deps.store, deps.clock, user, client, request.redirectUri));
      return go(res, 303, await deny(deps, request, approved));
    }
    if (body.decision !== "approve") throw new OAuthError("invalid_request", "Choose approve or deny.");

    const user = signedIn(req) ?? (await signInWithPassword(req, res, body, { request, client }));
    if (!user) return;
    await recordApproval(deps.store, deps.clock, user, request, client, body.remember === "yes");
    // OAuth 2.1 §7.5.3: after a POST carrying credentials, redirect with 303, never 307
    go(res, 303, await approve(deps, request, req.sessionID, user));
  });

  // One callback per upstream (src/upstream/mounts.ts, callbackPath); the flags' single upstream has the plain one
  const answerCallback = async (req: Request, res: Response, name: string) => {
    const callback = new URL(req.originalUrl, deps.urls.issuer);
    go(res, 302, await upstreamCallback(deps, callback, req.sessionID, deps.mounts.byName(name)));
  };
  router.get("/upstream/callback", (req, res) => answerCallback(req, res, ""));
  router.get("/upstream/callback/:name", (req, res) => answerCallback(req, res, req.params.name.toLowerCase()));

  // The gateway's Client ID Metadata Documents, its client_id at upstream authorization servers that take them
  const clientMetadata = (res: Response, next: NextFunction, name: string) => {
    const mount = deps.mounts.byName(name);
    if (!mount) return next();
    res.set("Cache-Control", "max-age=3600").json({
      client_id: mount.clientMetadataUrl,
      client_name: "MCP OAuth Gateway",
      client_uri: deps.urls.issuer,
      redirect_uris: [mount.callbackUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
  };
  router.get("/upstream/client-metadata.json", (_req, res, next) => clientMetadata(res, next, ""));
  router.get("/upstream/client-metadata/:name.json", (req, res, next) => clientMetadata(res, next, req.params.name));

  /** Check the password; on failure, answer the page and return undefined. */
  async function signInWithPassword(req: Request, res: Response, body: Record<string, unknown>, pending: Pending): Promise<string | undefined> {
    const verdict = await passwordSignIn({ ...deps, checkPassword }, addressSubject(req.ip), body.username, body.password);
    if ("wait" in verdict) {
      res.set("Retry-After", String(verdict.wait));
      return void render(req, res, 429, pending, `${verdict.message} Try again in ${duration(verdict.wait)}.`);
    }
    if ("wrong" in verdict) return void render(req, res, 401, pending, "Wrong username or password.");
    await signIn(req, verdict.user);
    return verdict.user;
  }

  return router;
}

interface Pending {
  request: AuthorizationRequest;
  client: ClientRecord;
}

const duration = (seconds: number): string => (seconds < 90 ? `${seconds} second${seconds === 1 ? "" : "s"}` : `${Math.ceil(seconds / 60)} minutes`);

/** The first stored session of this browser, under a new id (no session fixation), holding nothing but the user. */
async function signIn(req: Request, user: string): Promise<void> {
  await new Promise<void>((resolve, reject) => req.session.regenerate((e?: Error) => (e ? reject(e) : resolve())));
  req.session.user = user;
  await new Promise<void>((resolve, reject) => req.session.save((e?: Error) => (e ? reject(e) : resolve())));
}
