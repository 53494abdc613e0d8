import { pkce } from "../support/pkce.js";
import { DEFAULT_APPS, type SimApp, type Simulator } from "../../src/simulator/index.js";

export const OAUTH_APP = DEFAULT_APPS[0] as SimApp;
export const GITHUB_APP = DEFAULT_APPS[1] as SimApp;
export const secretOf = (app: SimApp): string => app.clientSecrets[0] as string;
export const CALLBACK = "http://127.0.0.1:8123/upstream/callback";

export function authorizeUrl(sim: Simulator, params: Record<string, string>): string {
  return `${sim.webOrigin}/login/oauth/authorize?${new URLSearchParams(params).toString()}`;
}

/** GET /login/oauth/authorize without following the redirect. */
export const authorizeRequest = (sim: Simulator, params: Record<string, string>): Promise<Response> => fetch(authorizeUrl(sim, params), { redirect: "manual" });

/** Runs authorize (auto-approve) and returns the code from the redirect. */
export async function getCode(sim: Simulator, app: SimApp, extra: Record<string, string> = {}): Promise<{ code: string; verifier: string }> {
  const { verifier, challenge } = pkce();
  const res = await authorizeRequest(sim, {
    client_id: app.clientId,
    redirect_uri: CALLBACK,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "xyz",
    ...extra,
  });
  const location = res.headers.get("location");
  const code = location ? new URL(location).searchParams.get("code") : null;
  if (!code) throw new Error(`no code: ${res.status} ${location ?? ""}`);
  return { code, verifier };
}

export async function tokenCall(
  sim: Simulator,
  params: Record<string, string>,
  accept = "application/json",
): Promise<{ status: number; contentType: string; body: Record<string, unknown>; raw: string }> {
  const res = await fetch(`${sim.webOrigin}/login/oauth/access_token`, {
    method: "POST",
    headers: { accept, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params),
  });
  const raw = await res.text();
  const contentType = res.headers.get("content-type") ?? "";
  const body = contentType.startsWith("application/json") ? (JSON.parse(raw) as Record<string, unknown>) : {};
  return { status: res.status, contentType, body, raw };
}

/** Full authorize + code exchange with PKCE; returns the JSON token response. */
export async function login(sim: Simulator, app: SimApp, extra: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const { code, verifier } = await getCode(sim, app, extra);
  const { body } = await tokenCall(sim, {
    client_id: app.clientId,
    client_secret: secretOf(app),
    code,
    code_verifier: verifier,
    redirect_uri: CALLBACK,
  });
  if (typeof body.access_token !== "string") throw new Error(`token exchange failed: ${JSON.stringify(body)}`);
  return body;
}

export const mcpPost = (sim: Simulator, token: string | undefined, message: unknown, headers: Record<string, string> = {}) =>
  fetch(sim.mcpUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
      ...headers,
    },
    body: JSON.stringify(message),
  });

export const toolsCall = (name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id: 1,
  method: "tools/call",
  params: { name, arguments: args },
});
