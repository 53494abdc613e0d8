import { DEVICE_CODE_GRANT } from "../as/grant-types.js";

/**
 * `mcp-oauth-gateway login <mcp-url>`: the device authorization grant (RFC 8628) as a client, against
 * any MCP server whose authorization server offers it. Each exchange is a request and the check of its
 * response; `fetch` is the one seam, `sleep` the other (tests).
 */
export interface LoginCommand {
  url: string;
  clientId?: string;
  scope?: string;
  writeConfig?: string;
  /** The name of the `mcpServers` entry `writeConfig` writes; the URL's last path segment by default. */
  name?: string;
}

export interface LoginIo {
  fetch: typeof fetch;
  sleep: (seconds: number) => Promise<void>;
  /** What the user reads (stderr): the verification URI and the code. */
  tell: (line: string) => void;
}

export class LoginError extends Error {
  override name = "LoginError";
}

/** RFC 6749 §5.1 as the gateway (or any authorization server) answers it. */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
}

interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

/** Discover, register unless given a client, ask for a device code, tell the user, poll: the token response. */
export async function deviceLogin(command: LoginCommand, io: LoginIo): Promise<TokenResponse> {
  const { resource, authorizationServer } = await discoverResource(command.url, io);
  const as = await discoverAuthorizationServer(authorizationServer, io);
  const endpoint = as.device_authorization_endpoint;
  if (typeof endpoint !== "string")
    throw new LoginError(`${authorizationServer} offers no device authorization (RFC 8628): its metadata has no device_authorization_endpoint.`);
  if (typeof as.token_endpoint !== "string") throw new LoginError(`${authorizationServer} names no token_endpoint.`);
  const clientId = command.clientId ?? (await registerDeviceClient(as, io));
  const params = { client_id: clientId, resource, ...(command.scope ? { scope: command.scope } : {}) };
  const started = await processDeviceAuthorizationResponse(await postForm(io, endpoint, params));
  // the server's words reach a terminal: no control characters (escape sequences could rewrite what the user reads)
  io.tell(`To sign in, open ${printable(started.verification_uri)} and enter the code ${printable(started.user_code)}`);
  if (typeof started.verification_uri_complete === "string")
    io.tell(`(or open ${printable(started.verification_uri_complete)} and check the code is the same)`);
  return pollForTokens(io, as.token_endpoint, { clientId, deviceCode: started.device_code, interval: started.interval ?? 5, expiresIn: started.expires_in });
}

/** RFC 9728 §5.1: the 401's `resource_metadata`, else the path-inserted well-known URL (§3.1). */
async function discoverResource(url: string, io: LoginIo): Promise<{ resource: string; authorizationServer: string }> {
  const probe = await io.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "mcp-oauth-gateway login", version: "1" } },
    }),
  });
  await probe.body?.cancel();
  if (probe.status !== 401) throw new LoginError(`${url} answered ${probe.status}, not 401: it does not ask for OAuth.`);
  const fromChallenge = /resource_metadata="([^"]+)"/.exec(probe.headers.get("www-authenticate") ?? "")?.[1];
  const target = new URL(url);
  const metadataUrl = fromChallenge ?? `${target.origin}/.well-known/oauth-protected-resource${target.pathname.replace(/\/$/, "")}`;
  if (parsedUrl(metadataUrl)?.origin !== target.origin)
    throw new LoginError(
      `${url} points at resource metadata elsewhere (${printable(metadataUrl.slice(0, 200))}): refused, a token is asked for only from the server's own origin.`,
    );
  const prm = await getJson(io, metadataUrl);
  const authorizationServer: unknown = Array.isArray(prm.authorization_servers) ? (prm.authorization_servers as unknown[])[0] : undefined;
  if (typeof prm.resource !== "string" || typeof authorizationServer !== "string")
    throw new LoginError(`${metadataUrl} names no resource or authorization server.`);
  // RFC 9728 §3.3: the metadata is for the URL given, or its token would go to a server it was not issued for
  if (resourceIdentifier(prm.resource) !== resourceIdentifier(url))
    throw new LoginError(`${metadataUrl} describes the resource ${printable(prm.resource.slice(0, 200))}, not ${url}: refused (RFC 9728 §3.3).`);
  return { resource: prm.resource, authorizationServer };
}

