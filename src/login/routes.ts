import express, { Router, type Request, type Response } from "express";
import { randomToken, safeEqual } from "../crypto.js";
import { OAuthError } from "../errors.js";
import { ensureUnder, RATE_RULES, recordFailure } from "../ratelimit.js";
import { approve, checkCredentials, consentView, deny, pendingRequest, upstreamCallback, type ConsentView, type LoginDeps } from "./flow.js";

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

  router.get("/login", async (req, res) => {
    const { request, client } = await pendingRequest(deps.store, req.query.request);
    render(req, res, 200, consentView(request, client));
  });

  router.post("/login", form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const { request, client } = await pendingRequest(deps.store, body.request);
    const expected = req.session.csrf?.[request.id];
    if (!expected || typeof body.csrf !== "string" || !safeEqual(body.csrf, expected))
      throw new OAuthError("access_denied", "The form is stale or was not sent from this gateway's page. Reload the page and try again.", 403);
    if (body.decision === "deny") return res.redirect(303, await deny(deps, request));
    if (body.decision !== "approve") throw new OAuthError("invalid_request", "Choose approve or deny.");

    if (!req.session.user) {
      const address = req.ip ?? "unknown";
      await ensureUnder(deps.store, RATE_RULES.loginFailure, address);
      if (!checkCredentials(deps, body.username, body.password)) {
        await recordFailure(deps.store, RATE_RULES.loginFailure, address);
        return render(req, res, 401, consentView(request, client), "Wrong username or password.");
      }
      await signIn(req, deps.login.username);
    }
    // OAuth 2.1 §7.5.3: after a POST carrying credentials, redirect with 303, never 307
    res.redirect(303, await approve(deps, request, req.sessionID, req.session.user!));
  });

  router.get("/upstream/callback", async (req, res) => {
    const callback = new URL(req.originalUrl, deps.urls.issuer);
    res.redirect(302, await upstreamCallback(deps, callback, req.sessionID));
  });

  return router;
}

/** At most this many pending sign-ins per browser keep a CSRF token; the oldest give way. */
const CSRF_TOKENS_KEPT = 20;

function render(req: Request, res: Response, status: number, view: ConsentView, error?: string): void {
  const csrf = (req.session.csrf ??= {});
  if (!csrf[view.requestId]) {
    csrf[view.requestId] = randomToken(24);
    for (const stale of Object.keys(csrf).slice(0, -CSRF_TOKENS_KEPT)) delete csrf[stale];
  }
  res.status(status).render("login", { ...view, csrf: csrf[view.requestId], signedIn: req.session.user, error });
}

/** A new session id on sign-in (no session fixation), keeping the pending CSRF tokens. */
async function signIn(req: Request, user: string): Promise<void> {
  const csrf = req.session.csrf;
  await new Promise<void>((resolve, reject) => req.session.regenerate((e?: Error) => (e ? reject(e) : resolve())));
  req.session.user = user;
  if (csrf) req.session.csrf = csrf;
  await new Promise<void>((resolve, reject) => req.session.save((e?: Error) => (e ? reject(e) : resolve())));
}
