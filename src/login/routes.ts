import express, { Router, type NextFunction, type Request, type Response } from "express";
import type { AuthorizationRequest } from "../as/authorize.js";
import type { ClientRecord } from "../as/clients.js";
import { randomToken, safeEqual } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { honoursRememberedApproval, isRemembered, rememberApproval } from "./approvals.js";
import { approve, consentView, deny, pendingRequest, upstreamCallback, type ConsentView, type LoginDeps, type Step } from "./flow.js";
import { passwordSignIn } from "./password-sign-in.js";
import { passwordChecker } from "./passwords.js";

declare module "express-session" {
  interface SessionData {
    /** The gateway user this browser signed in as. */
    user?: string;
    /** One CSRF token per pending authorization request: stable across reloads of Screen 1. */
    csrf?: Record<string, string>;
  }
}

/** The human step: Screen 1 (gateway login and consent), then the upstream's own page. */
export function loginRoutes(deps: LoginDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: "16kb", parameterLimit: 20 });
  const checkPassword = passwordChecker(deps.login.users);
  const names = new Set(deps.login.users.map((u) => u.username));
  /** The session's user, while that user may still sign in (a users file may have dropped it since). */
  const signedIn = (req: Request): string | undefined => (req.session.user !== undefined && names.has(req.session.user) ? req.session.user : undefined);

  router.get("/login", async (req, res) => {
    const { request, client } = await pendingRequest(deps.store, req.query.request);
    const user = signedIn(req);
    // docs/security.md MC1, MC2, WP3: skip Screen 1 only for this user's remembered approval, on a navigation the user started
    if (user && honoursRememberedApproval(req.get("sec-fetch-site")) && (await isRemembered(deps.store, deps.clock, user, request, client)))
      return go(res, 303, await approve(deps, request, req.sessionID, user));
    render(req, res, 200, consentView(request, client, deps.mounts), user);
  });

  router.post("/login", form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const { request, client } = await pendingRequest(deps.store, body.request);
    const expected = req.session.csrf?.[request.id];
    if (!expected || typeof body.csrf !== "string" || !safeEqual(body.csrf, expected))
      throw new OAuthError("access_denied", "The form is stale or was not sent from this gateway's page. Reload the page and try again.", 403);
    if (body.decision === "deny") return res.redirect(303, await deny(deps, request));
    if (body.decision !== "approve") throw new OAuthError("invalid_request", "Choose approve or deny.");

    const user = signedIn(req) ?? (await signInWithPassword(req, res, body, request, client));
    if (!user) return;
    if (body.remember === "yes") await rememberApproval(deps.store, deps.clock, user, request, client);
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
  async function signInWithPassword(
    req: Request,
    res: Response,
    body: Record<string, unknown>,
    request: AuthorizationRequest,
    client: ClientRecord,
  ): Promise<string | undefined> {
    const view = consentView(request, client, deps.mounts);
    const verdict = await passwordSignIn({ ...deps, checkPassword }, req.ip ?? "unknown", body.username, body.password);
    if ("wait" in verdict) {
      res.set("Retry-After", String(verdict.wait));
      return void render(req, res, 429, view, undefined, `${verdict.message} Try again in ${duration(verdict.wait)}.`);
    }
    if ("wrong" in verdict) return void render(req, res, 401, view, undefined, "Wrong username or password.");
    await signIn(req, verdict.user);
    return verdict.user;
  }

  return router;
}

/** On to the next step, or a page saying why not, with the way back to the client (403 refused, 503 for now). */
function go(res: Response, status: 302 | 303, step: Step): void {
  if ("redirectTo" in step) return res.redirect(status, step.redirectTo);
  res.status(step.refused.error === "access_denied" ? 403 : 503).render("refused", step.refused);
}

/** At most this many pending sign-ins per browser keep a CSRF token; the oldest give way. */
const CSRF_TOKENS_KEPT = 20;

function render(req: Request, res: Response, status: number, view: ConsentView, signedIn: string | undefined, error?: string): void {
  const csrf = (req.session.csrf ??= {});
  if (!csrf[view.requestId]) {
    csrf[view.requestId] = randomToken(24);
    for (const stale of Object.keys(csrf).slice(0, -CSRF_TOKENS_KEPT)) delete csrf[stale];
  }
  res.status(status).render("login", { ...view, csrf: csrf[view.requestId], signedIn, error });
}

const duration = (seconds: number): string => (seconds < 90 ? `${seconds} second${seconds === 1 ? "" : "s"}` : `${Math.ceil(seconds / 60)} minutes`);

/** A new session id on sign-in (no session fixation), keeping the pending CSRF tokens. */
async function signIn(req: Request, user: string): Promise<void> {
  const csrf = req.session.csrf;
  await new Promise<void>((resolve, reject) => req.session.regenerate((e?: Error) => (e ? reject(e) : resolve())));
  req.session.user = user;
  if (csrf) req.session.csrf = csrf;
  await new Promise<void>((resolve, reject) => req.session.save((e?: Error) => (e ? reject(e) : resolve())));
}