/** RFC 8414 §3.1 path insertion, then OpenID Connect Discovery: the first that answers for this issuer. */
async function discoverAuthorizationServer(issuer: string, io: LoginIo): Promise<Record<string, unknown>> {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, "");
  const candidates = [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
  for (const candidate of candidates) {
    const response = await io.fetch(candidate, { headers: { accept: "application/json" } });
    if (!response.ok) {
      await response.body?.cancel();
      continue;
    }
    const metadata = (await response.json()) as Record<string, unknown>;
    // RFC 8414 §3.3: the issuer in the document is the one asked for
    if (metadata.issuer !== issuer) throw new LoginError(`${candidate} describes issuer ${String(metadata.issuer)}, not ${issuer}.`);
    return metadata;
  }
  throw new LoginError(`no authorization server metadata found for ${issuer}.`);
}

/** RFC 7591: a public client for the device grant and refresh. */
async function registerDeviceClient(as: Record<string, unknown>, io: LoginIo): Promise<string> {
  if (typeof as.registration_endpoint !== "string") throw new LoginError("The authorization server offers no registration: give --client-id.");
  const response = await io.fetch(as.registration_endpoint, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ client_name: "mcp-oauth-gateway login", grant_types: [DEVICE_CODE_GRANT, "refresh_token"], token_endpoint_auth_method: "none" }),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.status !== 201 || typeof body.client_id !== "string") throw new LoginError(`registration failed: ${response.status} ${describe(body)}`);
  return body.client_id;
}

async function processDeviceAuthorizationResponse(response: Response): Promise<DeviceAuthorizationResponse> {
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.status !== 200 || typeof body.device_code !== "string" || typeof body.user_code !== "string" || typeof body.verification_uri !== "string")
    throw new LoginError(`the device authorization request failed: ${response.status} ${describe(body)}`);
  return body as unknown as DeviceAuthorizationResponse;
}

/** RFC 8628 §3.4–3.5: wait `interval` between polls, 5 seconds more after each slow_down, until an answer other than pending. */
async function pollForTokens(
  io: LoginIo,
  tokenEndpoint: string,
  device: { clientId: string; deviceCode: string; interval: number; expiresIn: number },
): Promise<TokenResponse> {
  let interval = device.interval;
  let waited = 0;
  while (waited <= device.expiresIn) {
    await io.sleep(interval);
    waited += interval;
    const response = await postForm(io, tokenEndpoint, { grant_type: DEVICE_CODE_GRANT, device_code: device.deviceCode, client_id: device.clientId });
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (response.status === 200 && typeof body.access_token === "string") return body as unknown as TokenResponse;
    if (body.error === "authorization_pending") continue;
    if (body.error === "slow_down") {
      interval += 5;
      continue;
    }
    if (body.error === "access_denied") throw new LoginError("The sign-in was denied.");
    if (body.error === "expired_token") throw new LoginError("The code expired before the sign-in finished: run login again.");
    throw new LoginError(`the token request failed: ${response.status} ${describe(body)}`);
  }
  throw new LoginError("The code expired before the sign-in finished: run login again.");
}

const postForm = (io: LoginIo, url: string, form: Record<string, string>) =>
  io.fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams(form).toString(),
  });

async function getJson(io: LoginIo, url: string): Promise<Record<string, unknown>> {
  const response = await io.fetch(url, { headers: { accept: "application/json" } });
  if (!response.ok) throw new LoginError(`${url} answered ${response.status}.`);
  return (await response.json()) as Record<string, unknown>;
}

const describe = (body: Record<string, unknown>): string =>
  typeof body.error === "string" ? printable(`${body.error}${typeof body.error_description === "string" ? `: ${body.error_description}` : ""}`) : "";

/** C0 and C1 controls, DEL and Unicode bidirectional controls: never printed as a server sent them. */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;
const isControl = (char: string): boolean => {
  const code = char.codePointAt(0)!;
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || BIDI_CONTROLS.test(char);
};
export const printable = (text: string): string => [...text].filter((char) => !isControl(char)).join("");

const parsedUrl = (text: string): URL | undefined => {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
};

/** A resource URL compared as RFC 9728 §3.3 means it: parsed, without fragment or trailing slash. */
function resourceIdentifier(text: string): string | undefined {
  const url = parsedUrl(text);
  if (!url) return undefined;
  url.hash = "";
  return url.href.replace(/\/$/, "");
}
