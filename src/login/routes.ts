import type { Request, RequestHandler, Response } from "express";
import type { AuthorizationRequest } from "../as/authorize.js";
import type { ClientRecord } from "../as/clients.js";
import { OAuthError } from "../errors.js";
import { addressSubject, consume, RATE_RULES } from "../ratelimit.js";
import { approvedBefore, honoursRememberedApproval, isRemembered, recordApproval } from "./approvals.js";
import { checkBinding, csrfMatches, csrfToken, postedFromHere, servedOverTls, sessionUser, type CsrfHolder } from "./browser.js";
import { approve, consentView, deny, pendingRequest, type LoginDeps } from "./flow.js";
import { go } from "./pages.js";
import { passwordSignIn } from "./password-sign-in.js";
import { passwordChecker } from "./passwords.js";

/**
 * The human step: Screen 1 (gateway login and consent), then the upstream's own page. Nothing is
 * stored for a browser until it signs in: the pending request is bound to it by a cookie
 * (src/login/browser.ts) and its CSRF token is derived, not kept.
 */
export function loginHandlers(deps: LoginDeps): { show: RequestHandler; submit: RequestHandler } {
  const screen: Screen = {
    deps,
    checkPassword: passwordChecker(deps.login.users),
    names: new Set(deps.login.users.map((u) => u.username)),
    https: servedOverTls(deps.urls.issuer),
  };
  return { show: (req, res) => show(screen, req, res), submit: (req, res) => submit(screen, req, res) };
}

/** Screen 1 and what it needs. */
interface Screen {
  deps: LoginDeps;
  checkPassword: ReturnType<typeof passwordChecker>;
  names: ReadonlySet<string>;
  https: boolean;
}

interface Pending {
  request: AuthorizationRequest;
  client: ClientRecord;
}

async function show(screen: Screen, req: Request, res: Response): Promise<void> {
  const { deps } = screen;
  const { request, client } = await pendingHere(screen, req, req.query.request);
  const user = sessionUser(req, screen.names);
  // docs/security.md MC1, MC2, MC27, WP3: skip Screen 1 only for this user's remembered approval, on a navigation the user started;
  // never for a device (RFC 8628 §5.4: the user compares the code on Screen 1)
  if (user && !request.device && honoursRememberedApproval(req.get("sec-fetch-site")) && (await isRemembered(deps.store, deps.clock, user, request, client)))
    return go(res, 303, await approve(deps, request, req.sessionID, user));
  render(screen, req, res, 200, { request, client });
}

async function submit(screen: Screen, req: Request, res: Response): Promise<void> {
  const { deps } = screen;
  const body = (req.body ?? {}) as Record<string, unknown>;
  if (!postedFromHere(req.headers, deps.mounts.origins.all))
    throw new OAuthError("access_denied", "This form was sent from another site than this gateway's page. Open the sign-in from your MCP client again.", 403);
  const { request, client } = await pendingHere(screen, req, body.request);
  if (!csrfMatches(deps.keys, request.id, holder(screen, req, request), body.csrf))
    throw new OAuthError("access_denied", "The form is stale or was not sent from this gateway's page. Reload the page and try again.", 403);
  if (body.decision === "deny") {
    const user = sessionUser(req, screen.names);
    const approved = user !== undefined && (await approvedBefore(deps.store, deps.clock, user, client, request.redirectUri));
    return go(res, 303, await deny(deps, request, approved));
  }
  if (body.decision !== "approve") throw new OAuthError("invalid_request", "Choose approve or deny.");

  const user = sessionUser(req, screen.names) ?? (await signInWithPassword(screen, req, res, body, { request, client }));
  if (!user) return;
  if (!request.device) await recordApproval(deps.store, deps.clock, user, request, client, body.remember === "yes");
  // OAuth 2.1 §7.5.3: after a POST carrying credentials, redirect with 303, never 307
  go(res, 303, await approve(deps, request, req.sessionID, user));
}

/** RFC 6749 §10.12: the form belongs to the signed-in session, or before sign-in to the browser that started the request. */
const holder = (screen: Screen, req: Request, request: AuthorizationRequest): CsrfHolder =>
  sessionUser(req, screen.names) ? { session: req.sessionID } : { browser: request.browser ?? "" };

/** Screen 1 for this request, with its CSRF token for whoever holds the form now. */
function render(screen: Screen, req: Request, res: Response, status: number, pending: Pending, error?: string): void {
  res.status(status).render("login", {
    ...consentView(pending.request, pending.client, screen.deps.mounts),
    csrf: csrfToken(screen.deps.keys, pending.request.id, holder(screen, req, pending.request)),
    signedIn: sessionUser(req, screen.names),
    error,
  });
}

/** The pending request of this browser (docs/security.md HI5: counted per address first). */
async function pendingHere(screen: Screen, req: Request, requestId: unknown): Promise<Pending> {
  await consume(screen.deps.store, RATE_RULES.login, addressSubject(req.ip));
  const pending = await pendingRequest(screen.deps.store, requestId);
  checkBinding(req, screen.https, pending.request);
  return pending;
}

/** Check the password; on failure, answer the page and return undefined. */
async function signInWithPassword(screen: Screen, req: Request, res: Response, body: Record<string, unknown>, pending: Pending): Promise<string | undefined> {
  const verdict = await passwordSignIn({ ...screen.deps, checkPassword: screen.checkPassword }, addressSubject(req.ip), body.username, body.password);
  if ("wait" in verdict) {
    res.set("Retry-After", String(verdict.wait));
    return void render(screen, req, res, 429, pending, `${verdict.message} Try again in ${duration(verdict.wait)}.`);
  }
  if ("wrong" in verdict) return void render(screen, req, res, 401, pending, "Wrong username or password.");
  await signIn(req, verdict.user);
  return verdict.user;
}

const duration = (seconds: number): string => (seconds < 90 ? `${seconds} second${seconds === 1 ? "" : "s"}` : `${Math.ceil(seconds / 60)} minutes`);

/** The first stored session of this browser, under a new id (no session fixation), holding nothing but the user. */
async function signIn(req: Request, user: string): Promise<void> {
  await new Promise<void>((resolve, reject) => req.session.regenerate((e?: Error) => (e ? reject(e) : resolve())));
  req.session.user = user;
  await new Promise<void>((resolve, reject) => req.session.save((e?: Error) => (e ? reject(e) : resolve())));
}
